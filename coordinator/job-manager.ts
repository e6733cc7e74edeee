// Job lifecycle: accept a bundle and its manifest, assign key groups and source splits to the
// live workers, deploy, start, checkpoint, recover, track status and failures, cancel.
//
// Recovery (ARCHITECTURE.md, "Failure and scaling"): a dead worker or a failed task moves the
// job to a new epoch. Key groups are reassigned over the live workers; every worker rolls back
// to the last completed checkpoint (survivors drop their overlays, new owners read only their
// new key groups from the object store) and sources rewind to the checkpoint's sequences.
import type { NatsConnection } from '@nats-io/transport-node';
import { codecs, type Ack, type TaskFailure } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { parseManifest, type JobManifest } from '../core/manifest.ts';
import { assignKeyGroups, assignSplits, type KeyGroupRange } from '../core/key-groups.ts';
import { parseJobId, type Epoch, type JobId, type WorkerId } from '../core/ids.ts';
import { EddyError, InvalidArgumentError, NotFoundError, ensureError } from '../core/errors.ts';
import { sha256Hex } from '../core/bundle.ts';
import { layout, type ObjectStore } from '../core/object-store.ts';
import { ensureDeadLetterStream, ensureSinkStreams, ensureSourceStream } from '../core/nats.ts';
import type { Logger } from '../core/logger.ts';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.ts';
import { CheckpointCoordinator, newCheckpointStats, type CheckpointStats, type CompletedCheckpoint } from './checkpoint-coordinator.ts';
import { RestartStrategy } from './restart-strategy.ts';

export type JobState = 'SUBMITTED' | 'DEPLOYING' | 'RUNNING' | 'RESTARTING' | 'CANCELLED' | 'FAILED';

const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  SUBMITTED: ['DEPLOYING', 'FAILED', 'CANCELLED'],
  DEPLOYING: ['RUNNING', 'RESTARTING', 'FAILED', 'CANCELLED'],
  RUNNING: ['RESTARTING', 'FAILED', 'CANCELLED'],
  RESTARTING: ['DEPLOYING', 'FAILED', 'CANCELLED'],
  CANCELLED: [],
  FAILED: ['CANCELLED'],
};

export interface WorkerAssignment {
  keyGroups: KeyGroupRange[];
  splits: number[];
}

export interface JobFailureInfo {
  message: string;
  stageId: string;
  keyGroup: number;
  workerId: string;
  stack: string;
  atUnixMs: number;
}

export interface JobRecord {
  id: JobId;
  manifest: JobManifest;
  manifestJson: string;
  sha256: string;
  bundleKey: string;
  state: JobState;
  submittedAtMs: number;
  epoch: Epoch;
  assignment: Map<WorkerId, WorkerAssignment>;
  lastFailure?: JobFailureInfo;
  /** (time, recordsIn per stage) samples for rates. */
  samples: Array<{ atMs: number; recordsIn: Map<string, number> }>;
  /** Completed checkpoints retained, oldest first; the last is what a recovery restores. */
  checkpoints: CompletedCheckpoint[];
  lastCheckpointId: number;
  checkpointer?: CheckpointCoordinator;
  checkpointStats: CheckpointStats;
  restartStrategy: RestartStrategy;
  restarts: number;
  /** A scheduled restart, so cancel can stop it. */
  restartTimer?: NodeJS.Timeout;
}

export interface StageStatus {
  stageId: string;
  kind: string;
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
  recordsInPerSecond: number;
}

export interface JobManagerOptions {
  nc: NatsConnection;
  store: ObjectStore;
  registry: WorkerRegistry;
  controlTimeoutMs: number;
  checkpointIntervalMs: number;
  checkpointTimeoutMs: number;
  retainedCheckpoints: number;
  logger: Logger;
}

export class JobManager {
  readonly #o: JobManagerOptions;
  readonly #jobs = new Map<JobId, JobRecord>();
  #epoch = 0;

  constructor(options: JobManagerOptions) {
    this.#o = options;
  }

  /** Verifies and stores a bundle, then deploys it to the live workers. */
  async submit(manifestJson: string, declaredSha256: string, bundle: Uint8Array): Promise<JobRecord> {
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

    const bundleKey = layout.bundle(id, actual);
    await this.#o.store.put(bundleKey, bundle);
    await this.#o.store.put(layout.manifest(id, actual), new TextEncoder().encode(manifestJson));
    const { nc } = this.#o;
    await ensureSourceStream(nc, manifest.source);
    await ensureSinkStreams(nc, manifest.stages.flatMap((s) => s.sinks));
    await ensureDeadLetterStream(nc);

    const job: JobRecord = {
      id,
      manifest,
      manifestJson,
      sha256: actual,
      bundleKey,
      state: 'SUBMITTED',
      submittedAtMs: Date.now(),
      epoch: 0 as Epoch,
      assignment: new Map(),
      samples: [],
      checkpoints: [],
      lastCheckpointId: existing?.lastCheckpointId ?? 0,
      checkpointStats: newCheckpointStats(),
      restartStrategy: new RestartStrategy(manifest.restartStrategy),
      restarts: 0,
    };
    this.#jobs.set(id, job);
    this.#o.logger.info({ jobId: id, sha256: actual }, 'job submitted');
    await this.#deploy(job, { firstDeploy: true });
    if (job.state !== 'RUNNING') throw new EddyError('FAILED_PRECONDITION', `job ${id} could not be deployed: ${job.lastFailure?.message ?? job.state}`);
    return job;
  }

  #assign(manifest: JobManifest, workers: WorkerRecord[]): Map<WorkerId, WorkerAssignment> {
    // More workers than key groups: the surplus gets splits only (ranges need parallelism <= maxParallelism).
    const ids = workers.map((w) => w.id);
    const withGroups = ids.slice(0, manifest.maxParallelism);
    const ranges = assignKeyGroups(withGroups, manifest.maxParallelism);
    const splits = assignSplits(ids, manifest.source.partitions);
    return new Map(ids.map((w) => [w, { keyGroups: ranges.has(w) ? [ranges.get(w)!] : [], splits: splits.get(w) ?? [] }]));
  }

  /** Deploys the job in a new epoch over the live workers, from its latest checkpoint. */
  async #deploy(job: JobRecord, options: { firstDeploy?: boolean } = {}): Promise<void> {
    this.#transition(job, 'DEPLOYING');
    job.checkpointer?.stop();
    job.checkpointer = undefined;
    const workers = this.#o.registry.alive();
    if (workers.length === 0) {
      if (options.firstDeploy) return this.#failJob(job, failure('no live workers to run the job'));
      // Wait for workers to come back rather than give up: the state is safe in the checkpoint.
      this.#transition(job, 'RESTARTING');
      job.lastFailure = failure('no live workers; waiting for one to join');
      job.restartTimer = setTimeout(() => void this.#deploy(job).catch(() => undefined), NO_WORKERS_RETRY_MS);
      return;
    }
    job.epoch = ++this.#epoch as Epoch;
    job.assignment = this.#assign(job.manifest, workers);
    const latest = job.checkpoints[job.checkpoints.length - 1] ?? null;
    const targets = [...job.assignment.entries()];
    const epoch = job.epoch;
    try {
      // Two phases: every worker subscribes its channels (deploy), then sources start, so no
      // first batch of a channel is published before its receiver listens.
      await Promise.all(
        targets.map(([worker, a]) =>
          this.#control(worker, subjects.deploy(worker), codecs.deploy.encode({
            jobId: job.id,
            manifestJson: job.manifestJson,
            bundleSha256: job.sha256,
            bundleKey: job.bundleKey,
            epoch,
            keyGroups: a.keyGroups,
            sourceSplits: a.splits,
            workers: targets.filter(([, x]) => x.keyGroups.length > 0).map(([w]) => w),
            restore: latest ? { metadataKey: latest.metadataKey, checkpointId: latest.id } : null,
            startPositions: Object.entries(latest?.metadata.sources ?? {}).map(([split, nextSequence]) => ({ split: Number(split), nextSequence })),
            checkpointIntervalMs: this.#o.checkpointIntervalMs,
          })),
        ),
      );
      await Promise.all(targets.map(([worker]) => this.#control(worker, subjects.start(worker), codecs.start.encode({ jobId: job.id }))));
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
      return this.#recover(job, INFRASTRUCTURE_RETRY_MS);
    }
    if (job.epoch !== epoch || job.state !== 'DEPLOYING') return;
    this.#transition(job, 'RUNNING');
    this.#o.logger.info({ jobId: job.id, epoch, checkpoint: latest?.id ?? 0, workers: targets.map(([w]) => w) }, 'job running');
    job.checkpointer = new CheckpointCoordinator({
      nc: this.#o.nc,
      store: this.#o.store,
      intervalMs: this.#o.checkpointIntervalMs,
      timeoutMs: this.#o.checkpointTimeoutMs,
      retain: this.#o.retainedCheckpoints,
      logger: this.#o.logger.child({ jobId: job.id, epoch }),
      nextId: () => ++job.lastCheckpointId,
      target: () =>
        job.state === 'RUNNING' && job.epoch === epoch
          ? {
              jobId: job.id,
              epoch,
              bundleSha256: job.sha256,
              maxParallelism: job.manifest.maxParallelism,
              workers: [...job.assignment.keys()],
              sourceWorkers: [...job.assignment].filter(([, a]) => a.splits.length > 0).map(([w]) => w),
            }
          : undefined,
      latest: () => job.checkpoints[job.checkpoints.length - 1] ?? null,
      onCompleted: async (c) => this.#retain(job, c),
      stats: job.checkpointStats,
    });
  }

  async #retain(job: JobRecord, c: CompletedCheckpoint): Promise<void> {
    job.checkpoints.push(c);
    while (job.checkpoints.length > this.#o.retainedCheckpoints) {
      const old = job.checkpoints.shift()!;
      await this.#o.store.delete(old.metadataKey).catch((e) => this.#o.logger.warn({ key: old.metadataKey, err: ensureError(e).message }, 'could not delete an old checkpoint'));
    }
  }

  async #control(worker: WorkerId, subject: string, payload: Uint8Array): Promise<void> {
    let ack: Ack;
    try {
      ack = codecs.ack.decode((await this.#o.nc.request(subject, payload, { timeout: this.#o.controlTimeoutMs })).data);
    } catch (e) {
      // Nobody listens on the worker's control subject: the process is gone, whatever its last heartbeat said.
      if (/no responders/i.test(ensureError(e).message)) this.#o.registry.markDead(worker, `no responders on ${subject}`);
      throw new Error(`worker ${worker} did not answer ${subject.split('.').pop()}: ${ensureError(e).message}`, { cause: e });
    }
    if (!ack.ok) throw new WorkerRefusedError(`worker ${worker}: ${ack.error}`);
  }

  get(id: string): JobRecord {
    const job = this.#jobs.get(id as JobId);
    if (!job) throw new NotFoundError(`job ${id} not found`);
    return job;
  }

  list(): JobRecord[] {
    return [...this.#jobs.values()].sort((a, b) => a.submittedAtMs - b.submittedAtMs);
  }

  async cancel(id: string): Promise<JobRecord> {
    const job = this.get(id);
    if (job.state === 'CANCELLED') return job;
    clearTimeout(job.restartTimer);
    job.checkpointer?.stop();
    this.#transition(job, 'CANCELLED');
    await this.#stopOnWorkers(job);
    return job;
  }

  async #stopOnWorkers(job: JobRecord): Promise<void> {
    await Promise.all(
      this.#o.registry.alive().map((w) =>
        this.#control(w.id, subjects.cancel(w.id), codecs.cancel.encode({ jobId: job.id })).catch((e) =>
          this.#o.logger.warn({ jobId: job.id, workerId: w.id, err: ensureError(e).message }, 'cancel not acknowledged'),
        ),
      ),
    );
  }

  /** A task failed on a worker: the job restarts from its latest checkpoint, by its restart strategy. */
  onTaskFailure(f: TaskFailure): void {
    const job = this.#jobs.get(f.jobId as JobId);
    if (!job || job.epoch !== Number(f.epoch) || (job.state !== 'RUNNING' && job.state !== 'DEPLOYING')) return;
    const info = { message: f.message, stageId: f.stageId, keyGroup: f.keyGroup, workerId: f.workerId, stack: f.stack, atUnixMs: Number(f.atUnixMs) };
    if (f.userCode) return this.#restart(job, info);
    // A lost channel or a vanished peer is not the job's fault: recover at once, uncounted.
    job.lastFailure = info;
    this.#recover(job, INFRASTRUCTURE_RETRY_MS);
  }

  /** A worker stopped heartbeating: its jobs recover on the survivors at once. */
  onWorkerDead(worker: WorkerRecord): void {
    for (const job of this.#jobs.values()) {
      if ((job.state === 'RUNNING' || job.state === 'DEPLOYING') && job.assignment.has(worker.id)) {
        job.lastFailure = failure(`worker ${worker.id} stopped heartbeating`, worker.id);
        this.#recover(job, 0);
      }
    }
  }

  #restart(job: JobRecord, f: JobFailureInfo): void {
    job.lastFailure = f;
    const decision = job.restartStrategy.onFailure();
    if (!decision.restart) {
      this.#failJob(job, { ...f, message: `${f.message} (not restarted: ${decision.reason})` });
      void this.#stopOnWorkers(job);
      return;
    }
    this.#recover(job, decision.delayMs);
  }

  #recover(job: JobRecord, delayMs: number): void {
    job.checkpointer?.stop();
    job.checkpointer = undefined;
    if (job.state !== 'RESTARTING') this.#transition(job, 'RESTARTING');
    job.restarts++;
    this.#o.logger.warn({ jobId: job.id, delayMs, failure: job.lastFailure?.message }, 'job restarting');
    clearTimeout(job.restartTimer);
    job.restartTimer = setTimeout(() => {
      if (job.state !== 'RESTARTING') return;
      void this.#deploy(job).catch((e) => this.#failJob(job, { ...failure(`restart failed: ${ensureError(e).message}`) }));
    }, delayMs);
  }

  onCheckpointAck(ack: Parameters<CheckpointCoordinator['onAck']>[0]): void {
    this.#jobs.get(ack.jobId as JobId)?.checkpointer?.onAck(ack);
  }

  /** Samples counters for rates; called on every heartbeat. */
  sample(): void {
    const now = Date.now();
    for (const job of this.#jobs.values()) {
      if (job.state !== 'RUNNING') continue;
      const totals = new Map(this.stageStatus(job).map((s) => [s.stageId, s.recordsIn]));
      job.samples.push({ atMs: now, recordsIn: totals });
      while (job.samples.length > 2 && now - job.samples[0]!.atMs > 5000) job.samples.shift();
    }
  }

  stageStatus(job: JobRecord): StageStatus[] {
    const out = job.manifest.stages.map((s) => ({ stageId: s.id, kind: s.kind, recordsIn: 0, recordsOut: 0, deadLetters: 0, recordsInPerSecond: 0 }));
    for (const w of this.#o.registry.all()) {
      const counters = w.jobs.get(job.id);
      if (!counters) continue;
      for (const c of counters.stages) {
        const s = out.find((x) => x.stageId === c.stageId);
        if (!s) continue;
        s.recordsIn += Number(c.recordsIn);
        s.recordsOut += Number(c.recordsOut);
        s.deadLetters += Number(c.deadLetters);
      }
    }
    const first = job.samples[0];
    const last = job.samples[job.samples.length - 1];
    if (first && last && last.atMs > first.atMs) {
      for (const s of out) s.recordsInPerSecond = Math.max(0, (((last.recordsIn.get(s.stageId) ?? 0) - (first.recordsIn.get(s.stageId) ?? 0)) * 1000) / (last.atMs - first.atMs));
    }
    return out;
  }

  stop(): void {
    for (const job of this.#jobs.values()) {
      job.checkpointer?.stop();
      clearTimeout(job.restartTimer);
    }
  }

  #failJob(job: JobRecord, f: JobFailureInfo): void {
    job.lastFailure = f;
    job.checkpointer?.stop();
    job.checkpointer = undefined;
    if (job.state !== 'FAILED') this.#transition(job, 'FAILED');
    this.#o.logger.error({ jobId: job.id, failure: f }, 'job failed');
  }

  #transition(job: JobRecord, to: JobState): void {
    if (!TRANSITIONS[job.state].includes(to)) throw new EddyError('FAILED_PRECONDITION', `job ${job.id} cannot go from ${job.state} to ${to}`);
    this.#o.logger.info({ jobId: job.id, from: job.state, to }, 'job state');
    job.state = to;
  }
}

/** A worker answered a control request with an error. */
class WorkerRefusedError extends Error {}

/** Delay before redeploying after an infrastructure failure (a lost worker or channel). */
const INFRASTRUCTURE_RETRY_MS = 200;
/** How often a job without live workers looks for one. */
const NO_WORKERS_RETRY_MS = 1000;

function failure(message: string, workerId = ''): JobFailureInfo {
  return { message, stageId: '', keyGroup: -1, workerId, stack: '', atUnixMs: Date.now() };
}
