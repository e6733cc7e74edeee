// Everything one job runs on this worker: its bundle, its RocksDB, the keyed tasks and query
// responder for the key groups it owns, the source splits it reads, and its part of every
// checkpoint. The runtime assembles the tasks and orchestrates named pieces: the deploy's bundle
// check and state restore (job-deploy.ts: a redeploy reuses the previous runtime's RocksDB), the
// checkpoint cut (checkpoint/checkpoint-cut.ts), and key-group moves (checkpoint/key-group-move.ts).
//
// A barrier's round trip: a KeyedTask aligned on N (checkpoint/barrier-aligner.ts) calls
// onAligned → its StageOutput forwards N and takes the output before it → CheckpointCuts freezes
// the StateBackend at N once every keyed task has, applies a move at N, hands delta N to the
// CheckpointWriter and releases the tasks; the upload ends in CheckpointAck N.
import type { NatsConnection } from '@nats-io/transport-node';
import { parseManifest, splitCount, splitSource, type JobManifest } from '../core/manifest.ts';
import { keyGroupsOf } from '../core/key-groups.ts';
import { parseJobId, type JobId } from '../core/ids.ts';
import { ensureError, UserFunctionError } from '../core/errors.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { Logger } from '../core/logger.ts';
import type { CheckpointAck, CheckpointComplete, DeployTasks, JobCounters, MoveTasks, QueryReply, QueryRequest, SkippedRecord, SourcePosition, TaskFailure } from '../core/control.ts';
import { senderNames } from '../core/subjects.ts';
import type { JobPlan, StagePlan } from '../sdk/plan.ts';
import type { StateBackend } from './state/index.ts';
import { DeadLetters, ErrorPolicy, StageCounters, createStageOutput, type StageOutput } from './task/index.ts';
import { BatchSigner, inputResolver, upstreamSenders } from './channel/index.ts';
import { ThrottledLog } from '../core/throttled-log.ts';
import { SourceTask } from './task/index.ts';
import { GeneratorTask, type SourceReader } from './task/generator-task.ts';
import { KeyedTask } from './task/index.ts';
import { QueryResponder, WatchRegistry, natsInbox, type QueryInbox } from './query/index.ts';
import type { ServedQuery } from './hosted-job.ts';
import { HistoryCleaner } from './state/index.ts';
import { featureStates } from './state/index.ts';
import { CheckpointCuts, CheckpointWriter, KeyGroupMove, OverlayBound } from './checkpoint/index.ts';
import type { CheckpointOutput } from './sink/index.ts';
import type { CompiledWorkerOptions } from './options.ts';
import { deployState, loadJobPlan, statePathOf } from './job-deploy.ts';
import type { ObservedJob, SplitSample, StageSample, WorkerMetrics } from './worker-metrics.ts';

export interface JobRuntimeContext {
  nc: NatsConnection;
  /** Where feature queries come from (worker/query/query-inbox.ts). @default subscriptions on nc */
  queryInbox?: QueryInbox;
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

const splitSender = senderNames.split;
const stageSender = senderNames.stage;

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
  /** The checkpoint cut: alignment of the keyed tasks, the freeze, the upload and the ack. */
  readonly #cuts: CheckpointCuts;
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
  /** A move prepared, from MoveTasks until its checkpoint completed. */
  #move: KeyGroupMove | undefined;
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
    this.#overlayBound = new OverlayBound({
      bytes: () => backend.activeOverlayBytes(),
      maxBytes: ctx.options.maxOverlayBytes,
      ask: (bytes) => {
        if (this.#state !== 'RUNNING') return;
        this.#logger.info({ overlayBytes: bytes, maxOverlayBytes: ctx.options.maxOverlayBytes }, 'overlay past its bound; asking for a checkpoint');
        this.#ctx.requestCheckpoint(this.jobId, this.epoch);
      },
    });
    this.#cuts = new CheckpointCuts({
      jobId: this.jobId,
      epoch: deploy.epoch,
      workerId: ctx.options.workerId,
      backend,
      writer: this.#writer,
      counters: this.#counters,
      logger: this.#logger,
      keyedTasks: () => this.#keyed.length,
      alignmentStatus: () => this.#keyed.map((t) => t.alignmentStatus()),
      mayCut: () => this.#state !== 'FAILED' && this.#state !== 'STOPPED',
      running: () => this.#state === 'RUNNING',
      atCut: (checkpointId) => {
        if (this.#move?.checkpointId === checkpointId) this.#applyMove(this.#move);
      },
      abandoned: (checkpointId, newer) => {
        if (this.#move?.checkpointId === checkpointId) this.#fail(new Error(`checkpoint ${checkpointId}, which moves key groups, was abandoned for checkpoint ${newer}`), '', -1);
      },
      sendAck: (ack: CheckpointAck) => ctx.sendCheckpointAck(ack),
      uploaded: (ms, bytes, failed) => ctx.metrics.checkpointUploaded(this.jobId, ms, bytes, failed),
    });
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

    // The live set a move changes (key-group-move.ts): a copy taken here refused every watch of a
    // key group that moved in, for the rest of the epoch.
    this.#watches = new WatchRegistry({ nc: ctx.nc, manifest, backend, epoch, logger: this.#logger, keyGroups: this.stateKeyGroups });

    // Keyed stages subscribe at deploy time, before any source starts (the coordinator sends
    // start only when every worker has deployed), so no channel's first batch is missed.
    for (const stage of keyedPlans) {
      const counters = this.#counters.get(stage.spec.id)!;
      const upstream = upstreamSenders(manifest, stage.spec.id, deploy.workers, (p) => splitSender(p, epoch), epoch);
      let task: KeyedTask | undefined;
      const { deadLetters, errorPolicy } = this.#taskErrors(stage.spec.id, counters);
      const output = this.#stageOutput(stage, stageSender(stage.spec.id, workerId, epoch), counters, deadLetters, errorPolicy, () => task?.currentKeyGroup ?? -1);
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
        errorPolicy,
        logger: this.#logger.child({ stage: stage.spec.id }),
        onFailure: (e, kg) => this.#fail(e, stage.spec.id, kg),
        onAligning: (id) => void this.#cuts.begin(id),
        // The barrier's round trip: the task aligned, its output forwards barrier N and takes the
        // exactly-once output before it, and the cut freezes once every keyed task has.
        onAligned: (id) => this.#cuts.taskAligned(id, output.barrier(id), counters),
        afterBatch: () => {
          this.#overlayBound.check();
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
    this.#queries = new QueryResponder({ inbox: ctx.queryInbox ?? natsInbox(ctx.nc), jobId: this.jobId, manifest, keyGroups: this.keyGroups, backend, logger: this.#logger, epoch: deploy.epoch, workerId: ctx.options.workerId, watches: this.#watches, recordLatencyMs: ctx.metrics.queryRecorder(this.jobId) });
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

  /** A task's dead letters and the job's error policy over them (one of each per task, shared with its output). */
  #taskErrors(stageId: string, counters: StageCounters): { deadLetters: DeadLetters; errorPolicy: ErrorPolicy } {
    const deadLetters = new DeadLetters(this.jobId, this.#ctx.options.workerId);
    return { deadLetters, errorPolicy: new ErrorPolicy({ policy: this.manifest.errorPolicy, jobId: this.jobId, stageId, deadLetters, counters }) };
  }

  /** A stage's output (its operator tree, sinks and channel senders) for the task sending as `senderTask`. */
  #stageOutput(stage: StagePlan, senderTask: string, counters: StageCounters, deadLetters: DeadLetters, errorPolicy: ErrorPolicy, keyGroup: () => number): StageOutput {
    const stageId = stage.spec.id;
    return createStageOutput({
      nc: this.#ctx.nc,
      jobId: this.jobId,
      stage,
      senderTask,
      maxParallelism: this.manifest.maxParallelism,
      counters,
      deadLetters,
      where: { jobId: this.jobId, stageId, keyGroup },
      worker: this.#ctx.options,
      onBroken: (e) => this.#fail(e, stageId, -1),
      recordBatchSize: (to) => this.#ctx.metrics.batchRecorder(this.jobId, to),
      errorPolicy,
      onFailure: (e) => this.#fail(e, stageId, -1),
      ...(this.#signer !== undefined && { signer: this.#signer }),
      rejections: this.#rejections,
    });
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
    const { deadLetters, errorPolicy } = this.#taskErrors(stageId, counters);
    // One reader per split in the whole job: the split (and epoch, and move) names the channel's sender.
    const output = this.#stageOutput(sourcePlan, this.#splitSenders.get(partition)!, counters, deadLetters, errorPolicy, () => -1);
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
          errorPolicy,
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
      errorPolicy,
      logger: this.#logger.child({ stage: stageId, split: partition }),
      onFailure: (e) => this.#fail(e, stageId, -1),
      // The worker's pull budget, shared by the job's JetStream splits here when a consumer is made.
      pullBytes: () => this.#ctx.options.sourcePullBytes / Math.max(1, this.#sources.filter((s) => s instanceof SourceTask).length),
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
    const plan = await loadJobPlan(ctx.store, ctx.options, deploy, manifest);
    const backend = await deployState(ctx.store, ctx.options, ctx.logger, deploy, manifest, previous, started);
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
    return { jobId: this.jobId, stages: [...this.#counters.values()].map((c) => c.snapshot()), epoch: this.epoch, cuts: this.#cuts.cutCounters };
  }

  /**
   * The coordinator starts checkpoint N: sources inject barrier N and record their positions, and
   * the owned key groups among `rematerialize` get a full snapshot at N in this worker's part.
   */
  trigger(checkpointId: number, rematerialize: readonly number[] = []): void {
    if (this.#state !== 'RUNNING') throw new Error(`job ${this.jobId} is ${this.#state} on this worker`);
    // Without source splits, barrier N from upstream may have been cut here before N's trigger came
    // (the trigger is late). If N moved every key group away, the check below would begin a
    // second cut of N, and a second acknowledgement aborts N: the move fails and the job recovers.
    if (checkpointId <= this.#cuts.lastCutId) return;
    const owned = new Set(this.keyGroups);
    this.#writer.rematerialize(checkpointId, rematerialize.filter((kg) => owned.has(kg)));
    // Every worker is asked, so that owners hear which key groups to re-materialize. Without
    // source splits this worker's cut starts with barrier N from upstream, which may come before
    // or after this request (or while N-1 is still being cut): it must not begin a cut here.
    if (this.#sources.length === 0 && this.keyGroups.length > 0 && this.#keyed.length > 0) return;
    const cut = this.#cuts.begin(checkpointId);
    if (cut === undefined) throw new Error(`checkpoint ${checkpointId} triggered after the newer ${this.#cuts.currentId ?? '?'}`);
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
    const finish = (taken: CheckpointOutput[][]): void => this.#cuts.sourcesInjected(cut, taken, this.keyGroups.length === 0 || this.#keyed.length === 0);
    // With an asyncMap in the source chain, barrier N goes out once the records read before it
    // have left the operator: the cut completes then.
    if (outputs.every(Array.isArray)) finish(outputs as CheckpointOutput[][]);
    else void Promise.all(outputs).then(finish, (e) => this.#fail(ensureError(e), this.#plan.stages[0]!.spec.id, -1));
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
    // RocksDB takes delta N in the background, unless a move waits for it (checkpoint-cut.ts).
    const committed = this.#cuts.completed(checkpointId);
    this.#writer.completed(checkpointId);
    if (!move) return void committed.catch((e) => this.#fail(ensureError(e), '', -1));
    await committed;
    this.#move = undefined;
    // Not awaited by the coordinator: loading may take a while, and nothing waits for it but the
    // moving key groups (and the checkpoint after N, which needs them).
    this.#moving = this.#moving.then(() => move.finish()).catch((e) => this.#fail(ensureError(e), '', -1));
  }

  /**
   * Prepares a move at barrier N (MoveTasks): incoming key groups are subscribed before the
   * barrier can exist (worker/checkpoint/key-group-move.ts).
   */
  async prepareMove(m: MoveTasks): Promise<void> {
    if (this.#state !== 'RUNNING') throw new Error(`job ${this.jobId} is ${this.#state} on this worker`);
    if (this.#move) throw new Error(`job ${this.jobId} is already moving at checkpoint ${this.#move.checkpointId}`);
    const context = {
      jobId: this.jobId,
      manifest: this.manifest,
      epoch: this.epoch,
      store: this.#ctx.store,
      backend: this.backend,
      logger: this.#logger,
      tasks: this.#keyed,
      taskStages: this.#keyedPlans.map((s) => s.spec.id),
      queries: this.#queries,
      stateKeyGroups: this.stateKeyGroups,
      splitSenders: this.#splitSenders,
      running: () => this.#state === 'RUNNING',
    };
    this.#move = new KeyGroupMove(context, m, this.keyGroups, this.#sources.map((s) => s.partition));
    await this.#move.prepare();
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

  /** The cut of the move's checkpoint: the move takes effect before the tasks go on past its barrier. */
  #applyMove(move: KeyGroupMove): void {
    move.apply();
    this.keyGroups = move.keyGroups;
  }

  /** The overlay's memory bound (worker/checkpoint/overlay-bound.ts). */
  readonly #overlayBound: OverlayBound;

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
      // An error without a message (a bare `new Error()`, an abort) still says what it was.
      message: error.message || `${error.name} without a message: ${(error.stack ?? '').split('\n')[1]?.trim() ?? 'no stack'}`,
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
    this.#cuts.releaseCurrent();
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

  get maxParallelism(): number {
    return this.manifest.maxParallelism;
  }

  /** A feature read asked directly (the worker's serving endpoint): the query subjects' lookup, encoded. */
  serve(request: QueryRequest): Promise<ServedQuery> {
    return this.#queries.serve(request);
  }

  /** Stops every task; closes RocksDB unless a redeploy takes it over. */
  stop(options: { closeBackend?: boolean } = {}): Promise<void> {
    this.#stopping ??= (async () => {
      const wasFailed = this.#state === 'FAILED';
      this.#state = 'STOPPED';
      this.#overlayBound.close();
      this.#cuts.close();
      this.#detachMetrics();
      const stopped = this.#stopTasksOnce();
      // Also after a failure, the keyed tasks' last batches must be done before the backend is
      // rolled back or closed (JobRuntime.deploy reuses it). A failed runtime's sources may wait
      // on a channel that nobody acknowledges any more: they write no state, so the redeploy
      // does not wait for them.
      await (wasFailed ? this.#keyedStopped : stopped);
      await this.#cuts.whenUploaded();
      await Promise.all([this.#moving.catch(() => undefined), this.#cuts.whenCommitted()]);
      this.#writer.reset();
      this.#rejections.close();
      if (options.closeBackend !== false) await this.backend.close();
      this.#logger.info('job stopped');
    })();
    return this.#stopping;
  }
}
