// Job lifecycle: accept a bundle and its manifest, assign key groups and source splits to the
// live workers, deploy, start, checkpoint, recover, track status and failures, cancel.
//
// Recovery (ARCHITECTURE.md, "Failure and scaling"): a dead worker or a failed task moves the
// job to a new epoch. Key groups are reassigned over the live workers; every worker rolls back
// to the last completed checkpoint (survivors drop their overlays, new owners read only their
// new key groups from the object store) and sources rewind to the checkpoint's sequences.
import type { NatsConnection } from '@nats-io/transport-node';
import { codecs, ForgedMessageError, leaderEpochHeaders, type Ack, type SourcePosition, type StageCounters, type TaskFailure } from '../core/control.ts';
import { senderNames, subjects } from '../core/subjects.ts';
import { parseManifest, remapSourcePositions, splitCount, splitRanges, splitStreams, type JobManifest } from '../core/manifest.ts';
import { parseJobId, type Epoch, type JobId, type WorkerId } from '../core/ids.ts';
import { EddyError, FencedError, InvalidArgumentError, NotFoundError, NotLeaderError, RetryableError, ensureError, excerpt } from '../core/errors.ts';
import type { ObjectStore } from '../core/object-store.ts';
import { objectKeys } from '../core/object-keys.ts';
import { checkCheckpointAck } from './ack-check.ts';
import { ensureDeadLetterStream, ensureSinkStreams, ensureSourceStream } from '../core/nats.ts';
import type { Logger } from '../core/logger.ts';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.ts';
import { idleSince } from './checkpoint-idle.ts';
import { CheckpointCoordinator, newCheckpointStats, sourcePositions, type CheckpointStats, type CompletedCheckpoint } from './checkpoint-coordinator.ts';
import { RestartStrategy } from './restart-strategy.ts';
import type { CoordinatorMetrics, RecoveryCause, RecoveryTrace } from './coordinator-metrics.ts';
import { CheckpointGarbageCollector } from './checkpoint-gc.ts';
import { OutputPublisher, hasOutput, outputKeys } from './output-publisher.ts';
import { decodeMetadata, encodeMetadata } from '../core/checkpoint-format.ts';
import type { JobStore, StoredJob } from './job-store.ts';
import { assignJob, Rebalancer, type WorkerAssignment } from './rebalancer.ts';
import { describeStartAt, type StartAtSpec } from '../core/start-at.ts';
import { resolveStartPositions } from './source-start.ts';
import { PoisonRecords } from './poison-records.ts';
import { newChannelKey, sealChannelKey } from '../core/channel-key.ts';
import type { StagedBundle } from './bundle-upload.ts';
import { DEFAULT_MAX_RECORD_ATTEMPTS } from '../core/manifest.ts';
import type { Leadership } from './leader-lease.ts';

export type JobState = 'SUBMITTED' | 'DEPLOYING' | 'RUNNING' | 'RESTARTING' | 'CANCELLED' | 'FAILED';

const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  SUBMITTED: ['DEPLOYING', 'FAILED', 'CANCELLED'],
  DEPLOYING: ['RUNNING', 'RESTARTING', 'FAILED', 'CANCELLED'],
  RUNNING: ['RESTARTING', 'FAILED', 'CANCELLED'],
  RESTARTING: ['DEPLOYING', 'FAILED', 'CANCELLED'],
  CANCELLED: [],
  FAILED: ['CANCELLED'],
};

export type { WorkerAssignment } from './rebalancer.ts';

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
  /** Sender name of each split in this epoch (core/subjects.ts senderNames; renamed by moves). */
  splitSenders: string[];
  lastFailure?: JobFailureInfo;
  /** (time, counters per stage) samples for rates. */
  samples: Array<{ atMs: number; stages: Map<string, StageSampleTotals> }>;
  /** The recovery under way (its span), until the job runs again. */
  recovery?: RecoveryTrace;
  /** Completed checkpoints retained, oldest first; the last is what a recovery restores. */
  checkpoints: CompletedCheckpoint[];
  /**
   * Savepoints, kept until the user deletes them: the garbage collector keeps what they reference.
   * @default none
   */
  savepoints?: CompletedCheckpoint[];
  /** Deletes the checkpoint objects nothing retained references; made at the first completion. */
  checkpointGc?: CheckpointGarbageCollector;
  /**
   * Output object keys per completed checkpoint whose exactly-once output is not confirmed
   * published (by any epoch's checkpoint coordinator): the garbage collector keeps them.
   */
  unpublishedOutputs?: Map<number, readonly string[]>;
  /**
   * The completed checkpoints of unpublishedOutputs, in completion order: persisted, so that a
   * restarted coordinator publishes every one of them again, not only the latest.
   */
  unpublished?: Map<number, CompletedCheckpoint>;
  /**
   * Resolves once the completions of stopped checkpoint coordinators are settled: a checkpoint
   * whose _metadata was being written when its epoch ended is complete, and a redeploy must
   * restore it (or its output would go out on top of a replay from the one before).
   */
  checkpointsSettled?: Promise<void>;
  /**
   * The largest totals shown per stage: a recovery takes the counted totals back to its
   * checkpoint until the replay passes them again; what is shown never goes back.
   */
  shownTotals?: Map<string, { recordsIn: number; recordsOut: number; deadLetters: number }>;
  /** A write of this job was fenced off: another coordinator leads; nothing more is committed. */
  fenced?: boolean;
  /** Publishes completed checkpoints' exactly-once output, across epochs. */
  outputPublisher?: OutputPublisher;
  lastCheckpointId: number;
  checkpointer?: CheckpointCoordinator;
  checkpointStats: CheckpointStats;
  restartStrategy: RestartStrategy;
  restarts: number;
  /** A scheduled restart, so cancel can stop it. */
  restartTimer?: NodeJS.Timeout;
  /** Writes of this job to the job store, in order. */
  persisting?: Promise<void>;
  /**
   * Where the splits start while no checkpoint has completed: the source's startAt, resolved once
   * at submit (coordinator/source-start.ts). Absent: sequence 1.
   */
  initialPositions?: SourcePosition[];
  /** Failures per source position and the skip list of poison records; persisted with the job. */
  poison: PoisonRecords;
  /**
   * The key of this epoch's record batches (core/channel-key.ts): drawn at each deploy, sealed to
   * each worker, never persisted (a restarted coordinator deploys a new epoch with a new key).
   */
  channelKey?: Uint8Array;
}

export interface SubmitOptions {
  /** Object-store key of a savepoint's _metadata to start from. */
  fromSavepoint?: string;
  allowNonRestoredState?: boolean;
  /** Overrides the manifest's startAt, per source stream (eddy submit --start-at). Refused with fromSavepoint. */
  startAt?: ReadonlyArray<{ source: string; startAt: StartAtSpec }>;
}

export interface StageStatus {
  stageId: string;
  kind: string;
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
  recordsInPerSecond: number;
  recordsOutPerSecond: number;
  /** Milliseconds the stage's channel senders waited with full windows, summed over workers. */
  backpressureMs: number;
  /** Share of the sampled interval the stage's senders spent waiting with full windows (0..1). */
  backpressureRatio: number;
}

/** A stage's counters summed over workers at one heartbeat. */
interface StageSampleTotals {
  recordsIn: number;
  recordsOut: number;
  backpressureMs: number;
  senders: number;
}

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
}

export class JobManager {
  readonly #o: JobManagerOptions;
  readonly #jobs = new Map<JobId, JobRecord>();
  readonly rebalancer: Rebalancer;
  readonly #leadership: Leadership;
  /** Leads and has taken the jobs over (resume() done): only then does it answer for them. */
  #leading = false;

  constructor(options: JobManagerOptions) {
    this.#o = options;
    this.#leadership = options.leadership ?? ALWAYS_LEADER;
    this.rebalancer = new Rebalancer({
      available: () => options.registry.available().map((w) => w.id),
      maxMovingKeyGroups: options.maxMovingKeyGroups,
      checkpointTimeoutMs: options.checkpointTimeoutMs,
      control: (w, subject, payload) => this.#control(w, subject, payload),
      join: (job, workers) => this.#join(job as JobRecord, workers),
      persist: (job) => this.#persist(job as JobRecord),
      recover: (job, reason) => {
        const record = job as JobRecord;
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
  async submit(manifestJson: string, declaredSha256: string, bundle: StagedBundle, options: SubmitOptions = {}): Promise<JobRecord> {
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

  async #submit(manifestJson: string, declaredSha256: string, bundle: StagedBundle, options: SubmitOptions): Promise<JobRecord> {
    this.requireLeader();
    const actual = bundle.sha256;
    if (actual !== declaredSha256) {
      throw new InvalidArgumentError(`bundle sha256 mismatch: the header declares ${excerpt(declaredSha256 || '(none)')}, the ${bundle.bytes} bytes received hash to ${actual}`);
    }
    const manifest = parseManifest(manifestJson);
    const id = parseJobId(manifest.name);
    const existing = this.#jobs.get(id);
    if (existing && existing.state !== 'CANCELLED' && existing.state !== 'FAILED') {
      throw new EddyError('ALREADY_EXISTS', `job ${id} is ${existing.state}; cancel it before submitting it again`);
    }
    if (this.#o.registry.alive().length === 0) throw new EddyError('FAILED_PRECONDITION', 'no live workers: start at least one worker before submitting a job');
    const startAt = startAtOf(manifest, options);
    const fromSavepoint = options.fromSavepoint ? await this.#loadSavepoint(manifest, options.fromSavepoint, options.allowNonRestoredState ?? false) : undefined;
    // A savepoint's positions are where the job goes on from; the manifest's startAt is for a fresh start only.
    for (const source of manifest.sources) {
      if (fromSavepoint && source.startAt) this.#o.logger.info({ jobId: id, stream: source.stream, startAt: describeStartAt(source.startAt) }, 'started from a savepoint: the source startAt is not applied');
    }

    const bundleKey = objectKeys.bundle(id, actual);
    await bundle.storeAt(this.#o.store, bundleKey);
    await this.#o.store.put(objectKeys.manifest(id, actual), new TextEncoder().encode(manifestJson));
    const { nc } = this.#o;
    // A generator source (sdk/generator.ts) makes its records in the job: it has no stream.
    const replicas = this.#o.natsReplicas ?? 1;
    for (const source of manifest.sources) if (!source.generator) await ensureSourceStream(nc, source, replicas);
    await ensureSinkStreams(nc, manifest.stages.flatMap((s) => s.sinks), replicas);
    await ensureDeadLetterStream(nc, replicas);
    // Per source, in the flat split space (core/manifest.ts splitRanges); a source without a
    // startAt starts at the beginning of its stream, as before.
    let initialPositions: SourcePosition[] | undefined;
    if (!fromSavepoint && startAt.size > 0) {
      initialPositions = [];
      for (const range of splitRanges(manifest)) {
        const at = startAt.get(range.spec.stream);
        if (at === undefined) continue;
        const positions = await resolveStartPositions(nc, range.spec, at);
        initialPositions.push(...positions.map((p) => ({ split: range.firstSplit + p.split, nextSequence: p.nextSequence })));
        this.#o.logger.info({ jobId: id, stream: range.spec.stream, startAt: describeStartAt(at), sequence: positions[0]?.nextSequence }, 'source start resolved');
      }
    }

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
      splitSenders: [],
      samples: [],
      // Started from a savepoint, the job's first deploy restores it like a checkpoint.
      checkpoints: fromSavepoint ? [fromSavepoint] : [],
      lastCheckpointId: Math.max(existing?.lastCheckpointId ?? 0, fromSavepoint?.id ?? 0),
      checkpointStats: newCheckpointStats(),
      restartStrategy: new RestartStrategy(manifest.restartStrategy),
      restarts: 0,
      // Savepoints outlive the job that took them (the garbage collector keeps what they name).
      savepoints: existing?.savepoints ?? [],
      ...(initialPositions && { initialPositions }),
      // A new submit starts over: its input or its code may differ.
      poison: new PoisonRecords(),
    };
    this.#jobs.set(id, job);
    this.#persist(job);
    this.#o.logger.info({ jobId: id, sha256: actual }, 'job submitted');
    await this.#deploy(job, { firstDeploy: true });
    if (job.state !== 'RUNNING') throw new EddyError('FAILED_PRECONDITION', `job ${id} could not be deployed: ${job.lastFailure?.message ?? job.state}`);
    return job;
  }

  /**
   * Reads a savepoint for a (new version of a) job: every keyed stage of the savepoint must
   * exist in the new manifest, by id, unless its state may be dropped.
   */
  async #loadSavepoint(manifest: JobManifest, path: string, allowNonRestoredState: boolean): Promise<CompletedCheckpoint> {
    if (!/\/savepoints\/\d+\/_metadata$/.test(path)) throw new InvalidArgumentError(`${path} is not a savepoint path (jobs/<job>/savepoints/<id>/_metadata, as eddy savepoint prints it)`);
    const metadata = decodeMetadata(await this.#o.store.get(path), path);
    if (metadata.maxParallelism !== manifest.maxParallelism) {
      throw new InvalidArgumentError(`savepoint ${path} has ${metadata.maxParallelism} key groups, the new bundle ${manifest.maxParallelism}: maxParallelism is fixed for a job's life`);
    }
    const stages = new Set(manifest.stages.filter((st) => st.kind === 'keyed').map((st) => st.id));
    const unmapped = Object.entries(metadata.stages).filter(([stage, groups]) => !stages.has(stage) && Object.keys(groups).length > 0).map(([stage]) => stage);
    if (unmapped.length > 0 && !allowNonRestoredState) {
      throw new InvalidArgumentError(
        `savepoint ${path} holds state of stage(s) ${unmapped.join(', ')}, which the new bundle does not have (its keyed stages: ${[...stages].join(', ') || 'none'}); keep their ids, or pass --allow-non-restored-state to drop that state`,
      );
    }
    if (unmapped.length > 0) this.#o.logger.warn({ path, dropped: unmapped }, 'savepoint state of stages the new bundle lacks is not restored');
    // Source positions follow their stream and partition into the new bundle's split space (a
    // source added or removed before another shifts its split indexes); a stream the new
    // bundle does not read is dropped, a new one starts at its beginning.
    const sources = remapSourcePositions(metadata, manifest);
    // Event times are not remapped: the new bundle's splits re-derive their watermarks.
    const { sourceEventTimes: _notRemapped, ...kept } = metadata;
    return { id: metadata.checkpointId, metadataKey: path, metadata: { ...kept, sources, splitStreams: splitStreams(manifest) }, completedAtUnixMs: metadata.createdAtUnixMs, durationMs: 0, bytes: 0 };
  }

  /** Takes a savepoint: a checkpoint now, its _metadata kept under savepoints/ until deleted. */
  async savepoint(id: string, stop: boolean): Promise<{ job: JobRecord; path: string; checkpointId: number }> {
    const job = this.get(id);
    if (job.state !== 'RUNNING' || !job.checkpointer) throw new EddyError('FAILED_PRECONDITION', `job ${id} is ${job.state}: a savepoint needs a running job`);
    let checkpoint: CompletedCheckpoint;
    try {
      checkpoint = await job.checkpointer.checkpointNow(this.#o.checkpointTimeoutMs);
    } catch (e) {
      throw new RetryableError(`savepoint of job ${id} failed: ${ensureError(e).message}`, 1000, { cause: e });
    }
    const path = `jobs/${job.id}/savepoints/${checkpoint.id}/_metadata`;
    // The output already went out with the checkpoint: a savepoint restores state, not output.
    const metadata = { ...checkpoint.metadata, savepoint: true, outputs: [], files: [] };
    await this.#o.store.put(path, encodeMetadata(metadata));
    (job.savepoints ??= []).push({ ...checkpoint, metadataKey: path, metadata });
    this.#persist(job);
    this.#o.logger.info({ jobId: job.id, checkpoint: checkpoint.id, path, stop }, 'savepoint taken');
    if (stop) await this.cancel(job.id);
    return { job, path, checkpointId: checkpoint.id };
  }

  #assign(job: JobRecord, workers: WorkerRecord[]): Map<WorkerId, WorkerAssignment> {
    // Survivors keep what they hold (their RocksDB has it): only the rest is read from the store.
    return assignJob(job.manifest, job.assignment, workers.map((w) => w.id)).assignment;
  }

  /** Deploys the job in a new epoch over the live workers, from its latest checkpoint. */
  async #deploy(job: JobRecord, options: { firstDeploy?: boolean } = {}): Promise<void> {
    this.#transition(job, 'DEPLOYING');
    this.#stopCheckpointer(job);
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
    await job.checkpointsSettled;
    if (job.state !== 'DEPLOYING') return; // cancelled or overtaken meanwhile
    job.epoch = epoch;
    job.channelKey = newChannelKey();
    job.assignment = this.#assign(job, workers);
    job.splitSenders = Array.from({ length: splitCount(job.manifest) }, (_, p) => senderNames.split(p, epoch));
    const latest = job.checkpoints[job.checkpoints.length - 1] ?? null;
    const targets = [...job.assignment.entries()];
    this.#persist(job);
    // The skip list goes out only once the job store holds it: a restarted coordinator must not
    // deploy without a skip some worker already acted on.
    await job.persisting;
    if (job.epoch !== epoch || job.state !== 'DEPLOYING') return;
    try {
      // A worker left out of this epoch (it is leaving) must not run the old one: its query
      // responder would answer with stale state.
      await this.#stopOnWorkers(job, this.#o.registry.alive().filter((w) => !job.assignment.has(w.id) && w.runningJobs.has(job.id)));
      // Two phases: every worker subscribes its channels (deploy), then sources start, so no
      // first batch of a channel is published before its receiver listens.
      await Promise.all(targets.map(([worker, a]) => this.#control(worker, subjects.deploy(worker), this.#deployTasks(job, worker, a), this.#o.deployTimeoutMs)));
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
              assignment: new Map(job.assignment),
            }
          : undefined,
      checkAck: (ack, triggered) =>
        checkCheckpointAck(ack, {
          jobId: job.id,
          maxParallelism: job.manifest.maxParallelism,
          owners: [triggered.assignment ?? new Map(), job.assignment],
          filesSinkPaths: job.manifest.stages.flatMap((s) => s.sinks.flatMap((k) => (k.kind === 'files' ? [k.path] : []))),
        }),
      latest: () => job.checkpoints[job.checkpoints.length - 1] ?? null,
      leaderEpoch: this.#leadership.term,
      mayCommit: () => this.#leadership.holds() && this.#jobs.get(job.id) === job,
      idleSince: (checkpointId) => this.#o.skipIdleCheckpoints && idleSince(checkpointId, epoch, [...job.assignment.keys()], (w) => this.#o.registry.get(w as WorkerId)?.jobs.get(job.id)),
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
  #outputs(job: JobRecord): OutputPublisher {
    return (job.outputPublisher ??= new OutputPublisher(this.#o.nc, this.#o.store, this.#o.logger.child({ jobId: job.id }), (id) => {
      job.unpublishedOutputs?.delete(id);
      if (job.unpublished?.delete(id) === true) this.#persist(job);
    }));
  }

  /** Stops the job's checkpoint coordinator; a completion it has under way settles into checkpointsSettled. */
  #stopCheckpointer(job: JobRecord): void {
    const checkpointer = job.checkpointer;
    if (checkpointer === undefined) return;
    checkpointer.stop();
    job.checkpointer = undefined;
    job.checkpointsSettled = Promise.all([job.checkpointsSettled, checkpointer.settled()]).then(() => undefined);
  }

  /** Marks a completed checkpoint's output as to be published (before it is handed to the publisher). */
  #awaitPublication(job: JobRecord, c: CompletedCheckpoint, metadata = c.metadata): void {
    // The _metadata too: a restarted coordinator reads it to publish the output again.
    (job.unpublishedOutputs ??= new Map()).set(c.id, [...outputKeys(metadata), c.metadataKey]);
    (job.unpublished ??= new Map()).set(c.id, { ...c, metadata });
  }

  async #retain(job: JobRecord, c: CompletedCheckpoint): Promise<void> {
    job.checkpoints.push(c);
    if (hasOutput(c.metadata)) this.#awaitPublication(job, c);
    while (job.checkpoints.length > this.#o.retainedCheckpoints) job.checkpoints.shift();
    // Persisted after the shift, and collected only once that write is done: a restarted
    // coordinator never looks for a checkpoint whose objects are gone.
    this.#persist(job);
    job.checkpointGc ??= new CheckpointGarbageCollector({
      store: this.#o.store,
      jobId: job.id,
      retained: () => ({
        checkpoints: job.checkpoints,
        savepoints: job.savepoints ?? [],
        unpublishedOutputs: [...(job.unpublishedOutputs?.values() ?? [])].flat(),
      }),
      ready: () => job.persisting ?? Promise.resolve(),
      logger: this.#o.logger,
    });
    job.checkpointGc.request();
    // The output goes out only once the job store names this checkpoint: a coordinator that
    // restarts after a crash here restores it, rather than the one before it, whose replay would
    // publish the same results again under other message ids.
    await job.persisting;
    // A new leader claimed the job first: it restores an earlier checkpoint, so this one's output
    // must not go out, nor may workers commit it.
    if (job.fenced === true) throw new FencedError(`checkpoint ${c.id} of job ${job.id} not committed: another coordinator leads`);
  }

  async #control(worker: WorkerId, subject: string, payload: Uint8Array, timeoutMs = this.#o.controlTimeoutMs): Promise<void> {
    if (!this.#leadership.holds()) throw new FencedError(`not sending ${subject.split('.').pop()} to worker ${worker}: this coordinator does not hold the leader lease`);
    let ack: Ack;
    try {
      ack = codecs.ack.decode((await this.#o.nc.request(subject, payload, { timeout: timeoutMs, headers: leaderEpochHeaders(this.#leadership.term) })).data);
    } catch (e) {
      // Nobody listens on the worker's control subject: the process is gone, whatever its last heartbeat said.
      if (/no responders/i.test(ensureError(e).message)) this.#o.registry.markDead(worker, `no responders on ${subject}`);
      throw new Error(`worker ${worker} did not answer ${subject.split('.').pop()}: ${ensureError(e).message}`, { cause: e });
    }
    if (!ack.ok) throw new WorkerRefusedError(`worker ${worker}: ${ack.error}`);
  }

  /** Throws NotLeaderError (naming the leader) on a standby: it holds no jobs. */
  requireLeader(): void {
    if (this.#leadership === ALWAYS_LEADER) return;
    // Taking over (leads, jobs not resumed yet): no address to send to, ask again shortly.
    if (!this.#leading) throw new NotLeaderError(this.#leadership.term > 0 ? '' : this.#leadership.leaderAddress());
  }

  get(id: string): JobRecord {
    this.requireLeader();
    const job = this.#jobs.get(id as JobId);
    if (!job) throw new NotFoundError(`job ${excerpt(id)} not found`);
    return job;
  }

  /** Every job this coordinator holds: none on a standby. */
  list(): JobRecord[] {
    return [...this.#jobs.values()].sort((a, b) => a.submittedAtMs - b.submittedAtMs);
  }

  async cancel(id: string): Promise<JobRecord> {
    const job = this.get(id);
    if (job.state === 'CANCELLED') return job;
    clearTimeout(job.restartTimer);
    this.#stopCheckpointer(job);
    this.#transition(job, 'CANCELLED');
    this.#o.metrics?.recoveryEnded(job.recovery, job.id, { error: 'cancelled while recovering' });
    job.recovery = undefined;
    await this.#stopOnWorkers(job);
    return job;
  }

  /** What a worker is told to run of the job in its current epoch. */
  #deployTasks(job: JobRecord, worker: WorkerId, a: WorkerAssignment): Uint8Array {
    const latest = job.checkpoints[job.checkpoints.length - 1] ?? null;
    const publicKey = this.#o.registry.get(worker)?.channelPublicKey;
    if (publicKey === undefined || job.channelKey === undefined) throw new Error(`worker ${worker} has registered no channel key: it cannot be sent job ${job.id}'s`);
    return codecs.deploy.encode({
      jobId: job.id,
      manifestJson: job.manifestJson,
      bundleSha256: job.sha256,
      bundleKey: job.bundleKey,
      epoch: job.epoch,
      keyGroups: a.keyGroups,
      sourceSplits: a.splits,
      workers: [...job.assignment].filter(([, x]) => x.keyGroups.length > 0).map(([w]) => w),
      restore: latest ? { metadataKey: latest.metadataKey, checkpointId: latest.id } : null,
      // Until a checkpoint completes, the positions startAt resolved to at submit (never resolved
      // again: a redeploy before the first checkpoint starts where the first deploy did).
      startPositions: latest ? sourcePositions(latest.metadata) : (job.initialPositions ?? []),
      checkpointIntervalMs: this.#o.checkpointIntervalMs,
      skippedRecords: job.poison.skipped(),
      sealedChannelKey: sealChannelKey(job.channelKey, publicKey, { jobId: job.id, epoch: job.epoch, workerId: worker }),
    });
  }

  /** Runs the job on workers that join it in its epoch, with nothing assigned yet (a move follows). */
  async #join(job: JobRecord, workers: WorkerId[]): Promise<void> {
    await Promise.all(workers.map((w) => this.#control(w, subjects.deploy(w), this.#deployTasks(job, w, { keyGroups: [], splits: [] }), this.#o.deployTimeoutMs)));
    await Promise.all(workers.map((w) => this.#control(w, subjects.start(w), codecs.start.encode({ jobId: job.id }))));
  }

  async #stopOnWorkers(job: JobRecord, workers = this.#o.registry.alive()): Promise<void> {
    await Promise.all(
      workers.map((w) =>
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
    // A failure restarts the job: only a worker of its epoch may report one.
    if (!job.assignment.has(f.workerId as WorkerId)) throw new ForgedMessageError(`worker ${excerpt(f.workerId)} reports a failure of job ${job.id}, which it is not assigned to`);
    const info = { message: f.message, stageId: f.stageId, keyGroup: f.keyGroup, workerId: f.workerId, stack: f.stack, atUnixMs: Number(f.atUnixMs) };
    if (f.userCode && f.hasSourcePosition === true) this.#countPoison(job, f, info);
    if (f.userCode) return this.#restart(job, info);
    // A lost channel or a vanished peer is not the job's fault: recover at once, uncounted.
    job.lastFailure = info;
    this.#recover(job, INFRASTRUCTURE_RETRY_MS, 'infrastructure');
  }

  /**
   * A user-code failure at a known source record: counted per position; at the job's
   * maxRecordAttempts the record goes on the skip list (coordinator/poison-records.ts), which the
   * job record holds and the redeploy that follows sends to every worker.
   */
  #countPoison(job: JobRecord, f: TaskFailure, info: JobFailureInfo): void {
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
    this.#persist(job);
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

  #restart(job: JobRecord, f: JobFailureInfo): void {
    job.lastFailure = f;
    const decision = job.restartStrategy.onFailure();
    if (!decision.restart) {
      this.#failJob(job, { ...f, message: `${f.message} (not restarted: ${decision.reason})` });
      void this.#stopOnWorkers(job);
      return;
    }
    this.#recover(job, decision.delayMs, 'task-failure');
  }

  #recover(job: JobRecord, delayMs: number, cause: RecoveryCause): void {
    this.#stopCheckpointer(job);
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

  onCheckpointRequest(jobId: string, epoch: number, sender: string): void {
    const job = this.#jobs.get(jobId as JobId);
    if (!job || job.epoch !== epoch) return;
    if (!job.assignment.has(sender as WorkerId)) throw new ForgedMessageError(`worker ${excerpt(sender)} asks for a checkpoint of job ${job.id}, which it is not assigned to`);
    job.checkpointer?.requestEarly();
  }

  onCheckpointAck(ack: Parameters<CheckpointCoordinator['onAck']>[0]): void {
    this.#jobs.get(ack.jobId as JobId)?.checkpointer?.onAck(ack);
  }

  /** Samples counters for rates; called on every heartbeat. */
  sample(): void {
    const now = Date.now();
    for (const job of this.#jobs.values()) {
      if (job.state !== 'RUNNING') continue;
      job.samples.push({ atMs: now, stages: this.#stageTotals(job) });
      while (job.samples.length > 2 && now - job.samples[0]!.atMs > 5000) job.samples.shift();
    }
  }

  /**
   * Each stage's counters over the job's life: the totals of the latest completed checkpoint
   * (carried across recoveries, moves and coordinator restarts in its _metadata) plus what the
   * workers of the current epoch counted since their cuts that checkpoint holds. A recovery
   * therefore takes the counters back to the checkpoint, and the replay counts each record once
   * (what is shown meanwhile stays at its largest). Backpressure is since each worker's deploy.
   */
  #stageTotals(job: JobRecord): Map<string, StageSampleTotals & { deadLetters: number }> {
    // A runtime of an earlier epoch (being replaced) counted what the new one replays.
    // Workers of the job's assignment: one that left holds nothing and counts no more.
    const reports = this.#o.registry.all().flatMap((w) => {
      const counters = job.assignment.has(w.id) ? w.jobs.get(job.id) : undefined;
      return counters && (Number(counters.epoch ?? 0) === 0 || Number(counters.epoch) === job.epoch) ? [counters] : [];
    });
    // The newest retained checkpoint every worker's last heartbeat is past (it reports a cut at or
    // after it; a worker without cuts: a checkpoint of an earlier epoch): its totals hold exactly
    // each worker's cuts up to it. A heartbeat sent before the worker cut the latest checkpoint
    // would otherwise count that worker's part of it twice.
    const past = (r: (typeof reports)[number], c: CompletedCheckpoint): boolean =>
      (r.cuts ?? []).length === 0 ? c.metadata.epoch !== job.epoch : (r.cuts ?? []).some((cut) => Number(cut.checkpointId) >= c.id);
    let base: CompletedCheckpoint | undefined = job.checkpoints[0];
    for (const c of job.checkpoints) if (reports.every((r) => past(r, c))) base = c;
    const totals = base?.metadata.counters ?? {};
    const out = new Map(job.manifest.stages.map((s) => [s.id, { recordsIn: totals[s.id]?.recordsIn ?? 0, recordsOut: totals[s.id]?.recordsOut ?? 0, deadLetters: totals[s.id]?.deadLetters ?? 0, backpressureMs: 0, senders: 0 }]));
    for (const counters of reports) {
      // Its counters at its last cut that checkpoint holds (none: all it counted is after it).
      let counted: StageCounters[] = [];
      for (const cut of counters.cuts ?? []) if (base !== undefined && Number(cut.checkpointId) <= base.id) counted = cut.stages;
      for (const c of counters.stages) {
        const s = out.get(c.stageId);
        if (!s) continue;
        const before = counted.find((x) => x.stageId === c.stageId);
        s.recordsIn += Number(c.recordsIn) - Number(before?.recordsIn ?? 0);
        s.recordsOut += Number(c.recordsOut) - Number(before?.recordsOut ?? 0);
        s.deadLetters += Number(c.deadLetters) - Number(before?.deadLetters ?? 0);
        s.backpressureMs += Number(c.backpressureMs ?? 0);
        s.senders += Number(c.senders ?? 0);
      }
    }
    // Within an epoch each record is counted once, so these never exceed the final totals: the
    // largest shown so far is exact once the replay caught up, and monotonic (a Prometheus counter).
    const shown = (job.shownTotals ??= new Map());
    for (const [stage, s] of out) {
      const before = shown.get(stage);
      if (before !== undefined) {
        s.recordsIn = Math.max(s.recordsIn, before.recordsIn);
        s.recordsOut = Math.max(s.recordsOut, before.recordsOut);
        s.deadLetters = Math.max(s.deadLetters, before.deadLetters);
      }
      shown.set(stage, { recordsIn: s.recordsIn, recordsOut: s.recordsOut, deadLetters: s.deadLetters });
    }
    return out;
  }

  stageStatus(job: JobRecord): StageStatus[] {
    const totals = this.#stageTotals(job);
    const first = job.samples[0];
    const last = job.samples[job.samples.length - 1];
    const spanMs = first && last ? last.atMs - first.atMs : 0;
    // Counters restart at a redeploy: a negative difference means no rate yet, not a negative one.
    const perSecond = (a: number | undefined, b: number | undefined) => (spanMs > 0 ? Math.max(0, (((b ?? 0) - (a ?? 0)) * 1000) / spanMs) : 0);
    return job.manifest.stages.map((stage) => {
      const t = totals.get(stage.id)!;
      const a = first?.stages.get(stage.id);
      const b = last?.stages.get(stage.id);
      const senders = b?.senders ?? 0;
      return {
        stageId: stage.id,
        kind: stage.kind,
        recordsIn: t.recordsIn,
        recordsOut: t.recordsOut,
        deadLetters: t.deadLetters,
        recordsInPerSecond: perSecond(a?.recordsIn, b?.recordsIn),
        recordsOutPerSecond: perSecond(a?.recordsOut, b?.recordsOut),
        backpressureMs: t.backpressureMs,
        backpressureRatio: senders > 0 ? Math.min(1, perSecond(a?.backpressureMs, b?.backpressureMs) / 1000 / senders) : 0,
      };
    });
  }

  stop(): void {
    for (const job of this.#jobs.values()) {
      job.checkpointer?.stop();
      job.outputPublisher?.stop();
      clearTimeout(job.restartTimer);
    }
  }

  /**
   * This coordinator no longer leads: every job is let go (checkpoints, publishing, restarts
   * stop) and forgotten; the new leader resumes them from the job store. What is still under way
   * finds its record gone (#persist writes nothing) and its commands refused (no lease).
   */
  release(): void {
    this.#leading = false;
    this.stop();
    for (const job of this.#jobs.values()) job.checkpointer = undefined;
    this.#jobs.clear();
  }

  #failJob(job: JobRecord, f: JobFailureInfo): void {
    job.lastFailure = f;
    this.#stopCheckpointer(job);
    if (job.state !== 'FAILED') this.#transition(job, 'FAILED');
    this.#o.metrics?.recoveryEnded(job.recovery, job.id, { error: f.message });
    job.recovery = undefined;
    this.#o.logger.error({ jobId: job.id, failure: f }, 'job failed');
  }

  #transition(job: JobRecord, to: JobState): void {
    if (!TRANSITIONS[job.state].includes(to)) throw new EddyError('FAILED_PRECONDITION', `job ${job.id} cannot go from ${job.state} to ${to}`);
    this.#o.logger.info({ jobId: job.id, from: job.state, to }, 'job state');
    job.state = to;
    this.#persist(job);
  }

  /** Writes the job to the job store; writes of one job keep their order. */
  #persist(job: JobRecord): void {
    // A record of an earlier leadership (released, still in some callback) writes nothing.
    if (this.#jobs.get(job.id) !== job) return;
    const stored = toStored(job);
    job.persisting = (job.persisting ?? Promise.resolve())
      .then(() => this.#o.jobStore.put(stored))
      .catch((e) => {
        if (e instanceof FencedError) {
          job.fenced = true;
          this.#leadership.fenced(e.message);
        } else {
          this.#o.logger.error({ jobId: job.id, err: ensureError(e) }, 'job store write failed');
        }
      });
  }

  /** Waits for pending job-store writes (for a clean shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#jobs.values()].map((j) => j.persisting));
  }

  /**
   * A restarted coordinator: reload every job from the job store and redeploy the live ones from
   * their latest completed checkpoint, once workers have had time to re-register.
   */
  async resume(resumeDelayMs = this.#o.resumeDelayMs): Promise<number> {
    let resumed = 0;
    // Claimed, not just read: a deposed leader's later writes to these jobs fail (job-store.ts).
    for (const stored of await this.#o.jobStore.claim()) {
      const manifest = parseManifest(stored.manifestJson);
      const checkpoints: CompletedCheckpoint[] = [];
      for (const c of stored.retainedCheckpoints) {
        const metadata = decodeMetadata(await this.#o.store.get(c.metadataKey), c.metadataKey);
        checkpoints.push({ id: c.id, metadataKey: c.metadataKey, metadata, completedAtUnixMs: c.completedAtUnixMs, durationMs: 0, bytes: 0 });
      }
      const savepoints: CompletedCheckpoint[] = [];
      for (const c of stored.savepoints) {
        try {
          const metadata = decodeMetadata(await this.#o.store.get(c.metadataKey), c.metadataKey);
          savepoints.push({ id: c.id, metadataKey: c.metadataKey, metadata, completedAtUnixMs: c.completedAtUnixMs, durationMs: 0, bytes: 0 });
        } catch (e) {
          this.#o.logger.error({ jobId: stored.jobId, savepoint: c.metadataKey, err: ensureError(e).message }, 'savepoint unreadable');
        }
      }
      const live = stored.state !== 'CANCELLED' && stored.state !== 'FAILED' && stored.state !== 'FINISHED';
      const job: JobRecord = {
        id: parseJobId(stored.jobId),
        manifest,
        manifestJson: stored.manifestJson,
        sha256: stored.bundleSha256,
        bundleKey: stored.bundleKey,
        state: live ? 'RESTARTING' : (stored.state as JobState),
        submittedAtMs: stored.submittedAtUnixMs,
        epoch: stored.epoch as Epoch,
        assignment: new Map(),
        splitSenders: [],
        ...(stored.lastFailure ? { lastFailure: stored.lastFailure } : {}),
        samples: [],
        checkpoints,
        // Ids triggered but never recorded (the coordinator died mid-checkpoint) are skipped.
        lastCheckpointId: stored.lastCheckpointId + CHECKPOINT_ID_GAP_AFTER_RESTART,
        checkpointStats: newCheckpointStats(),
        restartStrategy: new RestartStrategy(manifest.restartStrategy),
        restarts: stored.restarts,
        savepoints,
        ...(stored.initialPositions && { initialPositions: stored.initialPositions }),
        poison: new PoisonRecords(stored.poisonRecords ?? []),
      };
      this.#jobs.set(job.id, job);
      if (!live) continue;
      resumed++;
      const latest = checkpoints[checkpoints.length - 1];
      if (stored.unpublishedCheckpoints !== undefined) {
        // Every completed checkpoint whose output was not confirmed published, in order, retained
        // or not: its output may not all have reached the streams. Publishing it again is safe (the
        // streams drop what they have by Nats-Msg-Id; a part file that exists is skipped).
        for (const ref of stored.unpublishedCheckpoints) {
          let c = checkpoints.find((x) => x.id === ref.id);
          try {
            c ??= { id: ref.id, metadataKey: ref.metadataKey, metadata: decodeMetadata(await this.#o.store.get(ref.metadataKey), ref.metadataKey), completedAtUnixMs: ref.completedAtUnixMs, durationMs: 0, bytes: 0 };
          } catch (e) {
            this.#o.logger.error({ jobId: stored.jobId, checkpoint: ref.id, err: ensureError(e).message }, 'output of a completed checkpoint cannot be published: its _metadata is unreadable');
            continue;
          }
          this.#awaitPublication(job, c);
          this.#outputs(job).enqueue(c.metadata);
        }
      } else {
        // Written by a version that kept no list: part files of the earlier retained checkpoints
        // are committed again, and the latest checkpoint's output is published again.
        for (const c of checkpoints.slice(0, -1)) {
          if ((c.metadata.files ?? []).length === 0) continue;
          const filesOnly = { ...c.metadata, outputs: [] };
          this.#awaitPublication(job, c, filesOnly);
          this.#outputs(job).enqueue(filesOnly);
        }
        if (latest && hasOutput(latest.metadata)) {
          this.#awaitPublication(job, latest);
          this.#outputs(job).enqueue(latest.metadata);
        }
      }
      this.#o.logger.info({ jobId: job.id, checkpoint: latest?.id ?? 0 }, 'job resumed from the job store');
      this.#recover(job, resumeDelayMs, 'coordinator-restart');
    }
    this.#leading = true;
    return resumed;
  }
}

/** Checkpoint ids skipped after a coordinator restart. */
const CHECKPOINT_ID_GAP_AFTER_RESTART = 1000;

function toStored(job: JobRecord): StoredJob {
  const ref = (c: CompletedCheckpoint) => ({ id: c.id, metadataKey: c.metadataKey, completedAtUnixMs: c.completedAtUnixMs });
  const latest = job.checkpoints[job.checkpoints.length - 1];
  return {
    jobId: job.id,
    manifestJson: job.manifestJson,
    bundleSha256: job.sha256,
    bundleKey: job.bundleKey,
    state: job.state,
    submittedAtUnixMs: job.submittedAtMs,
    epoch: job.epoch,
    latestCheckpoint: latest ? ref(latest) : null,
    retainedCheckpoints: job.checkpoints.map(ref),
    savepoints: (job.savepoints ?? []).map(ref),
    lastCheckpointId: job.lastCheckpointId,
    restarts: job.restarts,
    lastFailure: job.lastFailure ?? null,
    publishedCheckpointId: Math.max(0, ...(job.unpublished === undefined || job.unpublished.size === 0 ? [latest?.id ?? 0] : [Math.min(...job.unpublished.keys()) - 1])),
    unpublishedCheckpoints: [...(job.unpublished?.values() ?? [])].map(ref),
    ...(job.initialPositions && { initialPositions: job.initialPositions }),
    ...(job.poison.size > 0 && { poisonRecords: job.poison.toStored() }),
  };
}

/**
 * The startAt of each of the job's sources, by stream: the submit's override, else the
 * manifest's. An override must name a source of the job, once, and cannot go with a savepoint
 * (whose positions rule).
 */
function startAtOf(manifest: JobManifest, options: SubmitOptions): Map<string, StartAtSpec> {
  const overrides = options.startAt ?? [];
  if (overrides.length > 0 && options.fromSavepoint) {
    throw new InvalidArgumentError('start at: a job started from a savepoint goes on from the savepoint\'s source positions; --start-at applies only to a fresh start');
  }
  const streams = manifest.sources.map((s) => s.stream);
  const out = new Map<string, StartAtSpec>();
  for (const s of manifest.sources) if (s.startAt) out.set(s.stream, s.startAt);
  const seen = new Set<string>();
  for (const o of overrides) {
    if (!streams.includes(o.source)) throw new InvalidArgumentError(`start at: job ${manifest.name} has no source ${JSON.stringify(o.source)} (its sources: ${streams.join(', ')})`);
    if (seen.has(o.source)) throw new InvalidArgumentError(`start at: source ${o.source} is given twice`);
    if (manifest.sources.some((s) => s.stream === o.source && s.generator)) throw new InvalidArgumentError(`start at: source ${o.source} is a generator; it has no stream to start in`);
    seen.add(o.source);
    out.set(o.source, o.startAt);
  }
  return out;
}

/** A worker answered a control request with an error. */
class WorkerRefusedError extends Error {}

/** Delay before redeploying after an infrastructure failure (a lost worker or channel). */
const INFRASTRUCTURE_RETRY_MS = 200;
/** How often a job without live workers looks for one. */
const NO_WORKERS_RETRY_MS = 1000;

/** One coordinator on its own: it always leads, in epoch 0 (which workers accept from anyone). */
const ALWAYS_LEADER: Leadership = { term: 0, holds: () => true, leaderAddress: () => '', fenced: () => undefined };

function failure(message: string, workerId = ''): JobFailureInfo {
  return { message, stageId: '', keyGroup: -1, workerId, stack: '', atUnixMs: Date.now() };
}
