// What a failure does to a job (docs/ARCHITECTURE.md, "Recovery" and "Poison records"): a lost
// worker or channel recovers it at once, uncounted; a user-code failure counts against its
// restart strategy (coordinator/restart-strategy.ts), and against the failing source record,
// which is skipped from then on at the job's maxRecordAttempts; a job out of restarts fails.
// A recovery moves the job to a new epoch: it is redeployed, after a delay, from its latest
// completed checkpoint.
import { ForgedMessageError, type TaskFailure } from '../core/control.ts';
import { ensureError, excerpt } from '../core/errors.ts';
import type { JobId, WorkerId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { DEFAULT_MAX_RECORD_ATTEMPTS } from '../core/manifest.ts';
import type { CoordinatorMetrics, RecoveryCause } from './coordinator-metrics.ts';
import type { WorkerControl } from './job-deployment.ts';
import { failure, type Job, type JobFailureInfo, type JobState } from './job.ts';
import type { WorkerRecord } from './worker-registry.ts';

/** Delay before redeploying after an infrastructure failure (a lost worker or channel). */
export const INFRASTRUCTURE_RETRY_MS = 200;
/** Delay before trying again a redeploy that could not draw its epoch or write the job store. */
const REDEPLOY_RETRY_MS = 1_000;

export interface JobRecoveryOptions {
  control: WorkerControl;
  logger: Logger;
  metrics?: CoordinatorMetrics | undefined;
  /** The job of that id this coordinator holds, if any. */
  job(id: JobId): Job | undefined;
  /** Every job this coordinator holds. */
  jobs(): Iterable<Job>;
  /** Moves the job's lifecycle and persists the change. */
  transition(job: Job, to: JobState): void;
  persist(job: Job): void;
  /** Deploys the job in a new epoch (JobManager); a recovery's timer calls it. */
  deploy(job: Job): Promise<void>;
}

export class JobRecovery {
  readonly #o: JobRecoveryOptions;

  constructor(options: JobRecoveryOptions) {
    this.#o = options;
  }

  /** A task failed on a worker: the job restarts from its latest checkpoint, by its restart strategy. */
  onTaskFailure(f: TaskFailure): void {
    const job = this.#o.job(f.jobId as JobId);
    if (!job || job.epoch !== Number(f.epoch) || (job.state !== 'RUNNING' && job.state !== 'DEPLOYING')) return;
    // A failure restarts the job: only a worker of its epoch may report one.
    if (!job.assignment.has(f.workerId as WorkerId)) throw new ForgedMessageError(`worker ${excerpt(f.workerId)} reports a failure of job ${job.id}, which it is not assigned to`);
    const info = { message: f.message, stageId: f.stageId, keyGroup: f.keyGroup, workerId: f.workerId, stack: f.stack, atUnixMs: Number(f.atUnixMs) };
    if (f.userCode && f.hasSourcePosition === true) this.#countPoison(job, f, info);
    if (f.userCode) return this.restart(job, info);
    // A lost channel or a vanished peer is not the job's fault: recover at once, uncounted.
    job.lastFailure = info;
    this.recover(job, INFRASTRUCTURE_RETRY_MS, 'infrastructure');
  }

  /** A worker stopped heartbeating: its jobs recover on the survivors at once. */
  onWorkerDead(worker: WorkerRecord): void {
    for (const job of this.#o.jobs()) {
      if ((job.state === 'RUNNING' || job.state === 'DEPLOYING') && job.assignment.has(worker.id)) {
        job.lastFailure = failure(`worker ${worker.id} stopped heartbeating`, worker.id);
        this.recover(job, 0, 'worker-lost');
      }
    }
  }

  /** A failure of the job's own (its code, a bundle or checkpoint a worker refuses): restarted while its restart strategy allows. */
  restart(job: Job, f: JobFailureInfo): void {
    job.lastFailure = f;
    const decision = job.restartStrategy.onFailure();
    if (!decision.restart) {
      this.fail(job, { ...f, message: `${f.message} (not restarted: ${decision.reason})` });
      void this.#o.control.stop(job);
      return;
    }
    this.recover(job, decision.delayMs, 'task-failure');
  }

  /** Redeploys the job in a new epoch after `delayMs`, from its latest completed checkpoint. */
  recover(job: Job, delayMs: number, cause: RecoveryCause): void {
    job.stopCheckpointer();
    if (job.state !== 'RESTARTING') this.#o.transition(job, 'RESTARTING');
    job.restarts++;
    // A recovery that fails again before the job runs stays one span, from the first decision.
    const recovery = this.#o.metrics?.recoveryStarted(job.id, cause, job.lastFailure?.message ?? '', job.recovery);
    if (recovery) job.recovery = recovery;
    this.#o.logger.warn({ jobId: job.id, delayMs, failure: job.lastFailure?.message }, 'job restarting');
    clearTimeout(job.restartTimer);
    job.restartTimer = setTimeout(() => {
      if (job.state !== 'RESTARTING') return;
      void this.#o.deploy(job).catch((e: unknown) => this.redeployFailed(job, e));
    }, delayMs);
  }

  /**
   * A redeploy threw before any worker was asked (drawing the epoch or writing the job store:
   * JetStream answering "temporarily unavailable" while a NATS node is lost or its stream elects
   * a leader). Nothing of the job's own failed: it recovers again after a pause, uncounted by its
   * restart strategy (it failed for good on the first such error before, on a NATS-node loss).
   */
  redeployFailed(job: Job, e: unknown): void {
    if (this.#o.job(job.id) !== job || (job.state !== 'DEPLOYING' && job.state !== 'RESTARTING')) return;
    job.lastFailure = failure(`redeploy failed: ${ensureError(e).message}`);
    this.recover(job, REDEPLOY_RETRY_MS, 'infrastructure');
  }

  /** The job fails for good: it runs no more until submitted again. */
  fail(job: Job, f: JobFailureInfo): void {
    job.lastFailure = f;
    job.stopCheckpointer();
    if (job.state !== 'FAILED') this.#o.transition(job, 'FAILED');
    this.#o.metrics?.recoveryEnded(job.recovery, job.id, { error: f.message });
    job.recovery = undefined;
    this.#o.logger.error({ jobId: job.id, failure: f }, 'job failed');
  }

  /**
   * A user-code failure at a known source record: counted per position; at the job's
   * maxRecordAttempts the record goes on the skip list (coordinator/poison-records.ts), which the
   * job holds and the redeploy that follows sends to every worker.
   */
  #countPoison(job: Job, f: TaskFailure, info: JobFailureInfo): void {
    const maxAttempts = job.manifest.maxRecordAttempts ?? DEFAULT_MAX_RECORD_ATTEMPTS;
    const skipped = job.poison.onFailure(f, maxAttempts);
    const attempts = job.poison.attempts(Number(f.split), Number(f.sequence));
    if (skipped !== undefined) {
      info.message = `${info.message} (a poison record: split ${skipped.split}, sequence ${skipped.sequence} failed ${skipped.attempts} times; dead-lettered and skipped from now on)`;
      this.#o.logger.warn({ jobId: job.id, split: skipped.split, sequence: skipped.sequence, stage: skipped.stageId, attempts: skipped.attempts }, 'poison record skipped');
    } else if (maxAttempts > 0 && attempts > 0) {
      info.message = `${info.message} (split ${Number(f.split)}, sequence ${Number(f.sequence)}: attempt ${attempts} of ${maxAttempts} before it is skipped)`;
    }
    // Written before the redeploy's DeployTasks go out (writes of a job keep their order).
    this.#o.persist(job);
  }
}
