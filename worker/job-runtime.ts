// Everything one job runs on this worker: its bundle, its RocksDB, the keyed tasks and query
// responder for the key groups it owns, the source splits it reads, and its part of every
// checkpoint. A redeploy (a recovery, a new epoch) reuses the previous runtime's RocksDB:
// survivors keep their key groups' committed state and read only new key groups from the
// object store (docs/ARCHITECTURE.md, "State" step 5).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadBundle, sha256Hex } from '../core/bundle.ts';
import { parseManifest, splitCount, splitSource, type JobManifest } from '../core/manifest.ts';
import { keyGroupsOf } from '../core/key-groups.ts';
import { parseJobId, type JobId } from '../core/ids.ts';
import { ensureError, InvalidArgumentError, UserFunctionError } from '../core/errors.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { Logger } from '../core/logger.ts';
import type { CheckpointAck, CheckpointComplete, CutCounters, DeployTasks, JobCounters, MoveTasks, SkippedRecord, SourcePosition, StageCounters as CountedTotals, TaskFailure } from '../core/control.ts';
import { objectKeys } from '../core/object-keys.ts';
import { senderNames } from '../core/subjects.ts';
import { toRanges } from '../core/assignment.ts';
import type { JobPlan, StagePlan } from '../sdk/plan.ts';
import { StateBackend } from './state/index.ts';
import { StageCounters } from './task/index.ts';
import { DeadLetters } from './task/index.ts';
import { createStageOutput, type StageOutput } from './task/index.ts';
import { BatchSigner, inputResolver, upstreamSenders } from './channel/index.ts';
import { ThrottledLog } from '../core/throttled-log.ts';
import { SourceTask } from './task/index.ts';
import { GeneratorTask, type SourceReader } from './task/generator-task.ts';
import { KeyedTask } from './task/index.ts';
import { QueryResponder } from './query/index.ts';
import { HistoryCleaner } from './state/index.ts';
import { WatchRegistry } from './query/index.ts';
import { featureStates } from './state/index.ts';
import { CheckpointWriter } from './checkpoint/index.ts';
import { readMetadata, restoreKeyGroups } from './checkpoint/index.ts';
import type { CheckpointOutput } from './sink/index.ts';
import type { CompiledWorkerOptions } from './options.ts';
import type { ObservedJob, SplitSample, StageSample, WorkerMetrics } from './worker-metrics.ts';

export interface JobRuntimeContext {
  nc: NatsConnection;
  store: ObjectStore;
  options: CompiledWorkerOptions;
  logger: Logger;
  reportFailure(failure: TaskFailure): void;
  sendCheckpointAck(ack: CheckpointAck): void;
  /** Asks the coordinator for a checkpoint now (the overlay passed its bound). */
  requestCheckpoint(jobId: string, epoch: number): void;
  /** The worker's metrics (no-op instruments when metrics are off). */
  metrics: WorkerMetrics;
}

export type JobRuntimeState = 'DEPLOYED' | 'RUNNING' | 'FAILED' | 'STOPPED';

/** A checkpoint being cut on this worker. */
interface Cut {
  id: number;
  /** Keyed tasks aligned on its barrier so far. */
  aligned: number;
  /** Exactly-once sink output before the barrier. */
  output: CheckpointOutput[];
  /** Source split → next sequence and largest event time read, recorded at injection. */
  positions: Map<number, { nextSequence: number; maxEventTimeMs: number }>;
  /** Each stage's counters at its barrier: sources at injection, keyed stages at alignment. */
  counters: Map<string, CountedTotals>;
  /** Lets the aligned tasks go on once the state is frozen. */
  release: () => void;
  released: Promise<void>;
  /** A newer checkpoint's barrier came before this cut was complete: it is never frozen. */
  abandoned: boolean;
}

const splitSender = senderNames.split;
const stageSender = senderNames.stage;

/** A move of key groups and splits at barrier N (MoveTasks), from prepare to loaded. */
interface PendingMove {
  checkpointId: number;
  keyGroups: number[];
  incoming: number[];
  outgoing: number[];
  splitsIn: number[];
  splitsOut: number[];
  /** When this worker cut barrier N: from then the incoming key groups wait here. */
  appliedAtMs?: number;
}

/** Checkpoint cuts whose counters heartbeats report (JobCounters.cuts). */
const CUTS_REPORTED = 8;

/** A cut (alignment) longer than this is logged with where it stands. */
const SLOW_CUT_MS = 5000;

export class JobRuntime implements ObservedJob {
  readonly jobId: JobId;
  readonly manifest: JobManifest;
  readonly epoch: number;
  /** Key groups owned: counted in this worker's checkpoints (some may still be loading). */
  keyGroups: readonly number[];
  /**
   * Key groups whose state RocksDB holds at the committed checkpoint: what a redeploy on this
   * worker may keep without reading the object store.
   */
  readonly stateKeyGroups: Set<number>;
  readonly backend: StateBackend;
  /** RocksDB's directory (StateBackend.open's path in deploy()). */
  readonly statePath: string;
  readonly #ctx: JobRuntimeContext;
  readonly #detachMetrics: () => void;
  readonly #counters: Map<string, StageCounters>;
  readonly #sources: SourceReader[] = [];
  readonly #keyed: KeyedTask[] = [];
  readonly #keyedOutputs: StageOutput[] = [];
  readonly #sourceOutputs: StageOutput[] = [];
  readonly #queries: QueryResponder;
  readonly #historyCleaner: HistoryCleaner;
  readonly #watches: WatchRegistry;
  readonly #logger: Logger;
  readonly #writer: CheckpointWriter;
  /** The checkpoint being cut: tasks aligned so far, and their release. */
  #cut: Cut | undefined;
  /** Output taken at the barriers of abandoned cuts: the next cut carries it. */
  #carried: CheckpointOutput[] = [];
  /** Source positions per cut checkpoint, until acknowledged. */
  readonly #positions = new Map<number, Map<number, { nextSequence: number; maxEventTimeMs: number }>>();
  #uploading: Promise<void> = Promise.resolve();
  #cutStartedMs = 0;
  /** Logs where a cut stands when it takes long: which channels have not delivered the barrier. */
  readonly #slowCutTimer = setInterval(() => {
    if (!this.#cut || Date.now() - this.#cutStartedMs < SLOW_CUT_MS) return;
    this.#logger.warn({ checkpoint: this.#cut.id, ms: Date.now() - this.#cutStartedMs, tasks: this.#keyed.map((t) => t.alignmentStatus()) }, 'checkpoint cut is slow');
  }, SLOW_CUT_MS).unref();
  #state: JobRuntimeState = 'DEPLOYED';
  #stopping: Promise<void> | undefined;
  /** The tasks stopping (after a failure, or at stop()): settles once none of them runs any more. */
  #tasksStopped: Promise<void> | undefined;
  /** The keyed tasks stopping: settles once none of them processes anything (writes state) any more. */
  #keyedStopped: Promise<unknown> | undefined;
  readonly #plan: JobPlan;
  /** The keyed stages, in the order of #keyed. */
  readonly #keyedPlans: StagePlan[];
  /** Current sender name per source split (a split that moved sends under a new name). */
  readonly #splitSenders = new Map<number, string>();
  #move: PendingMove | undefined;
  /** The counters at each cut since the last checkpoint known completed (that one included), ascending. */
  #cutCounters: CutCounters[] = [];
  /** Loads of moved key groups, in order. */
  #moving: Promise<void> = Promise.resolve();
  /** Poison records to skip, by split, then stream sequence (DeployTasks.skipped_records). */
  readonly #skipped = new Map<number, Map<number, SkippedRecord>>();
  /** Signs outgoing and verifies incoming record batches with the epoch's channel key (undefined: unsigned). */
  readonly #signer: BatchSigner | undefined;
  /** Forged record batches and channel acknowledgements, logged at most once per interval per kind. */
  readonly #rejections: ThrottledLog;

  private constructor(ctx: JobRuntimeContext, deploy: DeployTasks, manifest: JobManifest, plan: JobPlan, backend: StateBackend) {
    this.#ctx = ctx;
    this.jobId = parseJobId(deploy.jobId);
    this.manifest = manifest;
    this.epoch = deploy.epoch;
    this.backend = backend;
    this.statePath = statePathOf(ctx.options, deploy.jobId);
    this.#logger = ctx.logger.child({ jobId: this.jobId, epoch: deploy.epoch });
    this.#counters = new Map(manifest.stages.map((s) => [s.id, new StageCounters(s.id)]));
    const keyedStages = manifest.stages.filter((s) => s.kind === 'keyed').map((s) => s.id);
    this.#writer = new CheckpointWriter(ctx.store, backend, this.jobId, ctx.options.workerId, keyedStages);
    const workerId = ctx.options.workerId;
    const epoch = deploy.epoch;
    this.#plan = plan;
    this.keyGroups = [...keyGroupsOf(deploy.keyGroups)];
    this.stateKeyGroups = new Set(this.keyGroups);
    for (let p = 0; p < splitCount(manifest); p++) this.#splitSenders.set(p, splitSender(p, epoch));
    const keyedPlans = plan.stages.filter((s) => s.spec.kind === 'keyed');
    this.#keyedPlans = keyedPlans;
    const starts = new Map(deploy.startPositions.map((p) => [p.split, p]));
    this.#signer = deploy.channelKey !== undefined ? new BatchSigner(deploy.channelKey) : undefined;
    this.#rejections = new ThrottledLog(this.#logger);
    for (const r of deploy.skippedRecords ?? []) {
      let bySequence = this.#skipped.get(r.split);
      if (bySequence === undefined) this.#skipped.set(r.split, (bySequence = new Map()));
      bySequence.set(Number(r.sequence), r);
    }

    this.#watches = new WatchRegistry({ nc: ctx.nc, manifest, backend, epoch, logger: this.#logger, keyGroups: new Set(this.keyGroups) });

    // Keyed stages subscribe at deploy time, before any source starts (the coordinator sends
    // start only when every worker has deployed), so no channel's first batch is missed.
    for (const stage of keyedPlans) {
      const counters = this.#counters.get(stage.spec.id)!;
      const upstream = upstreamSenders(manifest, stage.spec.id, deploy.workers, (p) => splitSender(p, epoch), epoch);
      let task: KeyedTask | undefined;
      const deadLetters = new DeadLetters(this.jobId, workerId);
      const output = createStageOutput({
        nc: ctx.nc,
        jobId: this.jobId,
        stage,
        senderTask: stageSender(stage.spec.id, workerId, epoch),
        maxParallelism: manifest.maxParallelism,
        counters,
        deadLetters,
        where: { jobId: this.jobId, stageId: stage.spec.id, keyGroup: () => task?.currentKeyGroup ?? -1 },
        worker: ctx.options,
        onBroken: (e) => this.#fail(e, stage.spec.id, -1),
        recordBatchSize: (to) => ctx.metrics.batchRecorder(this.jobId, to),
        errorPolicy: manifest.errorPolicy,
        onFailure: (e) => this.#fail(e, stage.spec.id, -1),
        ...(this.#signer !== undefined && { signer: this.#signer }),
        rejections: this.#rejections,
      });
      this.#keyedOutputs.push(output);
      task = new KeyedTask({
        nc: ctx.nc,
        jobId: this.jobId,
        manifest,
        stage,
        keyGroups: this.keyGroups,
        upstreamSenders: upstream.all,
        watermarkSenders: upstream.watermark,
        inputOf: inputResolver(manifest, stage.spec.id),
        backend,
        output,
        counters,
        deadLetters,
        logger: this.#logger.child({ stage: stage.spec.id }),
        onFailure: (e, kg) => this.#fail(e, stage.spec.id, kg),
        onAligning: (id) => void this.#beginCut(id),
        onAligned: (id) => this.#taskAligned(id, output, stage.spec.id),
        afterBatch: () => {
          this.#checkOverlay();
          this.#watches.flush();
        },
        watches: this.#watches,
        ...(this.#signer !== undefined && { signer: this.#signer }),
        rejections: this.#rejections,
      });
      // Also without key groups: a worker that joins the job with none gets them by a move, and
      // its clock (processing-time timers, the TTL sweep) must run for them then.
      task.start();
      this.#keyed.push(task);
    }
    this.#queries = new QueryResponder({ nc: ctx.nc, jobId: this.jobId, manifest, keyGroups: this.keyGroups, backend, logger: this.#logger, epoch: deploy.epoch, workerId: ctx.options.workerId, watches: this.#watches, recordLatencyMs: ctx.metrics.queryRecorder(this.jobId) });
    this.#queries.start();
    // Features declared with history: their versions past retention are cleaned in the background.
    const historyTargets = manifest.stages.flatMap((stage) =>
      [...featureStates(stage).values()].flatMap((f) => (f.historyRetentionMs === undefined ? [] : [{ stage: stage.id, state: f.state, retentionMs: f.historyRetentionMs }])),
    );
    this.#historyCleaner = new HistoryCleaner({ backend, targets: historyTargets, keyGroups: this.keyGroups, logger: this.#logger });
    this.#historyCleaner.start();

    for (const partition of deploy.sourceSplits) this.#addSource(partition, starts.get(partition));
    this.#detachMetrics = ctx.metrics.attach(this);
  }

  /** The source stage that reads a split (of the flat split space), and where in its stream. */
  #splitPlan(split: number): { plan: StagePlan; source: ReturnType<typeof splitSource> } {
    const source = splitSource(this.manifest, split);
    return { plan: this.#plan.stages.find((s) => s.spec.id === source.stageId)!, source };
  }

  #addSource(partition: number, start: SourcePosition | undefined): SourceReader {
    const startSequence = start === undefined ? 1 : Number(start.nextSequence);
    const { plan: sourcePlan, source: split } = this.#splitPlan(partition);
    const stageId = sourcePlan.spec.id;
    const counters = this.#counters.get(stageId)!;
    const deadLetters = new DeadLetters(this.jobId, this.#ctx.options.workerId);
    const output = createStageOutput({
      nc: this.#ctx.nc,
      jobId: this.jobId,
      stage: sourcePlan,
      // One reader per split in the whole job: the split (and epoch, and move) names the channel's sender.
      senderTask: this.#splitSenders.get(partition)!,
      maxParallelism: this.manifest.maxParallelism,
      counters,
      deadLetters,
      where: { jobId: this.jobId, stageId, keyGroup: () => -1 },
      worker: this.#ctx.options,
      onBroken: (e) => this.#fail(e, stageId, -1),
      recordBatchSize: (to) => this.#ctx.metrics.batchRecorder(this.jobId, to),
      errorPolicy: this.manifest.errorPolicy,
      onFailure: (e) => this.#fail(e, stageId, -1),
      ...(this.#signer !== undefined && { signer: this.#signer }),
      rejections: this.#rejections,
    });
    const generator = sourcePlan.generator;
    const source: SourceReader = split.spec.generator && generator
      ? new GeneratorTask({
          manifest: this.manifest,
          stageId,
          source: split.spec,
          partition,
          streamPartition: split.partition,
          startSequence,
          generator,
          output,
          counters,
          deadLetters,
          logger: this.#logger.child({ stage: stageId, split: partition }),
          onFailure: (e) => this.#fail(e, stageId, -1),
          ...(this.#skipped.has(partition) && { skipped: this.#skipped.get(partition)! }),
        })
      : new SourceTask({
      nc: this.#ctx.nc,
      manifest: this.manifest,
      stageId,
      source: split.spec,
      partition,
      streamPartition: split.partition,
      startSequence,
      output,
      counters,
      deadLetters,
      logger: this.#logger.child({ stage: stageId, split: partition }),
      onFailure: (e) => this.#fail(e, stageId, -1),
      ...(sourcePlan.timestamp && { timestampOf: sourcePlan.timestamp }),
      ...(start?.hasMaxEventTime === true && { restoredMaxEventTimeMs: Number(start.maxEventTimeMs) }),
      ...(this.#skipped.has(partition) && { skipped: this.#skipped.get(partition)! }),
    });
    this.#sourceOutputs.push(output);
    this.#sources.push(source);
    return source;
  }

  /**
   * Fetches and checks the bundle and brings this worker's key groups to the checkpoint named
   * in `deploy.restore` (or to empty state), reusing `previous`'s RocksDB when there is one.
   */
  static async deploy(ctx: JobRuntimeContext, deploy: DeployTasks, previous: JobRuntime | undefined): Promise<JobRuntime> {
    const started = performance.now();
    const manifest = parseManifest(deploy.manifestJson);
    const workerDir = path.join(ctx.options.dataDir, ctx.options.workerId);
    const cacheDir = path.join(workerDir, 'bundles');
    const cached = path.join(cacheDir, `${deploy.bundleSha256}.mjs`);
    let code: Uint8Array;
    try {
      code = await fs.readFile(cached);
    } catch {
      code = await ctx.store.get(deploy.bundleKey);
    }
    const actual = sha256Hex(code);
    if (actual !== deploy.bundleSha256) throw new InvalidArgumentError(`bundle ${deploy.bundleKey} has sha256 ${actual}, expected ${deploy.bundleSha256}`);
    const job = await loadBundle(code, actual, cacheDir);
    const plan = job.plan();
    if (JSON.stringify(plan.manifest) !== JSON.stringify(manifest)) {
      throw new InvalidArgumentError(`bundle ${actual} does not produce the submitted manifest of job ${manifest.name}`);
    }
    const target = deploy.restore?.metadataKey ? deploy.restore.checkpointId : 0;
    const metadata = deploy.restore?.metadataKey ? await readMetadata(ctx.store, deploy.restore.metadataKey) : null;
    const keyGroups = [...keyGroupsOf(deploy.keyGroups)];
    const stages = manifest.stages.filter((s) => s.kind === 'keyed').map((s) => s.id);

    let backend: StateBackend;
    let toLoad: number[];
    if (previous && previous.manifest.name === manifest.name) {
      await previous.stop({ closeBackend: false });
      backend = previous.backend;
      // Bring RocksDB to the target: the checkpoint may have completed after this worker last
      // heard (its delta is still frozen in memory), then drop everything newer.
      if (target > backend.committedCheckpointId && target <= backend.frozenCheckpointId) await backend.commit(target);
      backend.rollback();
      // Only key groups whose state RocksDB holds (not one still loading after a move) are kept.
      const kept = new Set(backend.committedCheckpointId === target || (target === 0 && backend.committedCheckpointId <= 0) ? previous.stateKeyGroups : []);
      toLoad = keyGroups.filter((kg) => !kept.has(kg));
      const mine = new Set(keyGroups);
      for (const kg of previous.stateKeyGroups) if (!mine.has(kg)) for (const stage of stages) await backend.dropKeyGroup(stage, kg);
    } else {
      await previous?.stop();
      const statePath = statePathOf(ctx.options, deploy.jobId);
      await fs.rm(statePath, { recursive: true, force: true });
      backend = await StateBackend.open({ path: statePath });
      toLoad = keyGroups;
    }
    const { bytesRead } = await restoreKeyGroups(ctx.store, backend, metadata, stages, toLoad);
    if (target > backend.committedCheckpointId) {
      backend.freeze(target);
      await backend.commit(target);
    }
    ctx.logger.info(
      { jobId: deploy.jobId, epoch: deploy.epoch, checkpoint: target, keyGroups: keyGroups.length, restoredKeyGroups: toLoad.length, bytesRead, ms: Math.round(performance.now() - started) },
      'job deployed',
    );
    return new JobRuntime(ctx, deploy, manifest, plan, backend);
  }

  /** Source splits this worker reads. */
  get sourceSplits(): number {
    return this.#sources.length;
  }

  /** A move is prepared or its key groups are still loading. */
  get moving(): boolean {
    return this.#move !== undefined || this.#keyed.some((t) => t.loadingKeyGroups > 0);
  }

  get state(): JobRuntimeState {
    return this.#state;
  }

  async start(): Promise<void> {
    if (this.#state !== 'DEPLOYED') return;
    this.#state = 'RUNNING';
    for (const s of this.#sources) await s.start();
    this.#logger.info({ splits: this.#sources.length }, 'job started');
  }

  stageSamples(): StageSample[] {
    const keyedStages = this.#keyedPlans.map((s) => s.spec.id);
    return [...this.#counters.values()].map((c) => {
      const watermarkMs = this.#keyed[keyedStages.indexOf(c.stageId)]?.watermarkMs;
      return { stageId: c.stageId, recordsIn: c.recordsIn, recordsOut: c.recordsOut, deadLetters: c.deadLetters, backpressureMs: c.backpressureMs, ...(watermarkMs !== undefined && { watermarkMs }) };
    });
  }

  splitSamples(): SplitSample[] {
    return this.#sources.map((s) => {
      const info = s.lastMessage?.info;
      return { stageId: this.#splitPlan(s.partition).plan.spec.id, split: s.partition, lastTimestampMs: info ? Math.floor(info.timestampNanos / 1e6) : 0, pending: info?.pending ?? 0 };
    });
  }

  counters(): JobCounters {
    return { jobId: this.jobId, stages: [...this.#counters.values()].map((c) => c.snapshot()), epoch: this.epoch, cuts: this.#cutCounters };
  }

  /**
   * The coordinator starts checkpoint N: sources inject barrier N and record their positions, and
   * the owned key groups among `rematerialize` get a full snapshot at N in this worker's part.
   */
  trigger(checkpointId: number, rematerialize: readonly number[] = []): void {
    if (this.#state !== 'RUNNING') throw new Error(`job ${this.jobId} is ${this.#state} on this worker`);
    const owned = new Set(this.keyGroups);
    this.#writer.rematerialize(checkpointId, rematerialize.filter((kg) => owned.has(kg)));
    // Every worker is asked, so that owners hear which key groups to re-materialize. Without
    // source splits this worker's cut starts with barrier N from upstream, which may come before
    // or after this request (or while N-1 is still being cut): it must not begin a cut here.
    if (this.#sources.length === 0 && this.keyGroups.length > 0 && this.#keyed.length > 0) return;
    const cut = this.#beginCut(checkpointId);
    if (cut === undefined) throw new Error(`checkpoint ${checkpointId} triggered after the newer ${this.#cut?.id ?? '?'}`);
    const outputs: Array<CheckpointOutput[] | Promise<CheckpointOutput[]>> = [];
    for (const s of this.#sources) {
      const { nextSequence, maxEventTimeMs, output } = s.injectBarrier(checkpointId);
      cut.positions.set(s.partition, { nextSequence, maxEventTimeMs });
      outputs.push(output);
    }
    // Every split injected synchronously: the source stages' counters stand at their barriers.
    for (const stage of this.manifest.stages) if (stage.kind === 'source') cut.counters.set(stage.id, this.#counters.get(stage.id)!.totals());
    if (this.#move?.checkpointId === checkpointId) {
      // Key groups that move at N start every channel at -Infinity on their new owner: each
      // split's watermark follows barrier N, so that they have it without new input.
      for (const s of this.#sources) s.resendWatermark();
      this.#releaseSplits(this.#move.splitsOut);
    }
    const finish = (taken: CheckpointOutput[][]): void => {
      for (const o of taken) this.#outputOf(cut).push(...o);
      if (!cut.abandoned && (this.keyGroups.length === 0 || this.#keyed.length === 0)) this.#cutComplete(cut);
    };
    // With an asyncMap in the source chain, barrier N goes out once the records read before it
    // have left the operator: the cut completes then.
    if (outputs.every(Array.isArray)) finish(outputs as CheckpointOutput[][]);
    else void Promise.all(outputs).then(finish, (e) => this.#fail(ensureError(e), this.#plan.stages[0]!.spec.id, -1));
  }

  /**
   * The cut of checkpoint N (begun by its trigger or by its first barrier), or undefined when a
   * newer checkpoint's cut has begun (N's barrier is stale here). A cut of an older checkpoint
   * still in progress is abandoned: that checkpoint timed out at the coordinator, which aborted it
   * and triggered N (docs/ARCHITECTURE.md, "Checkpoints").
   */
  #beginCut(checkpointId: number): Cut | undefined {
    const current = this.#cut;
    if (current?.id === checkpointId) return current;
    if (current !== undefined && current.id > checkpointId) return undefined;
    if (current !== undefined) this.#abandonCut(current, checkpointId);
    if (this.#state === 'FAILED' || this.#state === 'STOPPED') return undefined;
    this.#cutStartedMs = Date.now();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    this.#cut = { id: checkpointId, aligned: 0, output: this.#carried.splice(0), positions: new Map(), counters: new Map(), release, released, abandoned: false };
    return this.#cut;
  }

  /**
   * Gives up the cut of an aborted checkpoint for a newer one: nothing is frozen at it (its
   * changes go into the newer delta), the tasks aligned on it go on, and the exactly-once output
   * taken at its barriers goes with the newer cut. A move prepared at it cannot happen: the job
   * recovers, as the coordinator has it do when a move's checkpoint fails.
   */
  #abandonCut(cut: Cut, newer: number): void {
    this.#logger.warn({ checkpoint: cut.id, newer, alignedTasks: cut.aligned, ms: Date.now() - this.#cutStartedMs }, 'checkpoint cut abandoned for a newer one');
    cut.abandoned = true;
    this.#cut = undefined;
    this.#carried.push(...cut.output);
    cut.output = [];
    cut.release();
    if (this.#move?.checkpointId === cut.id) this.#fail(new Error(`checkpoint ${cut.id}, which moves key groups, was abandoned for checkpoint ${newer}`), '', -1);
  }

  /** Where output taken at a barrier of `cut` goes: the cut's, or after it was abandoned, the newer cut's. */
  #outputOf(cut: Cut): CheckpointOutput[] {
    if (!cut.abandoned) return cut.output;
    return this.#cut?.output ?? this.#carried;
  }

  /** A keyed task aligned on barrier N: forward the barrier, and freeze once all have. */
  #taskAligned(checkpointId: number, output: StageOutput, stageId: string): Promise<void> {
    const taken = output.barrier(checkpointId);
    const cut = this.#beginCut(checkpointId);
    if (cut === undefined) {
      // The task aligned on a checkpoint this worker abandoned meanwhile: it goes on at once, and
      // what its barrier took comes before the newer cut's barrier.
      const carry = (t: CheckpointOutput[]): void => void (this.#cut?.output ?? this.#carried).push(...t);
      return Array.isArray(taken) ? (carry(taken), Promise.resolve()) : taken.then(carry);
    }
    // The task holds its input from here until the cut: its counters stand at its barrier.
    cut.counters.set(stageId, this.#counters.get(stageId)!.totals());
    const aligned = (t: CheckpointOutput[]): Promise<void> => {
      if (cut.abandoned) {
        this.#outputOf(cut).push(...t);
        return Promise.resolve();
      }
      cut.output.push(...t);
      if (++cut.aligned === this.#keyed.length) this.#cutComplete(cut);
      return cut.released;
    };
    // An asyncMap after process(): the barrier waits for the records still in it (the task holds
    // its input meanwhile, so nothing after the barrier enters).
    return Array.isArray(taken) ? aligned(taken) : taken.then(aligned);
  }

  #cutComplete(cut: Cut): void {
    this.#cut = undefined;
    // Everything before barrier N is in the overlay and nothing after it: freeze delta N.
    if (cut.id > this.backend.frozenCheckpointId) this.backend.freeze(cut.id);
    // A move at N takes effect here, before the tasks go on past barrier N.
    if (this.#move?.checkpointId === cut.id) this.#applyMove(this.#move);
    this.#writer.frozen(cut.id, cut.output, this.#countCut(cut));
    this.#positions.set(cut.id, cut.positions);
    cut.release();
    this.#uploading = this.#uploading.then(() => this.#upload(cut.id));
  }

  /**
   * What the stages counted between the previous cut of this runtime and this one (a checkpoint
   * adds it to the job's totals), and the counters at this cut for heartbeats.
   */
  #countCut(cut: Cut): CountedTotals[] {
    const previous = this.#cutCounters[this.#cutCounters.length - 1];
    const stages = [...this.#counters.values()].map((c) => cut.counters.get(c.stageId) ?? c.totals());
    this.#cutCounters.push({ checkpointId: cut.id, stages });
    return stages.map((s) => {
      const before = previous?.stages.find((p) => p.stageId === s.stageId);
      return { ...s, recordsIn: s.recordsIn - (before?.recordsIn ?? 0), recordsOut: s.recordsOut - (before?.recordsOut ?? 0), deadLetters: s.deadLetters - (before?.deadLetters ?? 0) };
    });
  }

  async #upload(checkpointId: number): Promise<void> {
    const ack: CheckpointAck = { jobId: this.jobId, checkpointId, epoch: this.epoch, workerId: this.#ctx.options.workerId, sources: [], parts: [], error: '' };
    for (const [split, { nextSequence, maxEventTimeMs }] of this.#positions.get(checkpointId) ?? []) {
      ack.sources.push({ split, nextSequence, ...(Number.isFinite(maxEventTimeMs) && { maxEventTimeMs, hasMaxEventTime: true }) });
    }
    this.#positions.delete(checkpointId);
    const started = performance.now();
    const bytesBefore = this.#writer.bytesUploaded;
    try {
      ack.parts = await this.#writer.upload(checkpointId);
      this.#ctx.metrics.checkpointUploaded(this.jobId, performance.now() - started, this.#writer.bytesUploaded - bytesBefore, false);
    } catch (e) {
      const err = ensureError(e);
      this.#logger.warn({ checkpoint: checkpointId, err: err.message }, 'checkpoint upload failed');
      this.#ctx.metrics.checkpointUploaded(this.jobId, performance.now() - started, 0, true);
      ack.error = `upload failed: ${err.message}`;
    }
    if (this.#state === 'RUNNING') this.#ctx.sendCheckpointAck(ack);
  }

  /** Checkpoint N is complete (its _metadata is written): RocksDB takes delta N, in one batch. */
  async complete(c: CheckpointComplete): Promise<void> {
    if (this.#state !== 'RUNNING') return;
    const checkpointId = c.checkpointId;
    const move = this.#move?.checkpointId === checkpointId ? this.#move : undefined;
    // Splits taken over at N exist before anything else happens, so that the trigger of N + 1
    // (which may come at any moment now) has them inject its barrier.
    const started = move ? move.splitsIn.map((p) => this.#addSource(p, c.sources.find((x) => x.split === p))) : [];
    for (const source of started) source.start().catch((e) => this.#fail(ensureError(e), this.#splitPlan(source.partition).plan.spec.id, -1));
    if (checkpointId > this.backend.committedCheckpointId && checkpointId <= this.backend.frozenCheckpointId) await this.backend.commit(checkpointId);
    this.#writer.completed(checkpointId);
    // The coordinator counts from a recent completed checkpoint that every heartbeat is past: a
    // few cuts back are enough (one per checkpoint interval, heartbeats every half second).
    if (this.#cutCounters.length > CUTS_REPORTED) this.#cutCounters = this.#cutCounters.slice(-CUTS_REPORTED);
    if (!move) return;
    this.#move = undefined;
    // Not awaited by the coordinator: loading may take a while, and nothing waits for it but the
    // moving key groups (and the checkpoint after N, which needs them).
    this.#moving = this.#moving.then(() => this.#finishMove(move)).catch((e) => this.#fail(ensureError(e), '', -1));
  }

  /**
   * Prepares a move at barrier N (MoveTasks): incoming key groups are subscribed before the
   * barrier can exist; channels into them start at it (worker/task/keyed-task.ts).
   */
  async prepareMove(m: MoveTasks): Promise<void> {
    if (this.#state !== 'RUNNING') throw new Error(`job ${this.jobId} is ${this.#state} on this worker`);
    if (this.#move) throw new Error(`job ${this.jobId} is already moving at checkpoint ${this.#move.checkpointId}`);
    const keyGroups = [...keyGroupsOf(m.keyGroups)];
    const next = new Set(keyGroups);
    const owned = new Set(this.keyGroups);
    const splits = new Set(m.sourceSplits);
    const reading = new Set(this.#sources.map((s) => s.partition));
    this.#move = {
      checkpointId: m.checkpointId,
      keyGroups,
      incoming: keyGroups.filter((kg) => !owned.has(kg)),
      outgoing: this.keyGroups.filter((kg) => !next.has(kg)),
      splitsIn: m.sourceSplits.filter((p) => !reading.has(p)),
      splitsOut: [...reading].filter((p) => !splits.has(p)),
    };
    m.splitSenders.forEach((name, p) => this.#splitSenders.set(p, name));
    await Promise.all(
      this.#keyed.map((task, i) => {
        const stageId = this.#keyedPlans[i]!.spec.id;
        const after = upstreamSenders(this.manifest, stageId, m.workers, (p) => this.#splitSenders.get(p)!, this.epoch);
        const before = upstreamSenders(this.manifest, stageId, m.previousWorkers, (p) => m.previousSplitSenders[p]!, this.epoch);
        return task.prepareMove(m.checkpointId, keyGroups, after.all, before.all, after.watermark);
      }),
    );
    const { incoming, outgoing, splitsIn, splitsOut } = this.#move;
    this.#logger.info({ checkpoint: m.checkpointId, incoming: toRanges(incoming), outgoing: toRanges(outgoing), splitsIn, splitsOut }, 'move prepared');
  }

  /** At barrier N: splits handed over stop reading; their senders close once all is acknowledged. */
  #releaseSplits(partitions: readonly number[]): void {
    for (const p of partitions) {
      const i = this.#sources.findIndex((s) => s.partition === p);
      if (i < 0) continue;
      const [source] = this.#sources.splice(i, 1);
      const [output] = this.#sourceOutputs.splice(i, 1);
      source!.halt();
      void (async () => {
        await source!.stop();
        await output!.settled();
        await output!.sender?.whenDrained();
        await output!.close();
      })().catch((e) => this.#fail(ensureError(e), this.#splitPlan(p).plan.spec.id, -1));
    }
  }

  #applyMove(move: PendingMove): void {
    move.appliedAtMs = performance.now();
    for (const task of this.#keyed) task.applyMove(move.checkpointId);
    this.keyGroups = move.keyGroups;
    // The old owner stops serving key groups it let go: from here on its state is stale.
    this.#queries.release(move.outgoing);
  }

  async #finishMove(move: PendingMove): Promise<void> {
    const t0 = performance.now();
    const stages = this.manifest.stages.filter((s) => s.kind === 'keyed').map((s) => s.id);
    // Checkpoint N is in RocksDB (committed above): what was let go can be dropped.
    this.#queries.remove(move.outgoing);
    for (const kg of move.outgoing) {
      for (const stage of stages) await this.backend.dropKeyGroup(stage, kg);
      this.stateKeyGroups.delete(kg);
    }
    let bytesRead = 0;
    if (move.incoming.length > 0) {
      const metadata = await readMetadata(this.#ctx.store, objectKeys.metadata(this.jobId, move.checkpointId));
      ({ bytesRead } = await restoreKeyGroups(this.#ctx.store, this.backend, metadata, stages, move.incoming));
      for (const kg of move.incoming) this.stateKeyGroups.add(kg);
    }
    if (this.#state !== 'RUNNING') return;
    for (const task of this.#keyed) task.activate(move.incoming);
    this.#queries.add(move.incoming);
    // The incoming key groups' pause: from the barrier (nothing processed for them since) to now.
    const pausedMs = move.incoming.length > 0 && move.appliedAtMs !== undefined ? Math.round(performance.now() - move.appliedAtMs) : undefined;
    this.#logger.info({ checkpoint: move.checkpointId, loadedKeyGroups: move.incoming.length, droppedKeyGroups: move.outgoing.length, bytesRead, pausedMs, ms: Math.round(performance.now() - t0) }, 'move done');
  }

  #lastRequestMs = 0;

  /**
   * The overlay's memory bound (docs/ARCHITECTURE.md, "State" step 6): past it, ask for an early
   * checkpoint, which freezes the overlay and moves it to RocksDB once complete. Tasks are not
   * paused: records ahead of the barrier must be processed for the checkpoint to cut at all.
   */
  #checkOverlay(): void {
    const bytes = this.backend.activeOverlayBytes();
    const max = this.#ctx.options.maxOverlayBytes;
    if (bytes <= max) return;
    const now = Date.now();
    if (now - this.#lastRequestMs < 250) return;
    this.#lastRequestMs = now;
    this.#logger.info({ overlayBytes: bytes, maxOverlayBytes: max }, 'overlay past its bound; asking for a checkpoint');
    this.#ctx.requestCheckpoint(this.jobId, this.epoch);
  }

  get bytesUploaded(): number {
    return this.#writer.bytesUploaded;
  }

  #fail(error: Error, stageId: string, keyGroup: number): void {
    if (this.#state === 'FAILED' || this.#state === 'STOPPED') return;
    this.#state = 'FAILED';
    const kg = error instanceof UserFunctionError ? error.keyGroup : keyGroup;
    const stage = error instanceof UserFunctionError ? error.stageId : stageId;
    const position = error instanceof UserFunctionError ? error.sourcePosition : undefined;
    this.#logger.error({ err: error, stage, keyGroup: kg, ...(position && { sourcePosition: position }) }, 'job task failed');
    this.#ctx.reportFailure({
      jobId: this.jobId,
      workerId: this.#ctx.options.workerId,
      stageId: stage,
      keyGroup: kg,
      message: error.message,
      stack: (error instanceof UserFunctionError ? ensureError(error.cause).stack : error.stack) ?? '',
      atUnixMs: Date.now(),
      userCode: error instanceof UserFunctionError,
      epoch: this.epoch,
      ...(position && { hasSourcePosition: true, split: position.split, sequence: position.sequence }),
    });
    this.#stopTasksOnce().catch((e) => this.#logger.error({ err: ensureError(e) }, 'stopping the tasks failed'));
  }

  #stopTasksOnce(): Promise<void> {
    this.#tasksStopped ??= this.#stopTasks();
    return this.#tasksStopped;
  }

  async #stopTasks(): Promise<void> {
    this.#cut?.release();
    // Keyed tasks stop taking batches at once (KeyedTask.stop marks them synchronously), not after
    // the sources: after a failure nothing may change state any more. The redeploy that follows
    // reuses this backend and rolls it back; a task still draining its queue would write (fire
    // timers, evict entries) into the rolled-back state of the next epoch.
    this.#keyedStopped = Promise.all(this.#keyed.map((k) => k.stop()));
    await Promise.all(this.#sources.map((s) => s.stop()));
    await this.#keyedStopped;
    this.#queries.stop();
    this.#watches.close();
    await this.#historyCleaner.stop();
    await Promise.all([...this.#sourceOutputs, ...this.#keyedOutputs].map((o) => o.close()));
  }

  /** Stops every task; closes RocksDB unless a redeploy takes it over. */
  stop(options: { closeBackend?: boolean } = {}): Promise<void> {
    this.#stopping ??= (async () => {
      const wasFailed = this.#state === 'FAILED';
      this.#state = 'STOPPED';
      clearInterval(this.#slowCutTimer);
      this.#detachMetrics();
      const stopped = this.#stopTasksOnce();
      // Also after a failure, the keyed tasks' last batches must be done before the backend is
      // rolled back or closed (JobRuntime.deploy reuses it). A failed runtime's sources may wait
      // on a channel that nobody acknowledges any more: they write no state, so the redeploy
      // does not wait for them.
      await (wasFailed ? this.#keyedStopped : stopped);
      await this.#uploading.catch(() => undefined);
      await this.#moving.catch(() => undefined);
      this.#writer.reset();
      this.#rejections.close();
      if (options.closeBackend !== false) await this.backend.close();
      this.#logger.info('job stopped');
    })();
    return this.#stopping;
  }
}

/** Where a job's RocksDB lives on a worker: <dataDir>/<workerId>/jobs/<jobId>/state. */
function statePathOf(options: CompiledWorkerOptions, jobId: string): string {
  return path.join(options.dataDir, options.workerId, 'jobs', jobId, 'state');
}
