// Poison records (docs/ARCHITECTURE.md, "Poison records"; README, "Poison records"): a source
// record whose processing fails again and again — a user function throws on it under errorPolicy
// "fail", or the watchdog stops a function running on it — would restart the job forever. The
// coordinator counts failures per source position (TaskFailure names the position of the record
// that failed) and, at the job's maxRecordAttempts, puts the position on the job's skip list.
// The list is part of the job record (persisted in the job store with the job) and sent with
// every DeployTasks: after the recovery every worker that reads the split dead-letters that
// record with its reason and processes everything else, so the job moves past it exactly once.
import type { SkippedRecord, TaskFailure } from '../core/control.ts';

/** One source position that failed, as the job store keeps it. */
export interface StoredPoisonRecord {
  split: number;
  sequence: number;
  stageId: string;
  /** The last failure's message and stack (truncated). */
  reason: string;
  stack: string;
  attempts: number;
  /** On the skip list: dead-lettered and skipped by every worker. */
  skipped: boolean;
}

/** Positions with failures that are counted but not skipped yet: the oldest go beyond this. */
const MAX_COUNTED = 1000;
/** A reason or stack kept in the job record is cut to this many characters. */
const MAX_TEXT_CHARS = 2000;

export class PoisonRecords {
  /** "<split>:<sequence>" → the position's failures, in first-failure order. */
  readonly #records = new Map<string, StoredPoisonRecord>();

  constructor(stored: readonly StoredPoisonRecord[] = []) {
    for (const r of stored) this.#records.set(`${r.split}:${r.sequence}`, { ...r });
  }

  /**
   * Counts a failure at its record's source position; returns the record when this failure
   * puts it on the skip list (its attempts reached maxAttempts), else undefined. Failures
   * without a position (a lost channel, a timer, a record from an asyncMap) are not counted.
   */
  onFailure(f: TaskFailure, maxAttempts: number): StoredPoisonRecord | undefined {
    if (f.hasSourcePosition !== true || maxAttempts <= 0) return undefined;
    const split = Number(f.split);
    const sequence = Number(f.sequence);
    if (!Number.isSafeInteger(split) || split < 0 || !Number.isSafeInteger(sequence) || sequence < 1) return undefined;
    const key = `${split}:${sequence}`;
    let r = this.#records.get(key);
    if (r?.skipped === true) return undefined;
    if (r === undefined) {
      r = { split, sequence, stageId: '', reason: '', stack: '', attempts: 0, skipped: false };
      this.#records.set(key, r);
      this.#evict();
    }
    r.attempts++;
    r.stageId = f.stageId;
    r.reason = cut(f.message);
    r.stack = cut(f.stack);
    if (r.attempts < maxAttempts) return undefined;
    r.skipped = true;
    return r;
  }

  /** Failures so far of the record at a position (0: none counted). */
  attempts(split: number, sequence: number): number {
    return this.#records.get(`${split}:${sequence}`)?.attempts ?? 0;
  }

  /** The skip list, for DeployTasks. */
  skipped(): SkippedRecord[] {
    const out: SkippedRecord[] = [];
    for (const r of this.#records.values()) {
      if (r.skipped) out.push({ split: r.split, sequence: r.sequence, stageId: r.stageId, reason: r.reason, stack: r.stack, attempts: r.attempts });
    }
    return out;
  }

  toStored(): StoredPoisonRecord[] {
    return [...this.#records.values()].map((r) => ({ ...r }));
  }

  get size(): number {
    return this.#records.size;
  }

  /** Counted positions beyond MAX_COUNTED go, oldest first; skipped ones stay (the job relies on them). */
  #evict(): void {
    if (this.#records.size <= MAX_COUNTED) return;
    for (const [key, r] of this.#records) {
      if (this.#records.size <= MAX_COUNTED) return;
      if (!r.skipped) this.#records.delete(key);
    }
  }
}

function cut(text: string): string {
  return text.length > MAX_TEXT_CHARS ? `${text.slice(0, MAX_TEXT_CHARS)}…` : text;
}

/** Checks a job-store value's poison records; the problem, or undefined when they are fine. */
export function storedPoisonRecordsProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'is not an array';
  for (const [i, r] of value.entries()) {
    const o = r as Record<string, unknown>;
    if (typeof o !== 'object' || o === null) return `[${i}] is not an object`;
    if (!Number.isSafeInteger(o.split) || !Number.isSafeInteger(o.sequence) || !Number.isSafeInteger(o.attempts)) return `[${i}] needs integer split, sequence and attempts`;
    if (typeof o.stageId !== 'string' || typeof o.reason !== 'string' || typeof o.stack !== 'string' || typeof o.skipped !== 'boolean') return `[${i}] needs stageId, reason, stack and skipped`;
  }
  return undefined;
}
