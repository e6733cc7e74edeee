// Job lifecycle (docs/ARCHITECTURE.md, "Failure and scaling"): the jobs this coordinator holds
// while it leads, each a Job (coordinator/job.ts) whose state changes only by a guarded
// transition. This file orchestrates the pieces: submission (job-submission.ts), deployment of an
// epoch (here, with the commands in job-deployment.ts), checkpoints (job-checkpoints.ts),
// recovery (job-recovery.ts), counters (job-stats.ts), the job store (job-persistence.ts) and
// rebalancing (rebalancer.ts).
//
// Recovery: a dead worker or a failed task moves the job to a new epoch. Key groups are
// reassigned over the live workers; every worker rolls back to the last completed checkpoint
// (survivors drop their overlays, new owners read only their new key groups from the object
// store) and sources rewind to the checkpoint's sequences.
import type { NatsConnection } from '@nats-io/transport-node';
import { ForgedMessageError, type CheckpointAck, type TaskFailure } from '../core/control.ts';
import { senderNames } from '../core/subjects.ts';
import { splitCount } from '../core/manifest.ts';
import type { Epoch, JobId, WorkerId } from '../core/ids.ts';
import { EddyError, FencedError, NotFoundError, NotLeaderError, ensureError, excerpt } from '../core/errors.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { Logger } from '../core/logger.ts';
import { newChannelKey } from '../core/channel-key.ts';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.ts';
import type { CoordinatorMetrics } from './coordinator-metrics.ts';
import type { JobStore, StoredJob } from './job-store.ts';
import { assignJob, Rebalancer } from './rebalancer.ts';
import type { StagedBundle } from './bundle-upload.ts';
import type { Leadership } from './leader-lease.ts';
import { failure, type Job, type JobState } from './job.ts';
import { newJob, type SubmitOptions } from './job-submission.ts';
import { WorkerControl, WorkerRefusedError } from './job-deployment.ts';
import { JobCheckpoints } from './job-checkpoints.ts';
import { INFRASTRUCTURE_RETRY_MS, JobRecovery } from './job-recovery.ts';
import { JobPersistence } from './job-persistence.ts';
import { sampleJob, stageStatus, type StageStatus } from './job-stats.ts';

export type { Job, JobFailureInfo, JobState } from './job.ts';
export type { SubmitOptions } from './job-submission.ts';
export type { StageStatus } from './job-stats.ts';
export type { WorkerAssignment } from './rebalancer.ts';

export interface JobManagerOptions {
  nc: NatsConnection;
  store: ObjectStore;
  registry: WorkerRegistry;
  controlTimeoutMs: number;
  /** A deploy's time-out (CoordinatorOptions.deployTimeoutMs). */
  deployTimeoutMs: number;
  checkpointIntervalMs: number;
  /** Periodic checkpoints skipped while a job is idle (CoordinatorOptions.skipIdleCheckpoints). */
  skipIdleCheckpoints: boolean;
  checkpointTimeoutMs: number;
  retainedCheckpoints: number;
  /** A key group whose delta chain is longer is re-materialized (CheckpointCoordinatorOptions). */
  maxDeltaChain: number;
  /** Where jobs survive a coordinator restart (NATS KV). */
  jobStore: JobStore;
  /** After a restart, how long to let workers re-register before jobs are redeployed. */
  resumeDelayMs: number;
  /** Key groups one rebalancing checkpoint moves, at most (Rebalancer). */
  maxMovingKeyGroups: number;
  /** Replicas of the streams the coordinator creates (sources it creates, sinks, dead letters). @default 1 */
  natsReplicas?: number;
  logger: Logger;
  /** Spans and metrics of submits, checkpoints and recoveries. @default none */
  metrics?: CoordinatorMetrics;
  /**
   * Whether this coordinator leads, in which leader epoch (coordinator/leader-lease.ts). Only a
   * leader holds jobs; commands to workers carry its epoch; nothing is sent or committed without
   * a lease that surely holds. @default always the leader, epoch 0 (one coordinator, tests)
   */
  leadership?: Leadership;
  /**
   * Fault injection for tests: a submitted job's create in the job store waits this long after
   * its lease check (JobPersistence.create). @default 0
   */
  holdJobCreateMs?: number;
}

/** How often a job without live workers looks for one. */
const NO_WORKERS_RETRY_MS = 1000;

/** One coordinator on its own: it always leads, in epoch 0 (which workers accept from anyone). */
const ALWAYS_LEADER: Leadership = { term: 0, holds: () => true, leaderAddress: () => '', fenced: () => undefined };

export class JobManager {
  readonly #o: JobManagerOptions;
  readonly #jobs = new Map<JobId, Job>();
  readonly rebalancer: Rebalancer;
  readonly #leadership: Leadership;
  readonly #control: WorkerControl;
  readonly #persistence: JobPersistence;
  readonly #checkpoints: JobCheckpoints;
  readonly #recovery: JobRecovery;
  /** Leads and has taken the jobs over (resume() done): only then does it answer for them. */
  #leading = false;
  /** resume() is claiming the jobs: job keys written meanwhile are looked at once it is done. */
  #writtenWhileResuming: Set<string> | undefined;
  /** Jobs being taken over one by one (onJobWritten), by id. */
  readonly #adopting = new Set<string>();

  constructor(options: JobManagerOptions) {
    this.#o = options;
    const leadership = (this.#leadership = options.leadership ?? ALWAYS_LEADER);
    const { nc, store, registry, logger, metrics } = options;
    // A job of an earlier leadership (released, still in some callback) is no longer held.
    const holds = (job: Job) => this.#jobs.get(job.id) === job;
    this.#control = new WorkerControl({ nc, registry, leadership, controlTimeoutMs: options.controlTimeoutMs, deployTimeoutMs: options.deployTimeoutMs, checkpointIntervalMs: options.checkpointIntervalMs, logger });
    this.#persistence = new JobPersistence({ jobStore: options.jobStore, store, leadership, logger, holds, holdJobCreateMs: options.holdJobCreateMs ?? 0 });
    const persist = (job: Job) => this.#persistence.persist(job);
    this.#checkpoints = new JobCheckpoints({
      nc,
      store,
      registry,
      leadership,
      checkpointIntervalMs: options.checkpointIntervalMs,
      checkpointTimeoutMs: options.checkpointTimeoutMs,
      retainedCheckpoints: options.retainedCheckpoints,
      maxDeltaChain: options.maxDeltaChain,
      skipIdleCheckpoints: options.skipIdleCheckpoints,
      logger,
      metrics,
      persist,
      holds,
    });
    this.#recovery = new JobRecovery({
      control: this.#control,
      logger,
      metrics,
      job: (id) => this.#jobs.get(id),
      jobs: () => this.#jobs.values(),
      transition: (job, to) => this.#transition(job, to),
      persist,
      deploy: (job) => this.#deploy(job),
    });
    this.rebalancer = new Rebalancer({
      available: () => registry.available().map((w) => w.id),
      maxMovingKeyGroups: options.maxMovingKeyGroups,
      checkpointTimeoutMs: options.checkpointTimeoutMs,
      control: (w, subject, payload) => this.#control.send(w, subject, payload),
      join: (job, workers) => this.#control.join(job as Job, workers),
      persist: (job) => persist(job as Job),
      recover: (job, reason) => {
        const j = job as Job;
        j.lastFailure = failure(reason);
        this.#recovery.recover(j, INFRASTRUCTURE_RETRY_MS, 'rescale');
      },
      logger,
    });
  }

  /** A worker joined: running jobs spread onto it, a checkpoint at a time. */
  onWorkerJoined(): void {
    for (const job of this.#jobs.values()) if (job.state === 'RUNNING') this.rebalancer.request(job);
  }

  /**
   * A worker asks to leave (SIGTERM): its key groups and splits move to the others. Refused when
   * no other worker could take them (it then stops, and its jobs recover when a worker comes).
   */
  onWorkerLeaving(worker: WorkerId): string {
    if (this.#o.registry.available().length === 0) return 'no other worker to take over';
    for (const job of this.#jobs.values()) {
      if (!job.assignment.has(worker)) continue;
      if (job.state === 'RUNNING') this.rebalancer.request(job);
      // A deploy in progress assigned the leaving worker before it asked: redo it without it.
      else if (job.state === 'DEPLOYING') {
        job.lastFailure = failure(`worker ${worker} asked to leave while epoch ${job.epoch} deployed: deploying again without it`, worker);
        this.#recovery.recover(job, INFRASTRUCTURE_RETRY_MS, 'rescale');
      }
    }
    return '';
  }

  /** A worker stopped heartbeating: its jobs recover on the survivors at once. */
  onWorkerDead(worker: WorkerRecord): void {
    this.#recovery.onWorkerDead(worker);
  }

  /** A task failed on a worker: the job restarts from its latest checkpoint, by its restart strategy. */
  onTaskFailure(f: TaskFailure): void {
    this.#recovery.onTaskFailure(f);
  }

  /** Verifies and stores a bundle, then deploys it to the live workers. */
  async submit(manifestJson: string, declaredSha256: string, bundle: StagedBundle, options: SubmitOptions = {}): Promise<Job> {
    const metrics = this.#o.metrics;
    if (!metrics) return this.#submit(manifestJson, declaredSha256, bundle, options);
    let name = '';
    try {
      name = (JSON.parse(manifestJson) as { name?: unknown }).name as string;
    } catch {
      // #submit reports the bad manifest.
    }
    return metrics.traceSubmit(typeof name === 'string' ? name : '', () => this.#submit(manifestJson, declaredSha256, bundle, options));
  }

  async #submit(manifestJson: string, declaredSha256: string, bundle: StagedBundle, options: SubmitOptions): Promise<Job> {
    this.requireLeader();
    const { nc, store, logger, registry } = this.#o;
    const context = { nc, store, logger, natsReplicas: this.#o.natsReplicas ?? 1, liveWorkers: () => registry.alive().length, existing: (id: JobId) => this.#jobs.get(id) };
    const job = await newJob(context, manifestJson, declaredSha256, bundle, options);
    const previous = this.#jobs.get(job.id);
    // Held before it is stored: the job-key watch then takes the create for this leader's own.
    this.#jobs.set(job.id, job);
    try {
      await this.#persistence.create(job);
    } catch (e) {
      if (this.#jobs.get(job.id) === job) {
        if (previous) this.#jobs.set(job.id, previous);
        else this.#jobs.delete(job.id);
      }
      throw e;
    }
    logger.info({ jobId: job.id, sha256: job.sha256 }, 'job submitted');
    if (this.#jobs.get(job.id) !== job) throw leadershipLostAfterStore(job, this.#leadership);
    try {
      await this.#deploy(job, { firstDeploy: true });
    } catch (e) {
      // Drawing the epoch or writing the job store failed: refused at submit, and resubmittable
      // (it stayed DEPLOYING, so a resubmit was refused as ALREADY_EXISTS, before).
      if (this.#jobs.get(job.id) === job && job.state === 'DEPLOYING') this.#recovery.fail(job, failure(`deploy failed: ${ensureError(e).message}`));
      throw e;
    }
    if (this.#jobs.get(job.id) !== job) throw leadershipLostAfterStore(job, this.#leadership);
    // A deploy that met a lease not surely held is tried again (RESTARTING): the job is stored and runs.
    if (job.state !== 'RUNNING' && job.state !== 'RESTARTING') throw new EddyError('FAILED_PRECONDITION', `job ${job.id} could not be deployed: ${job.lastFailure?.message ?? job.state}`);
    return job;
  }

  /** Takes a savepoint: a checkpoint now, its _metadata kept under savepoints/ until deleted. */
  async savepoint(id: string, stop: boolean): Promise<{ job: Job; path: string; checkpointId: number }> {
    const job = this.get(id);
    if (job.state !== 'RUNNING' || !job.checkpointer) throw new EddyError('FAILED_PRECONDITION', `job ${id} is ${job.state}: a savepoint needs a running job`);
    const { path, checkpointId } = await this.#checkpoints.savepoint(job);
    this.#o.logger.info({ jobId: job.id, checkpoint: checkpointId, path, stop }, 'savepoint taken');
    if (stop) await this.cancel(job.id);
    return { job, path, checkpointId };
  }

  /** Deploys the job in a new epoch over the live workers, from its latest checkpoint. */
  async #deploy(job: Job, options: { firstDeploy?: boolean } = {}): Promise<void> {
    this.#transition(job, 'DEPLOYING');
    job.stopCheckpointer();
    const workers = this.#o.registry.available();
    if (workers.length === 0) {
      if (options.firstDeploy) return this.#recovery.fail(job, failure('no live workers to run the job'));
      // Wait for workers to come back rather than give up: the state is safe in the checkpoint.
      this.#transition(job, 'RESTARTING');
      job.lastFailure = failure('no live workers; waiting for one to join');
      job.restartTimer = setTimeout(() => void this.#deploy(job).catch((e: unknown) => this.#recovery.redeployFailed(job, e)), NO_WORKERS_RETRY_MS);
      return;
    }
    // Epochs come from the job store: monotonic across coordinator restarts, so a worker can
    // always tell a newer deploy from a stale one.
    const epoch = (await this.#o.jobStore.nextEpoch()) as Epoch;
    await job.checkpointsSettled;
    if (job.state !== 'DEPLOYING') return; // cancelled or overtaken meanwhile
    job.epoch = epoch;
    job.channelKey = newChannelKey();
    // Survivors keep what they hold (their RocksDB has it): only the rest is read from the store.
    job.assignment = assignJob(job.manifest, job.assignment, workers.map((w) => w.id)).assignment;
    job.splitSenders = Array.from({ length: splitCount(job.manifest) }, (_, p) => senderNames.split(p, epoch));
    const latest = job.latestCheckpoint;
    const targets = [...job.assignment.entries()];
    this.#persistence.persist(job);
    // The skip list goes out only once the job store holds it: a restarted coordinator must not
    // deploy without a skip some worker already acted on.
    await job.persisting;
    if (job.epoch !== epoch || job.state !== 'DEPLOYING') return;
    try {
      // A worker left out of this epoch (it is leaving) must not run the old one: its query
      // responder would answer with stale state.
      await this.#control.stop(job, this.#o.registry.alive().filter((w) => !job.assignment.has(w.id) && w.runningJobs.has(job.id)));
      await this.#control.deploy(job, targets);
    } catch (e) {
      // Overtaken by another recovery or a cancel, or let go with the lease (the new leader deploys it).
      if (job.epoch !== epoch || job.state !== 'DEPLOYING' || this.#jobs.get(job.id) !== job) return;
      const err = ensureError(e);
      this.#o.logger.warn({ jobId: job.id, epoch, err: err.message }, 'deploy failed');
      // A command refused for a lease not surely held says nothing about the job: tried again
      // while this coordinator leads, else the new leader deploys it.
      if (options.firstDeploy && !(err instanceof FencedError)) {
        // A bundle that does not load, or a manifest a worker refuses: refused at submit.
        this.#recovery.fail(job, { ...failure(`deploy failed: ${err.message}`), stack: err.stack ?? '' });
        await this.#control.stop(job);
        return;
      }
      const info = { ...failure(`deploy of epoch ${epoch} failed: ${err.message}`), stack: err.stack ?? '' };
      // A worker that answered with an error (a corrupt checkpoint, a bundle that fails) will
      // likely answer it again: the restart strategy bounds the attempts. Silence is a lost worker.
      if (err instanceof WorkerRefusedError) return this.#recovery.restart(job, info);
      job.lastFailure = info;
      return this.#recovery.recover(job, INFRASTRUCTURE_RETRY_MS, 'infrastructure');
    }
    if (job.epoch !== epoch || job.state !== 'DEPLOYING') return;
    this.#transition(job, 'RUNNING');
    this.#o.logger.info({ jobId: job.id, epoch, checkpoint: latest?.id ?? 0, workers: targets.map(([w]) => w) }, 'job running');
    this.#o.metrics?.recoveryEnded(job.recovery, job.id, { epoch });
    job.recovery = undefined;
    this.#checkpoints.start(job, epoch);
    // Workers that joined or asked to leave while this deploy ran.
    this.rebalancer.request(job);
  }

  /** Throws NotLeaderError (naming the leader) on a standby: it holds no jobs. */
  requireLeader(): void {
    if (this.#leadership === ALWAYS_LEADER) return;
    // Taking over (leads, jobs not resumed yet): no address to send to, ask again shortly.
    if (!this.#leading) throw new NotLeaderError(this.#leadership.term > 0 ? '' : this.#leadership.leaderAddress());
  }

  get(id: string): Job {
    this.requireLeader();
    const job = this.#jobs.get(id as JobId);
    if (!job) throw new NotFoundError(`job ${excerpt(id)} not found`);
    return job;
  }

  /** Every job this coordinator holds: none on a standby. */
  list(): Job[] {
    return [...this.#jobs.values()].sort((a, b) => a.submittedAtMs - b.submittedAtMs);
  }

  async cancel(id: string): Promise<Job> {
    const job = this.get(id);
    if (job.state === 'CANCELLED') return job;
    clearTimeout(job.restartTimer);
    job.stopCheckpointer();
    this.#transition(job, 'CANCELLED');
    this.#o.metrics?.recoveryEnded(job.recovery, job.id, { error: 'cancelled while recovering' });
    job.recovery = undefined;
    await this.#control.stop(job);
    return job;
  }

  onCheckpointRequest(jobId: string, epoch: number, sender: string): void {
    const job = this.#jobs.get(jobId as JobId);
    if (!job || job.epoch !== epoch) return;
    if (!job.assignment.has(sender as WorkerId)) throw new ForgedMessageError(`worker ${excerpt(sender)} asks for a checkpoint of job ${job.id}, which it is not assigned to`);
    job.checkpointer?.requestEarly();
  }

  onCheckpointAck(ack: CheckpointAck): void {
    this.#jobs.get(ack.jobId as JobId)?.checkpointer?.onAck(ack);
  }

  /** Samples counters for rates; called on every heartbeat. */
  sample(): void {
    const now = Date.now();
    for (const job of this.#jobs.values()) if (job.state === 'RUNNING') sampleJob(job, this.#o.registry, now);
  }

  stageStatus(job: Job): StageStatus[] {
    return stageStatus(job, this.#o.registry);
  }

  stop(): void {
    for (const job of this.#jobs.values()) job.stop();
  }

  /** The coordinator stops: pending job-store writes are not retried for ever (close() waits for them). */
  stopWriting(): void {
    this.#persistence.stop();
  }

  /**
   * This coordinator no longer leads: every job is let go (checkpoints, publishing, restarts
   * stop) and forgotten; the new leader resumes them from the job store. What is still under way
   * finds its job gone (nothing more is persisted) and its commands refused (no lease).
   */
  release(): void {
    this.#leading = false;
    this.stop();
    for (const job of this.#jobs.values()) job.checkpointer = undefined;
    this.#jobs.clear();
  }

  /** Moves the job's lifecycle (logged; an illegal move throws) and persists it. */
  #transition(job: Job, to: JobState): void {
    job.transition(to);
    this.#persistence.persist(job);
  }

  /** Waits for pending job-store writes (for a clean shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#jobs.values()].map((j) => j.persisting));
  }

  /**
   * A restarted coordinator, or a standby taking over: reload every job from the job store and
   * redeploy the live ones from their latest completed checkpoint, once workers have had time to
   * re-register.
   */
  async resume(resumeDelayMs = this.#o.resumeDelayMs): Promise<number> {
    let resumed = 0;
    const written = (this.#writtenWhileResuming = new Set());
    try {
      for (const stored of await this.#persistence.claim()) if (await this.#resumeStored(stored, resumeDelayMs)) resumed++;
      this.#leading = true;
    } finally {
      this.#writtenWhileResuming = undefined;
    }
    for (const jobId of written) this.onJobWritten(jobId);
    return resumed;
  }

  /** A stored job, claimed, held and (when live) redeployed from its latest checkpoint; true when live. */
  async #resumeStored(stored: StoredJob, resumeDelayMs: number): Promise<boolean> {
    const { job, live, republish } = await this.#persistence.load(stored);
    this.#jobs.set(job.id, job);
    if (!live) return false;
    for (const { checkpoint, metadata } of republish) {
      job.awaitPublication(checkpoint, metadata);
      this.#checkpoints.publish(job, metadata);
    }
    this.#o.logger.info({ jobId: job.id, checkpoint: job.latestCheckpoint?.id ?? 0 }, 'job resumed from the job store');
    // The restart this counts says why (it had no failure of its own to show).
    job.lastFailure = failure(`taken over by a coordinator that became leader (leader term ${this.#leadership.term}): redeployed from checkpoint ${job.latestCheckpoint?.id ?? 0}`);
    this.#recovery.recover(job, resumeDelayMs, 'coordinator-restart');
    return true;
  }

  /**
   * A job key was written in the job store (its watch: JobStore.watchJobs). A job this leader
   * does not hold was created by a deposed leader after this one's claim() listed the keys (a
   * submit whose create was held up past the lease, docs/ARCHITECTURE.md "Standby coordinators"):
   * it is claimed (the deposed leader's later writes fail) and run like every job taken over.
   */
  onJobWritten(jobId: string): void {
    if (this.#writtenWhileResuming) {
      this.#writtenWhileResuming.add(jobId);
      return;
    }
    if (!this.#leading || this.#jobs.has(jobId as JobId) || this.#adopting.has(jobId)) return;
    this.#adopting.add(jobId);
    void (async () => {
      const stored = await this.#persistence.claimOne(jobId);
      if (stored === undefined || !this.#leading || this.#jobs.has(jobId as JobId)) return;
      this.#o.logger.warn({ jobId, state: stored.state }, 'job created by another coordinator after this one took over; taking it over');
      await this.#resumeStored(stored, 0);
    })()
      .catch((e: unknown) => this.#o.logger.error({ jobId, err: ensureError(e) }, 'taking over a job created by another coordinator failed'))
      .finally(() => this.#adopting.delete(jobId));
  }
}

/** The submit's answer when the job was stored but this coordinator lost the lead meanwhile. */
function leadershipLostAfterStore(job: Job, leadership: Leadership): EddyError {
  const leader = leadership.leaderAddress();
  return new EddyError('FAILED_PRECONDITION', `job ${job.id} was stored, but this coordinator lost the leader lease before deploying it: the leader${leader ? ` (${leader})` : ''} runs it; see eddy job ${job.id}`, { reason: 'LEADER_LOST_AFTER_STORE', metadata: { job_id: job.id } });
}
