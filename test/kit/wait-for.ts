// How tests wait: poll a condition until it holds, never sleep for an outcome (STYLE.md §11).
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitForOptions {
  /** Give up after this long, in ms. */
  timeoutMs: number;
  /** What is awaited, for the time-out message ("3 workers registered"). */
  what: string;
  /**
   * Pause between checks, in ms, exactly (a benchmark timing an outcome sets it). @default 25, or
   * CHECK_SHARE times as long as the last check took when that is longer (at most MAX_PAUSE_MS)
   */
  intervalMs?: number;
}

/**
 * A check may take at most a quarter of the time it is polled for: one that reads a whole stream
 * or a few thousand keys (200 ms and more on a loaded machine) polled every 25 ms took a core
 * from the job it waited for (the windows fault test read 15,000 results in a loop for 120 s).
 */
const CHECK_SHARE = 3;
/** The longest pause that a slow check earns: a condition that holds is seen within it. */
const MAX_PAUSE_MS = 1_000;

type Falsy = undefined | false | null;

const STILL_PENDING = Symbol('still pending');

/**
 * Polls `check` until it returns (or resolves to) a truthy value and resolves with that value.
 * A check that throws counts as "not yet"; on time-out the error names `what` and carries the
 * last error the check threw as its `cause` and in its message. A check that never settles
 * (a request without its own time-out) does not hold the wait past the deadline.
 */
export async function waitFor<T>(check: () => T | Falsy | Promise<T | Falsy>, options: WaitForOptions): Promise<T> {
  const intervalMs = options.intervalMs ?? 25;
  const adaptive = options.intervalMs === undefined;
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  let pendingAtDeadline = false;
  for (;;) {
    const checkStarted = Date.now();
    let checkMs = 0;
    try {
      const result = check();
      const value = await settleBefore(Promise.resolve(result), deadline);
      checkMs = Date.now() - checkStarted;
      if (value === STILL_PENDING) {
        pendingAtDeadline = true;
        break;
      }
      if (value) return value;
    } catch (e) {
      lastError = e;
      checkMs = Date.now() - checkStarted;
    }
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) break;
    const pauseMs = adaptive ? Math.max(intervalMs, Math.min(CHECK_SHARE * checkMs, MAX_PAUSE_MS)) : intervalMs;
    await delay(Math.min(pauseMs, remainingMs));
  }
  const details: string[] = [];
  if (lastError !== undefined) details.push(`last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  if (pendingAtDeadline) details.push('the last check had not settled');
  const detail = details.length === 0 ? '' : `; ${details.join('; ')}`;
  throw new Error(`timed out after ${options.timeoutMs}ms waiting for ${options.what}${detail}`, lastError === undefined ? undefined : { cause: lastError });
}

async function settleBefore<V>(promise: Promise<V>, deadline: number): Promise<V | typeof STILL_PENDING> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<typeof STILL_PENDING>((resolve) => {
    timer = setTimeout(() => resolve(STILL_PENDING), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
