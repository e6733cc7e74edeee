// asyncMap's options as a job author writes them, and their compilation into the manifest's
// operator spec (defaults applied, validated at build time). The runtime is worker/task/async-operator.ts.
import { asyncSpecProblem, type AsyncOperatorSpec } from '../core/manifest.ts';

/** What an asyncMap function gets besides the record. */
export interface AsyncContext {
  /** Aborted when the attempt times out or the task stops: pass it to fetch() and the like. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
}

export type AsyncFunction<T, U> = (value: T, ctx: AsyncContext) => Promise<U>;

export interface AsyncMapOptions {
  /** Emit results in input order; false: as they complete (never across a barrier or watermark). @default true */
  ordered?: boolean;
  /** Records in the operator at once per task (in flight, backing off, or waiting for their turn to be emitted). @default 100 */
  capacity?: number;
  /** Time limit of one attempt; then its signal is aborted and the attempt counts as failed. @default 10000 */
  timeoutMs?: number;
  /** Retries after a failed attempt, with exponential back-off. @default no retry */
  retry?: AsyncRetryOptions;
  /** After the last attempt: fail the job (its restart strategy applies) or dead-letter the record with the reason. @default the job's errorPolicy */
  onFailure?: 'fail' | 'dead-letter';
}

export interface AsyncRetryOptions {
  /** Attempts in all, the first included. @default 3 */
  maxAttempts?: number;
  /** Delay before the first retry. @default 100 */
  initialDelayMs?: number;
  /** Ceiling of any delay. @default 10000 */
  maxDelayMs?: number;
  /** Each delay is the previous one times this. @default 2 */
  multiplier?: number;
  /** 0..1: each delay is randomised by ± this fraction. @default 0.1 */
  jitter?: number;
}

/** Applies defaults and validates, so a mistake fails at build time. */
export function compileAsyncMapOptions(o: AsyncMapOptions, errorPolicy: 'fail' | 'dead-letter'): AsyncOperatorSpec {
  const r = o.retry;
  const spec: AsyncOperatorSpec = {
    ordered: o.ordered ?? true,
    capacity: o.capacity ?? 100,
    timeoutMs: o.timeoutMs ?? 10_000,
    retry: {
      maxAttempts: r === undefined ? 1 : (r.maxAttempts ?? 3),
      initialDelayMs: r?.initialDelayMs ?? 100,
      maxDelayMs: r?.maxDelayMs ?? Math.max(10_000, r?.initialDelayMs ?? 0),
      multiplier: r?.multiplier ?? 2,
      jitter: r?.jitter ?? 0.1,
    },
    onFailure: o.onFailure ?? errorPolicy,
  };
  const problem = asyncSpecProblem(spec);
  if (problem !== undefined) throw new TypeError(`asyncMap: ${problem}`);
  return spec;
}
