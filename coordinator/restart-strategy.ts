// Whether and when a job restarts after its user code failed (docs/ARCHITECTURE.md, "Failure and
// scaling"). One RestartStrategy per job, asked once per failure; the caller schedules the
// restart. The spec type and its validation live in core/ because the manifest carries them.
import { DEFAULT_RESTART_STRATEGY, validateRestartStrategy, type RestartStrategySpec } from '../core/restart-strategy-spec.ts';

export { DEFAULT_RESTART_STRATEGY, MAX_RESTART_DELAY_MS, validateRestartStrategy, type RestartStrategyKind, type RestartStrategySpec } from '../core/restart-strategy-spec.ts';

export interface RestartDecision {
  restart: boolean;
  /** How long to wait before restarting, in ms; 0 when restart is false. */
  delayMs: number;
  /** Why not, when restart is false; '' otherwise. */
  reason: string;
}

/** Time and randomness, injectable so that tests control both. */
export interface RestartClock {
  /** Milliseconds on a monotonic clock; only differences are used. */
  now(): number;
  /** Uniform in [0, 1). */
  random(): number;
}

// Monotonic: a wall-clock step must not reset a backoff or empty a failure-rate window.
const systemClock: RestartClock = { now: () => performance.now(), random: Math.random };

export class RestartStrategy {
  readonly spec: RestartStrategySpec;
  readonly #clock: RestartClock;
  #failures = 0;
  /** exponential-backoff: the delay before jitter, 0 before the first failure or after a reset. */
  #backoffMs = 0;
  /** exponential-backoff: when the job last restarted (failure time + delay), i.e. its run began. */
  #runStartedAt = 0;
  /** failure-rate: times of the most recent failures, oldest first, at most maxFailures + 1. */
  readonly #recent: number[] = [];

  constructor(spec: RestartStrategySpec = DEFAULT_RESTART_STRATEGY, clock: RestartClock = systemClock) {
    this.spec = validateRestartStrategy(spec);
    this.#clock = clock;
  }

  /** Failures seen so far (for status), including those that were refused a restart. */
  get failures(): number {
    return this.#failures;
  }

  /** Called at each failure; says whether and when to restart. */
  onFailure(): RestartDecision {
    this.#failures++;
    const s = this.spec;
    switch (s.kind) {
      case 'none':
        return refuse('the restart strategy is "none"');
      case 'fixed-delay':
        if (this.#failures > s.maxAttempts) return refuse(`fixed-delay: all ${s.maxAttempts} restart attempts used`);
        return restartAfter(s.delayMs);
      case 'exponential-backoff':
        return restartAfter(this.#nextBackoff(s));
      case 'failure-rate':
        return this.#failureRate(s);
    }
  }

  #nextBackoff(s: Extract<RestartStrategySpec, { kind: 'exponential-backoff' }>): number {
    const now = this.#clock.now();
    // A run of resetAfterMs without failure, counted from the restart (not from the failure
    // before it, which would count the back-off wait as running time), starts over.
    const quiet = this.#backoffMs > 0 && now - this.#runStartedAt >= s.resetAfterMs;
    this.#backoffMs = this.#backoffMs === 0 || quiet ? s.initialDelayMs : Math.min(this.#backoffMs * s.multiplier, s.maxDelayMs);
    // ± jitter around the un-jittered delay, which alone drives the growth; maxDelayMs stays a
    // hard ceiling so that an operator can rely on it.
    const jittered = this.#backoffMs * (1 + s.jitter * (2 * this.#clock.random() - 1));
    const delayMs = Math.max(0, Math.min(s.maxDelayMs, Math.round(jittered)));
    this.#runStartedAt = now + delayMs;
    return delayMs;
  }

  #failureRate(s: Extract<RestartStrategySpec, { kind: 'failure-rate' }>): RestartDecision {
    const now = this.#clock.now();
    // Refused failures count too: they happened. A failure intervalMs old has left the window.
    this.#recent.push(now);
    while (this.#recent.length > 0 && now - this.#recent[0]! >= s.intervalMs) this.#recent.shift();
    const inWindow = this.#recent.length;
    // Only whether the count exceeds maxFailures matters: keep no more than that.
    if (inWindow > s.maxFailures + 1) this.#recent.splice(0, inWindow - s.maxFailures - 1);
    if (inWindow > s.maxFailures) return refuse(`failure-rate: more than ${s.maxFailures} failures within ${s.intervalMs} ms`);
    return restartAfter(s.delayMs);
  }
}

function refuse(reason: string): RestartDecision {
  return { restart: false, delayMs: 0, reason };
}

function restartAfter(delayMs: number): RestartDecision {
  return { restart: true, delayMs, reason: '' };
}
