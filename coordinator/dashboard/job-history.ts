// What the dashboard shows of the past that the job manager does not keep: each checkpoint this
// coordinator saw complete or fail, each recovery with its cause, and a few minutes of stage
// rates. Bounded rings per job, in memory: a restarted coordinator starts them afresh (the job
// store keeps what recovery needs, not a UI's history).
import type { CoordinatorEvent } from '../coordinator-metrics.ts';
import type { CheckpointEntry, FailureView, RateSample, RestartView } from './api.ts';

export interface JobHistoryOptions {
  /** Checkpoints kept per job. @default 300 */
  maxCheckpoints?: number;
  /** Recoveries kept per job. @default 100 */
  maxRestarts?: number;
  /** Rate samples kept per job. @default 180 */
  maxRateSamples?: number;
}

interface History {
  checkpoints: Array<Omit<CheckpointEntry, 'slow'>>;
  restarts: RestartView[];
  rates: RateSample[];
}

export class JobHistory {
  readonly #jobs = new Map<string, History>();
  readonly #maxCheckpoints: number;
  readonly #maxRestarts: number;
  readonly #maxRateSamples: number;

  constructor(options: JobHistoryOptions = {}) {
    this.#maxCheckpoints = options.maxCheckpoints ?? 300;
    this.#maxRestarts = options.maxRestarts ?? 100;
    this.#maxRateSamples = options.maxRateSamples ?? 180;
  }

  #of(jobId: string): History {
    let h = this.#jobs.get(jobId);
    if (!h) this.#jobs.set(jobId, (h = { checkpoints: [], restarts: [], rates: [] }));
    return h;
  }

  /**
   * Records a coordinator event. `failure` is the job's last failure when the event is a
   * recovery (it names the stage and key group the event does not carry).
   */
  record(event: CoordinatorEvent, failure?: FailureView | null): void {
    const h = this.#of(event.jobId);
    switch (event.type) {
      case 'checkpoint-completed':
        push(
          h.checkpoints,
          { id: event.checkpointId, epoch: event.epoch, status: 'COMPLETED', startedAtUnixMs: event.startedAtUnixMs, durationMs: event.durationMs, bytes: event.bytes, workers: event.workers },
          this.#maxCheckpoints,
        );
        break;
      case 'checkpoint-failed':
        push(
          h.checkpoints,
          { id: event.checkpointId, epoch: event.epoch, status: 'FAILED', startedAtUnixMs: event.startedAtUnixMs, durationMs: Date.now() - event.startedAtUnixMs, bytes: 0, reason: event.reason },
          this.#maxCheckpoints,
        );
        break;
      case 'recovery-started':
        push(h.restarts, { atUnixMs: event.atUnixMs, cause: event.cause, message: event.failure, stageId: failure?.stageId ?? '', keyGroup: failure?.keyGroup ?? -1 }, this.#maxRestarts);
        break;
    }
  }

  /** Adds a sample of the job's stage rates. */
  sampleRates(jobId: string, sample: RateSample): void {
    push(this.#of(jobId).rates, sample, this.#maxRateSamples);
  }

  /** Checkpoints oldest first, the slow ones marked, and the median they were judged by. */
  checkpoints(jobId: string, slowFactor: number): { history: CheckpointEntry[]; medianDurationMs: number } {
    const list = this.#jobs.get(jobId)?.checkpoints ?? [];
    const durations = list.filter((c) => c.status === 'COMPLETED').map((c) => c.durationMs).sort((a, b) => a - b);
    const median = durations.length === 0 ? 0 : durations[Math.floor(durations.length / 2)]!;
    return { history: list.map((c) => ({ ...c, slow: c.status === 'COMPLETED' && durations.length >= 3 && c.durationMs > slowFactor * median })), medianDurationMs: median };
  }

  restarts(jobId: string): RestartView[] {
    return [...(this.#jobs.get(jobId)?.restarts ?? [])];
  }

  rates(jobId: string): RateSample[] {
    return [...(this.#jobs.get(jobId)?.rates ?? [])];
  }
}

function push<T>(ring: T[], item: T, max: number): void {
  ring.push(item);
  if (ring.length > max) ring.splice(0, ring.length - max);
}
