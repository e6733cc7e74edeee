// asyncMap (Flink's AsyncWaitOperator, plus retries): calls an asynchronous user function per
// record with at most `capacity` records in the operator, a time-out per attempt (the attempt's
// AbortSignal is aborted), retries with exponential back-off, and after the last attempt either
// a job failure or a dead letter.
//
// Order: ordered mode emits results in input order; unordered emits each as it completes, but
// never across a marker. Markers are barriers and watermarks: marker(cb) calls cb once every
// record pushed before it has been emitted (or dropped), and records pushed after it are emitted
// only after cb. That is how a barrier forwarded after an async operator still cuts the stream
// exactly: everything before barrier N reaches the next stage or sink before barrier N does.
// Unlike Flink, in-flight records are not written into the checkpoint: the barrier waits until
// they are done (at most `capacity` calls plus their retries), which keeps checkpoints simple
// and needs no state, at the price of a checkpoint that takes as long as the slowest call.
// Records after the barrier may already be in flight (their calls are repeated after a
// recovery, as in Flink).
//
// Backpressure: the task checks `full` (records in the operator >= capacity) after each record
// (source) or batch (keyed) and waits for whenReady(); a batch may push past capacity, but calls
// in flight never exceed it: the surplus waits here until a slot frees up.
//
// Attribution: each record keeps the key group and source position (core/record-origin.ts) it
// was pushed with, and its result goes downstream with them: a failure after the operator (a
// later operator, a sink, the next stage) names that record, not the one running when the call
// completed.
import type { AsyncOperatorSpec } from '../../core/manifest.ts';
import { UserFunctionError, ensureError } from '../../core/errors.ts';
import { decodeOrigin } from '../../core/record-origin.ts';

/**
 * Where results go: the rest of the chain (operator-chain.ts Emit, restated to avoid an import
 * cycle), with the source position of the record the result is for (-1: none).
 */
type Emit = (value: unknown, timestamp: number, origin: number) => void;

/** What the operator needs from its task. */
export interface AsyncOperatorHooks {
  jobId: string;
  stageId: string;
  /** The key group being processed when a record is pushed (-1 in a source stage). */
  keyGroup(): number;
  /** The source position of the record being pushed (core/record-origin.ts). @default none (-1) */
  origin?(): number;
  /**
   * Something downstream threw while a result was emitted (or a marker's callback threw): the
   * task applies the job's error policy to a UserFunctionError, and fails on anything else.
   */
  onError(error: Error, record: unknown, keyGroup: number): void;
  /** The last attempt failed under onFailure "fail": the job fails, whatever its error policy. */
  fail(error: UserFunctionError): void;
  /** onFailure "dead-letter": the record goes to the dead-letter subject with the reason. */
  deadLetter(error: UserFunctionError, record: unknown): void;
}

type AsyncFn = (value: unknown, ctx: { signal: AbortSignal; attempt: number }) => Promise<unknown>;

const WAITING = 0;
const RUNNING = 1;
const DONE = 2;
/** Finished without output (dead-lettered). */
const DROPPED = 3;

interface Entry {
  value: unknown;
  timestamp: number;
  keyGroup: number;
  origin: number;
  state: number;
  attempt: number;
  result: unknown;
  controller: AbortController | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Unordered mode: the stretch between two markers it belongs to. */
  segment: Segment | undefined;
}

interface Marker {
  marker: () => void;
}

interface Segment {
  /** Records of the segment not finished yet. */
  open: number;
  /** Finished before their segment became the first: emitted when it does. */
  done: Entry[];
  /** Fires once the segment is empty and first; the next segment starts after it. */
  marker: (() => void) | undefined;
}

export class AsyncOperator {
  readonly #fn: AsyncFn;
  readonly #name: string;
  readonly #spec: AsyncOperatorSpec;
  readonly #downstream: Emit;
  readonly #hooks: AsyncOperatorHooks;
  /** Ordered mode: records and markers in input order. */
  readonly #queue: Array<Entry | Marker> = [];
  /** Unordered mode: segments between markers, oldest first. */
  readonly #segments: Segment[] = [{ open: 0, done: [], marker: undefined }];
  /** Records pushed but not started (capacity reached). */
  readonly #waiting: Entry[] = [];
  /** Records started and not finished: in a call or backing off before the next attempt. */
  readonly #running = new Set<Entry>();
  /** Records in the operator: pushed and neither emitted nor dropped. */
  #size = 0;
  #readyWaiters: Array<() => void> = [];
  #closed = false;

  constructor(name: string, fn: AsyncFn, spec: AsyncOperatorSpec, downstream: Emit, hooks: AsyncOperatorHooks) {
    this.#name = name;
    this.#fn = fn;
    this.#spec = spec;
    this.#downstream = downstream;
    this.#hooks = hooks;
  }

  get size(): number {
    return this.#size;
  }

  get full(): boolean {
    return this.#size >= this.#spec.capacity && !this.#closed;
  }

  /** Resolves once the operator has room (or is closed). */
  whenReady(): Promise<void> {
    if (!this.full || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  push(value: unknown, timestamp: number): void {
    if (this.#closed) return;
    const entry: Entry = { value, timestamp, keyGroup: this.#hooks.keyGroup(), origin: this.#hooks.origin?.() ?? -1, state: WAITING, attempt: 0, result: undefined, controller: undefined, timer: undefined, segment: undefined };
    this.#size++;
    if (this.#spec.ordered) this.#queue.push(entry);
    else {
      const tail = this.#segments[this.#segments.length - 1]!;
      entry.segment = tail;
      tail.open++;
    }
    if (this.#running.size < this.#spec.capacity) this.#start(entry);
    else this.#waiting.push(entry);
  }

  /** Calls cb once every record pushed so far is emitted; records pushed later come after it. */
  marker(cb: () => void): void {
    if (this.#closed) return;
    if (this.#spec.ordered) {
      if (this.#queue.length === 0) return this.#fire(cb);
      this.#queue.push({ marker: cb });
      return;
    }
    const tail = this.#segments[this.#segments.length - 1]!;
    if (this.#segments.length === 1 && tail.open === 0) return this.#fire(cb);
    tail.marker = cb;
    this.#segments.push({ open: 0, done: [], marker: undefined });
  }

  #start(entry: Entry): void {
    entry.state = RUNNING;
    this.#running.add(entry);
    this.#attempt(entry);
  }

  #attempt(entry: Entry): void {
    if (this.#closed) return;
    entry.attempt++;
    entry.timer = undefined;
    const controller = new AbortController();
    entry.controller = controller;
    let settled = false;
    const timeoutMs = this.#spec.timeoutMs;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      const error = new Error(`attempt ${entry.attempt} timed out after ${timeoutMs} ms`);
      controller.abort(error);
      this.#failed(entry, error);
    }, timeoutMs);
    let promise: Promise<unknown>;
    try {
      promise = Promise.resolve(this.#fn(entry.value, { signal: controller.signal, attempt: entry.attempt }));
    } catch (e) {
      promise = Promise.reject(e);
    }
    promise.then(
      (result) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        entry.result = result;
        this.#finished(entry, DONE);
      },
      (e: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#failed(entry, ensureError(e));
      },
    );
  }

  #failed(entry: Entry, error: Error): void {
    if (this.#closed) return;
    const retry = this.#spec.retry;
    if (entry.attempt < retry.maxAttempts) {
      // Exponential back-off, capped, with ± jitter; the record keeps its slot meanwhile.
      const base = Math.min(retry.maxDelayMs, retry.initialDelayMs * retry.multiplier ** (entry.attempt - 1));
      const delay = Math.max(0, Math.min(retry.maxDelayMs, base * (1 + retry.jitter * (2 * Math.random() - 1))));
      entry.timer = setTimeout(() => this.#attempt(entry), delay);
      return;
    }
    const err = new UserFunctionError(
      { jobId: this.#hooks.jobId, stageId: this.#hooks.stageId, operator: this.#name, keyGroup: entry.keyGroup },
      new Error(`failed after ${entry.attempt} attempt(s): ${error.message}`, { cause: error }),
    );
    err.sourcePosition = decodeOrigin(entry.origin);
    if (this.#spec.onFailure === 'dead-letter') {
      this.#hooks.deadLetter(err, entry.value);
      this.#finished(entry, DROPPED);
      return;
    }
    // The job fails (and restarts by its strategy): nothing more is emitted from here.
    this.#hooks.fail(err);
    this.close();
  }

  #finished(entry: Entry, state: number): void {
    if (this.#closed) return;
    entry.state = state;
    entry.controller = undefined;
    this.#running.delete(entry);
    const next = this.#waiting.shift();
    if (next !== undefined) this.#start(next);
    if (this.#spec.ordered) {
      while (this.#queue.length > 0 && !this.#closed) {
        const head = this.#queue[0]!;
        if ('marker' in head) {
          this.#queue.shift();
          this.#fire(head.marker);
        } else if (head.state === DONE || head.state === DROPPED) {
          this.#queue.shift();
          this.#emit(head);
        } else break;
      }
      return;
    }
    const segment = entry.segment!;
    segment.open--;
    if (segment === this.#segments[0]) this.#emit(entry);
    else segment.done.push(entry);
    // The first segment is finished: pass its marker, then what completed behind it.
    while (this.#segments.length > 1 && this.#segments[0]!.open === 0 && !this.#closed) {
      const first = this.#segments.shift()!;
      this.#fire(first.marker!);
      const head = this.#segments[0]!;
      const done = head.done;
      head.done = [];
      for (const e of done) this.#emit(e);
    }
  }

  #emit(entry: Entry): void {
    this.#size--;
    if (entry.state === DONE) {
      try {
        this.#downstream(entry.result, entry.timestamp, entry.origin);
      } catch (e) {
        this.#hooks.onError(this.#attribute(ensureError(e), entry), entry.value, entry.keyGroup);
      }
    }
    if (this.#readyWaiters.length > 0 && !this.full) this.#wakeReady();
  }

  /**
   * A user function's error downstream of the result names the task's current key group, which
   * by now may be another record's: it is named again with the result's own key group and source
   * position.
   */
  #attribute(e: Error, entry: Entry): Error {
    if (!(e instanceof UserFunctionError)) return e;
    const err = e.keyGroup === entry.keyGroup ? e : new UserFunctionError({ jobId: e.jobId, stageId: e.stageId, operator: e.operator, keyGroup: entry.keyGroup }, e.cause);
    err.sourcePosition ??= e.sourcePosition ?? decodeOrigin(entry.origin);
    return err;
  }

  #fire(cb: () => void): void {
    try {
      cb();
    } catch (e) {
      this.#hooks.onError(ensureError(e), undefined, -1);
    }
  }

  #wakeReady(): void {
    const waiters = this.#readyWaiters;
    this.#readyWaiters = [];
    for (const w of waiters) w();
  }

  /** Stops: aborts calls in flight, cancels back-offs, drops what is queued; markers never fire. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const abort = (e: Entry): void => {
      clearTimeout(e.timer);
      e.controller?.abort(new Error(`operator ${this.#name} stopped`));
    };
    for (const e of this.#running) abort(e);
    this.#running.clear();
    this.#queue.length = 0;
    this.#waiting.length = 0;
    this.#wakeReady();
  }
}
