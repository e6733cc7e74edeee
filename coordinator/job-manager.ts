// Job lifecycle: accept a bundle and its manifest, assign key groups and source splits to the
// live workers, deploy, start, checkpoint, recover, track status and failures, cancel.
//
// Recovery (docs/ARCHITECTURE.md, "Failure and scaling"): a dead worker or a failed task moves the
// job to a new epoch. Key groups are reassigned over the live workers; every worker rolls back
// to the last completed checkpoint (survivors drop their overlays, new owners read only their
// new key groups from the object store) and sources rewind to the checkpoint's sequences.
import type { NatsConnection } from '@nats-io/transport-node';
import type { TaskFailure } from '../core/control.ts';
import { senderNames } from '../core/subjects.ts';
import { parseManifest, splitCount, splitStreams } from '../core/manifest.ts';
import { parseJobId, type Epoch, type JobId, type WorkerId } from '../core/ids.ts';
import { EddyError, InvalidArgumentError, NotFoundError, RetryableError, ensureError } from '../core/errors.ts';
import { sha256Hex } from '../core/bundle.ts';
import type { ObjectStore } from '../core/object-store.ts';
import { objectKeys } from '../core/object-keys.ts';
import { ensureDeadLetterStream, ensureSinkStreams, ensureSourceStream } from '../core/nats.ts';
import type { Logger } from '../core/logger.ts';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.ts';
import { CheckpointCoordinator, type CompletedCheckpoint } from './checkpoint-coordinator.ts';
import type { CoordinatorMetrics, RecoveryCause } from './coordinator-metrics.ts';
import { CheckpointGarbageCollector } from './checkpoint-gc.ts';
import { OutputPublisher, hasOutput, outputKeys } from './output-publisher.ts';
import { encodeMetadata } from '../core/checkpoint-format.ts';
import type { JobStore } from './job-store.ts';
import { assignJob, Rebalancer, type WorkerAssignment } from './rebalancer.ts';
import { describeStartAt } from '../core/start-at.ts';
import { failure, Job, type JobFailureInfo, type JobState } from './job.ts';
import { sampleJob, stageStatus, type StageStatus } from './job-stats.ts';
import { loadStoredJob, wasLive } from './job-persistence.ts';
import { loadSavepoint, resolveInitialPositions, startAtOf, type SubmitOptions } from './job-submission.ts';
import { WorkerControl, WorkerRefusedError } from './job-deployment.ts';

export { Job, type JobFailureInfo, type JobState } from './job.ts';
export type { StageStatus } from './job-stats.ts';
export type { SubmitOptions } from './job-submission.ts';
/** The name the gRPC server and the feature router use for a job. */
export type JobRecord = Job;

export type { WorkerAssignment } from './rebalancer.ts';

export interface JobManagerOptions {
  nc: NatsConnection;
  store: ObjectStore;
  registry: WorkerRegistry;
  controlTimeoutMs: number;
  checkpointIntervalMs: number;
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
  logger: Logger;
  /** Spans and metrics of submits, checkpoints and recoveries. @default none */
  metrics?: CoordinatorMetrics;
}

export class JobManager {
  readonly #o: JobManagerOptions;
  readonly #jobs = new Map<JobId, Job>();
  readonly #workers: WorkerControl;
  readonly rebalancer: Rebalancer;

  constructor(options: JobManagerOptions) {
    this.#o = options;
    this.#workers = new WorkerControl(options);
    this.rebalancer = new Rebalancer({
      available: () => options.registry.available().map((w) => w.id),
      maxMovingKeyGroups: options.maxMovingKeyGroups,
      checkpointTimeoutMs: options.checkpointTimeoutMs,
      control: (w, subject, payload) => this.#workers.request(w, subject, payload),
      join: (job, workers) => this.#workers.join(job as Job, workers),
      persist: (job) => this.#persist(job as Job),
      recover: (job, reason) => {
        const record = job as Job;
        record.lastFailure = failure(reason);
        this.#recover(record, INFRASTRUCTURE_RETRY_MS, 'rescale');
      },
      logger: options.logger,
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
      else if (job.state === 'DEPLOYING') this.#recover(job, INFRASTRUCTURE_RETRY_MS, 'rescale');
    }
    return '';
  }

  /** Verifies and stores a bundle, then deploys it to the live workers. */
  async submit(manifestJson: string, declaredSha256: string, bundle: Uint8Array, options: SubmitOptions = {}): Promise<Job> {
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

  async #submit(manifestJson: string, declaredSha256: string, bundle: Uint8Array, options: SubmitOptions): Promise<Job> {
    const actual = sha256Hex(bundle);
    if (actual !== declaredSha256) {
      throw new InvalidArgumentError(`bundle sha256 mismatch: the header declares ${declaredSha256 || '(none)'}, the ${bundle.length} bytes received hash to ${actual}`);
    }
    const manifest = parseManifest(manifestJson);
    const id = parseJobId(manifest.name);
    const existing = this.#jobs.get(id);
    if (existing && existing.state !== 'CANCELLED' && existing.state !== 'FAILED') {
      throw new EddyError('ALREADY_EXISTS', `job ${id} is ${existing.state}; cancel it before submitting it again`);
    }
    if (this.#o.registry.alive().length === 0) throw new EddyError('FAILED_PRECONDITION', 'no live workers: start at least one worker before submitting a job');
    const startAt = startAtOf(manifest, options);
    const fromSavepoint = options.fromSavepoint ? await loadSavepoint(this.#o.store, this.#o.logger, manifest, options.fromSavepoint, options.allowNonRestoredState ?? false) : undefined;
    // A savepoint's positions are where the job goes on from; the manifest's startAt is for a fresh start only.
    for (const source of manifest.sources) {
      if (fromSavepoint && source.startAt) this.#o.logger.info({ jobId: id, stream: source.stream, startAt: describeStartAt(source.startAt) }, 'started from a savepoint: the source startAt is not applied');
    }

    const bundleKey = objectKeys.bundle(id, actual);
    await this.#o.store.put(bundleKey, bundle);
    await this.#o.store.put(objectKeys.manifest(id, actual), new TextEncoder().encode(manifestJson));
    const { nc } = this.#o;
    for (const source of manifest.sources) await ensureSourceStream(nc, source);
    await ensureSinkStreams(nc, manifest.stages.flatMap((s) => s.sinks));
    await ensureDeadLetterStream(nc);
    const initialPositions = !fromSavepoint && startAt.size > 0 ? await resolveInitialPositions(nc, this.#o.logger, manifest, startAt) : undefined;

    const job = new Job(
      {
        id,
        manifest,
        manifestJson,
        sha256: actual,
        bundleKey,
        submittedAtMs: Date.now(),
        epoch: 0 as Epoch,
        // Started from a savepoint, the job's first deploy restores it like a checkpoint.
        checkpoints: fromSavepoint ? [fromSavepoint] : [],
        lastCheckpointId: Math.max(existing?.lastCheckpointId ?? 0, fromSavepoint?.id ?? 0),
        restarts: 0,
        // Savepoints outlive the job that took them (the garbage collector keeps what they name).
        savepoints: existing?.savepoints ?? [],
        ...(initialPositions && { initialPositions }),
      },
      'SUBMITTED',
    );
    this.#jobs.set(id, job);
    this.#persist(job);
    this.#o.logger.info({ jobId: id, sha256: actual }, 'job submitted');
    await this.#deploy(job, { firstDeploy: true });
    if (job.state !== 'RUNNING') throw new EddyError('FAILED_PRECONDITION', `job ${id} could not be deployed: ${job.lastFailure?.message ?? job.state}`);
    return job;
  }

  /** Takes a savepoint: a checkpoint now, its _metadata kept under savepoints/ until deleted. */
  async savepoint(id: string, stop: boolean): Promise<{ job: Job; path: string; checkpointId: number }> {
    const job = this.get(id);
    if (job.state !== 'RUNNING' || !job.checkpointer) throw new EddyError('FAILED_PRECONDITION', `job ${id} is ${job.state}: a savepoint needs a running job`);
    let checkpoint: CompletedCheckpoint;
    try {
      checkpoint = await job.checkpointer.checkpointNow(this.#o.checkpointTimeoutMs);
    } catch (e) {
      throw new RetryableError(`savepoint of job ${id} failed: ${ensureError(e).message}`, 1000, { cause: e });
    }
    const path = objectKeys.savepointMetadata(job.id, checkpoint.id);
    // The output already went out with the checkpoint: a savepoint restores state, not output.
    const metadata = { ...checkpoint.metadata, savepoint: true, outputs: [], files: [] };
    await this.#o.store.put(path, encodeMetadata(metadata));
    job.savepoints.push({ ...checkpoint, metadataKey: path, metadata });
    this.#persist(job);
    this.#o.logger.info({ jobId: job.id, checkpoint: checkpoint.id, path, stop }, 'savepoint taken');
    if (stop) await this.cancel(job.id);
    return { job, path, checkpointId: checkpoint.id };
  }

  #assign(job: Job, workers: WorkerRecord[]): Map<WorkerId, WorkerAssignment> {
    // Survivors keep what they hold (their RocksDB has it): only the rest is read from the store.
    return assignJob(job.manifest, job.assignment, workers.map((w) => w.id)).assignment;
  }

  /** Deploys the job in a new epoch over the live workers, from its latest checkpoint. */
  async #deploy(job: Job, options: { firstDeploy?: boolean } = {}): Promise<void> {
    this.#transition(job, 'DEPLOYING');
    job.checkpointer?.stop();
    job.checkpointer = undefined;
    const workers = this.#o.registry.available();
    if (workers.length === 0) {
      if (options.firstDeploy) return this.#failJob(job, failure('no live workers to run the job'));
      // Wait for workers to come back rather than give up: the state is safe in the checkpoint.
      this.#transition(job, 'RESTARTING');
      job.lastFailure = failure('no live workers; waiting for one to join');
      job.restartTimer = setTimeout(() => void this.#deploy(job).catch(() => undefined), NO_WORKERS_RETRY_MS);
      return;
    }
    // Epochs come from the job store: monotonic across coordinator restarts, so a worker can
    // always tell a newer deploy from a stale one.
    const epoch = (await this.#o.jobStore.nextEpoch()) as Epoch;
    if (job.state !== 'DEPLOYING') return; // cancelled or overtaken meanwhile
    job.epoch = epoch;
    job.assignment = this.#assign(job, workers);
    job.splitSenders = Array.from({ length: splitCount(job.manifest) }, (_, p) => senderNames.split(p, epoch));
    const latest = job.latestCheckpoint;
    const targets = [...job.assignment.entries()];
    this.#persist(job);
    try {
      // A worker left out of this epoch (it is leaving) must not run the old one: its query
      // responder would answer with stale state.
      await this.#stopOnWorkers(job, this.#o.registry.alive().filter((w) => !job.assignment.has(w.id) && w.runningJobs.has(job.id)));
      await this.#workers.deployAndStart(job, targets);
    } catch (e) {
      if (job.epoch !== epoch || job.state !== 'DEPLOYING') return; // overtaken by another recovery or a cancel
      const err = ensureError(e);
      this.#o.logger.warn({ jobId: job.id, epoch, err: err.message }, 'deploy failed');
      if (options.firstDeploy) {
        // A bundle that does not load, or a manifest a worker refuses: refused at submit.
        this.#failJob(job, { ...failure(`deploy failed: ${err.message}`), stack: err.stack ?? '' });
        await this.#stopOnWorkers(job);
        return;
      }
      const info = { ...failure(`deploy of epoch ${epoch} failed: ${err.message}`), stack: err.stack ?? '' };
      // A worker that answered with an error (a corrupt checkpoint, a bundle that fails) will
      // likely answer it again: the restart strategy bounds the attempts. Silence is a lost worker.
      if (err instanceof WorkerRefusedError) return this.#restart(job, info);
      job.lastFailure = info;
      return this.#recover(job, INFRASTRUCTURE_RETRY_MS, 'infrastructure');
    }
    if (job.epoch !== epoch || job.state !== 'DEPLOYING') return;
    this.#transition(job, 'RUNNING');
    this.#o.logger.info({ jobId: job.id, epoch, checkpoint: latest?.id ?? 0, workers: targets.map(([w]) => w) }, 'job running');
    this.#o.metrics?.recoveryEnded(job.recovery, job.id, { epoch });
    job.recovery = undefined;
    job.checkpointer = new CheckpointCoordinator({
      nc: this.#o.nc,
      store: this.#o.store,
      intervalMs: this.#o.checkpointIntervalMs,
      timeoutMs: this.#o.checkpointTimeoutMs,
      retain: this.#o.retainedCheckpoints,
      maxDeltaChain: this.#o.maxDeltaChain,
      logger: this.#o.logger.child({ jobId: job.id, epoch }),
      nextId: () => ++job.lastCheckpointId,
      target: () =>
        job.state === 'RUNNING' && job.epoch === epoch
          ? {
              jobId: job.id,
              epoch,
              bundleSha256: job.sha256,
              maxParallelism: job.manifest.maxParallelism,
              splitStreams: splitStreams(job.manifest),
              workers: [...job.assignment.keys()],
            }
          : undefined,
      latest: () => job.latestCheckpoint,
      onCompleted: async (c) => this.#retain(job, c),
      publish: (metadata) => this.#outputs(job).enqueue(metadata),
      stats: job.checkpointStats,
      ...(this.#o.metrics !== undefined && { metrics: this.#o.metrics }),
    });
    // Workers that joined or asked to leave while this deploy ran.
    this.rebalancer.request(job);
  }

  /**
   * Checkpoint c completed: keep the last retainedCheckpoints, then, in the background, delete
   * the _metadata of the dropped ones and every object no retained checkpoint or savepoint
   * references (coordinator/checkpoint-gc.ts).
   */
  #outputs(job: Job): OutputPublisher {
    return (job.outputPublisher ??= new OutputPublisher(this.#o.nc, this.#o.store, this.#o.logger.child({ jobId: job.id }), (id) => job.unpublishedOutputs?.delete(id)));
  }

  async #retain(job: Job, c: CompletedCheckpoint): Promise<void> {
    job.checkpoints.push(c);
    if (hasOutput(c.metadata)) (job.unpublishedOutputs ??= new Map()).set(c.id, outputKeys(c.metadata));
    while (job.checkpoints.length > this.#o.retainedCheckpoints) job.checkpoints.shift();
    // Persisted after the shift, and collected only once that write is done: a restarted
    // coordinator never looks for a checkpoint whose objects are gone.
    this.#persist(job);
    job.checkpointGc ??= new CheckpointGarbageCollector({
      store: this.#o.store,
      jobId: job.id,
      retained: () => ({
        checkpoints: job.checkpoints,
        savepoints: job.savepoints,
        unpublishedOutputs: [...(job.unpublishedOutputs?.values() ?? [])].flat(),
      }),
      ready: () => job.persisting ?? Promise.resolve(),
      logger: this.#o.logger,
    });
    job.checkpointGc.request();
  }

  get(id: string): Job {
    const job = this.#jobs.get(id as JobId);
    if (!job) throw new NotFoundError(`job ${id} not found`);
    return job;
  }

  list(): Job[] {
    return [...this.#jobs.values()].sort((a, b) => a.submittedAtMs - b.submittedAtMs);
  }

  async cancel(id: string): Promise<Job> {
    const job = this.get(id);
    if (job.state === 'CANCELLED') return job;
    clearTimeout(job.restartTimer);
    job.checkpointer?.stop();
    this.#transition(job, 'CANCELLED');
    this.#o.metrics?.recoveryEnded(job.recovery, job.id, { error: 'cancelled while recovering' });
    job.recovery = undefined;
    await this.#stopOnWorkers(job);
    return job;
  }

  #stopOnWorkers(job: Job, workers: readonly WorkerRecord[] = this.#o.registry.alive()): Promise<void> {
    return this.#workers.stopOnWorkers(job, workers);
  }

  /** A task failed on a worker: the job restarts from its latest checkpoint, by its restart strategy. */
  onTaskFailure(f: TaskFailure): void {
    const job = this.#jobs.get(f.jobId as JobId);
    if (!job || job.epoch !== Number(f.epoch) || (job.state !== 'RUNNING' && job.state !== 'DEPLOYING')) return;
    const info = { message: f.message, stageId: f.stageId, keyGroup: f.keyGroup, workerId: f.workerId, stack: f.stack, atUnixMs: Number(f.atUnixMs) };
    if (f.userCode) return this.#restart(job, info);
    // A lost channel or a vanished peer is not the job's fault: recover at once, uncounted.
    job.lastFailure = info;
    this.#recover(job, INFRASTRUCTURE_RETRY_MS, 'infrastructure');
  }

  /** A worker stopped heartbeating: its jobs recover on the survivors at once. */
  onWorkerDead(worker: WorkerRecord): void {
    for (const job of this.#jobs.values()) {
      if ((job.state === 'RUNNING' || job.state === 'DEPLOYING') && job.assignment.has(worker.id)) {
        job.lastFailure = failure(`worker ${worker.id} stopped heartbeating`, worker.id);
        this.#recover(job, 0, 'worker-lost');
      }
    }
  }

  #restart(job: Job, f: JobFailureInfo): void {
    job.lastFailure = f;
    const decision = job.restartStrategy.onFailure();
    if (!decision.restart) {
      this.#failJob(job, { ...f, message: `${f.message} (not restarted: ${decision.reason})` });
      void this.#stopOnWorkers(job);
      return;
    }
    this.#recover(job, decision.delayMs, 'task-failure');
  }

  #recover(job: Job, delayMs: number, cause: RecoveryCause): void {
    job.checkpointer?.stop();
    job.checkpointer = undefined;
    if (job.state !== 'RESTARTING') this.#transition(job, 'RESTARTING');
    job.restarts++;
    // A recovery that fails again before the job runs stays one span, from the first decision.
    const recovery = this.#o.metrics?.recoveryStarted(job.id, cause, job.lastFailure?.message ?? '', job.recovery);
    if (recovery) job.recovery = recovery;
    this.#o.logger.warn({ jobId: job.id, delayMs, failure: job.lastFailure?.message }, 'job restarting');
    clearTimeout(job.restartTimer);
    job.restartTimer = setTimeout(() => {
      if (job.state !== 'RESTARTING') return;
      void this.#deploy(job).catch((e) => this.#failJob(job, { ...failure(`restart failed: ${ensureError(e).message}`) }));
    }, delayMs);
  }

  onCheckpointRequest(jobId: string, epoch: number): void {
    const job = this.#jobs.get(jobId as JobId);
    if (job && job.epoch === epoch) job.checkpointer?.requestEarly();
  }

  onCheckpointAck(ack: Parameters<CheckpointCoordinator['onAck']>[0]): void {
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
    for (const job of this.#jobs.values()) {
      job.checkpointer?.stop();
      job.outputPublisher?.stop();
      clearTimeout(job.restartTimer);
    }
  }

  #failJob(job: Job, f: JobFailureInfo): void {
    job.lastFailure = f;
    job.checkpointer?.stop();
    job.checkpointer = undefined;
    if (job.state !== 'FAILED') this.#transition(job, 'FAILED');
    this.#o.metrics?.recoveryEnded(job.recovery, job.id, { error: f.message });
    job.recovery = undefined;
    this.#o.logger.error({ jobId: job.id, failure: f }, 'job failed');
  }

  #transition(job: Job, to: JobState): void {
    const from = job.transition(to);
    this.#o.logger.info({ jobId: job.id, from, to }, 'job state');
    this.#persist(job);
  }

  /** Writes the job to the job store; writes of one job keep their order. */
  #persist(job: Job): void {
    const stored = job.toStored();
    job.persisting = (job.persisting ?? Promise.resolve())
      .then(() => this.#o.jobStore.put(stored))
      .catch((e) => this.#o.logger.error({ jobId: job.id, err: ensureError(e) }, 'job store write failed'));
  }

  /** Waits for pending job-store writes (for a clean shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#jobs.values()].map((j) => j.persisting));
  }

  /**
   * A restarted coordinator: reload every job from the job store and redeploy the live ones from
   * their latest completed checkpoint, once workers have had time to re-register.
   */
  async resume(): Promise<number> {
    let resumed = 0;
    for (const stored of await this.#o.jobStore.list()) {
      const job = await loadStoredJob(stored, this.#o.store, this.#o.logger);
      const live = wasLive(stored);
      const checkpoints = job.checkpoints;
      this.#jobs.set(job.id, job);
      if (!live) continue;
      resumed++;
      const latest = checkpoints[checkpoints.length - 1];
      // Part files of the earlier retained checkpoints may not all be committed either: commit
      // them again, in order (idempotent: a final object that exists is skipped; no message is
      // re-published, their output went out before the latest checkpoint's).
      for (const c of checkpoints.slice(0, -1)) {
        if ((c.metadata.files ?? []).length === 0) continue;
        const filesOnly = { ...c.metadata, outputs: [] };
        (job.unpublishedOutputs ??= new Map()).set(c.id, outputKeys(filesOnly));
        this.#outputs(job).enqueue(filesOnly);
      }
      // Its output may not all have reached the stream before the crash: publish it again;
      // the stream drops what it already has by Nats-Msg-Id.
      if (latest && hasOutput(latest.metadata)) {
        (job.unpublishedOutputs ??= new Map()).set(latest.id, outputKeys(latest.metadata));
        this.#outputs(job).enqueue(latest.metadata);
      }
      this.#o.logger.info({ jobId: job.id, checkpoint: latest?.id ?? 0 }, 'job resumed from the job store');
      this.#recover(job, this.#o.resumeDelayMs, 'coordinator-restart');
    }
    return resumed;
  }
}

/** Delay before redeploying after an infrastructure failure (a lost worker or channel). */
const INFRASTRUCTURE_RETRY_MS = 200;
/** How often a job without live workers looks for one. */
const NO_WORKERS_RETRY_MS = 1000;
