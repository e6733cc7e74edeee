// Where a job's thread is, in memory its host thread can read while the job's thread is stuck
// or after it died (worker/isolated-job.ts). The job's thread writes plain typed-array slots:
// a clock tick from its event loop (a timer every TICK_INTERVAL_MS: when it stops advancing,
// user code holds the thread), and per record the stage, key group and source position being
// processed. A few stores per record, no atomics: the host only reads them to name the culprit.
//
// In a worker without isolation the slots live in a private buffer nobody reads.

/** Bytes of the shared call-site buffer. */
export const CALL_SITE_BYTES = 64;

/** How often the job thread's event loop stamps the clock slot. */
export const TICK_INTERVAL_MS = 50;

/** What the job's thread was doing (Phase slot). */
export const Phase = { IDLE: 0, RECORD: 1, LOADING_BUNDLE: 2, TIMER: 3 } as const;

// Float64 slots
const TICK_MS = 0;
const SEQUENCE = 1;
/** A keyed record's origin (core/record-origin.ts), -1 for none; bytes 32..39. */
const ORIGIN = 4;
// Int32 slots (after the two doubles)
const PHASE = 4;
const STAGE = 5;
const KEY_GROUP = 6;
const SPLIT = 7;

export class CallSite {
  readonly #f64: Float64Array;
  readonly #i32: Int32Array;

  constructor(buffer: SharedArrayBuffer | ArrayBuffer) {
    this.#f64 = new Float64Array(buffer, 0, CALL_SITE_BYTES / 8);
    this.#i32 = new Int32Array(buffer, 0, CALL_SITE_BYTES / 4);
  }

  tick(nowMs: number): void {
    this.#f64[TICK_MS] = nowMs;
  }

  /** A source record of split `split` at stream sequence `sequence`, in stage `stage` (index in the manifest). */
  sourceRecord(stage: number, split: number, sequence: number): void {
    this.#i32[PHASE] = Phase.RECORD;
    this.#i32[STAGE] = stage;
    this.#i32[KEY_GROUP] = -1;
    this.#i32[SPLIT] = split;
    this.#f64[SEQUENCE] = sequence;
    this.#f64[ORIGIN] = -1;
  }

  /**
   * A keyed record (or timer) of key group `keyGroup` in stage `stage`, derived from the source
   * record `origin` (-1: unknown, a timer). Stamped when the record's function is called: a
   * function that loops after an await may be named by the record another key started meanwhile
   * (README, "Poison records").
   */
  keyedRecord(stage: number, keyGroup: number, phase: number = Phase.RECORD, origin = -1): void {
    this.#i32[PHASE] = phase;
    this.#i32[STAGE] = stage;
    this.#i32[KEY_GROUP] = keyGroup;
    this.#i32[SPLIT] = -1;
    this.#f64[ORIGIN] = origin;
  }

  phase(phase: number): void {
    this.#i32[PHASE] = phase;
  }

  read(): { tickMs: number; phase: number; stage: number; keyGroup: number; split: number; sequence: number; origin: number } {
    return { tickMs: this.#f64[TICK_MS]!, phase: this.#i32[PHASE]!, stage: this.#i32[STAGE]!, keyGroup: this.#i32[KEY_GROUP]!, split: this.#i32[SPLIT]!, sequence: this.#f64[SEQUENCE]!, origin: this.#f64[ORIGIN]! };
  }
}

/** The call site of this thread: a private buffer unless a job thread installed a shared one. */
export let callSite = new CallSite(new ArrayBuffer(CALL_SITE_BYTES));

export function installCallSite(buffer: SharedArrayBuffer): void {
  callSite = new CallSite(buffer);
}
