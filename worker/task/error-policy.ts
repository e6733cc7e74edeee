// The job's error policy (docs/ARCHITECTURE.md, "Sources and sinks"), in one place for every task
// (source, generator, keyed, its timers) and every operator tree (asyncMap results, operators
// after them): what becomes of a record whose user code throws.
//
// - "fail": the error fails the task; the job restarts by its restart strategy, and a record that
//   fails every attempt becomes a poison record (docs/ARCHITECTURE.md, "Poison records").
// - "dead-letter": a record is all-or-nothing (its state writes are undone, its output is held
//   until it succeeds) and one that throws goes to eddy.<job>'s dead letters with the reason and
//   the stack of the user code (dead-letters.ts).
//
// Only on a failure does anything here allocate: the record path reads two booleans.
import type { JobId } from '../../core/ids.ts';
import type { JobManifest } from '../../core/manifest.ts';
import { UserFunctionError, ensureError } from '../../core/errors.ts';
import type { DeadLetters, SourcePosition } from './dead-letters.ts';
import type { StageCounters } from './stage-counters.ts';

export interface ErrorPolicyOptions {
  policy: JobManifest['errorPolicy'];
  jobId: JobId;
  stageId: string;
  /** The task's dead letters (taken into each checkpoint's output at its barrier). */
  deadLetters: DeadLetters;
  /** Counts the dead letters. */
  counters: StageCounters;
}

export class ErrorPolicy {
  /** "fail": a throwing user function fails the task. */
  readonly fails: boolean;
  /** "dead-letter": records are all-or-nothing, and one whose user code throws is dead-lettered. */
  readonly atomicRecords: boolean;
  readonly #o: ErrorPolicyOptions;

  constructor(options: ErrorPolicyOptions) {
    this.#o = options;
    this.fails = options.policy === 'fail';
    this.atomicRecords = options.policy === 'dead-letter';
  }

  /**
   * What user code of the stage threw, at keyGroup, as a UserFunctionError (one already is kept as
   * it is); `operator` names what ran when it is not the stage's function (a timer callback).
   */
  userError(e: unknown, keyGroup: number, operator: string = this.#o.stageId): UserFunctionError {
    const { jobId, stageId } = this.#o;
    return e instanceof UserFunctionError ? e : new UserFunctionError({ jobId, stageId, operator, keyGroup }, e);
  }

  /**
   * Dead-letters a record whose user code failed with `err`: the reason and the user code's
   * stack, the key group (when >= 0) and, for a record read from a stream, where it was read.
   */
  deadLetter(err: UserFunctionError, record: unknown, keyGroup = -1, source?: SourcePosition): void {
    const { stageId, deadLetters, counters } = this.#o;
    deadLetters.publish({ stageId, operator: err.operator, ...(keyGroup >= 0 && { keyGroup }), reason: err.message, stack: ensureError(err.cause).stack ?? '', record, ...(source !== undefined && { source }) }, counters);
  }
}
