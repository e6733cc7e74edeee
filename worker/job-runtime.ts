// Everything one job runs on this worker: its bundle, its RocksDB, the keyed tasks and query
// responder for the key groups it owns, the source splits it reads, and its part of every
// checkpoint. A redeploy (a recovery, a new epoch) reuses the previous runtime's RocksDB:
// survivors keep their key groups' committed state and read only new key groups from the
// object store (ARCHITECTURE.md, "State" step 5).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadBundle, sha256Hex } from '../core/bundle.ts';
import { parseManifest, type JobManifest } from '../core/manifest.ts';
import { keyGroupsOf } from '../core/key-groups.ts';
import { parseJobId, type JobId } from '../core/ids.ts';
import { ensureError, InvalidArgumentError, UserFunctionError } from '../core/errors.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { Logger } from '../core/logger.ts';
import type { CheckpointAck, DeployTasks, JobCounters, TaskFailure } from '../core/control.ts';
import type { JobPlan } from '../sdk/index.ts';
import { StateBackend } from './state-backend.ts';
import { StageCounters } from './stage-counters.ts';
import { DeadLetters } from './dead-letters.ts';
import { createStageOutput, type StageOutput } from './stage-output.ts';
import { SourceTask } from './source-task.ts';
import { KeyedTask } from './keyed-task.ts';
import { QueryResponder } from './query-responder.ts';
import { CheckpointWriter } from './checkpoint-writer.ts';
import { readMetadata, restoreKeyGroups } from './checkpoint-restore.ts';
import type { CheckpointOutput } from './sinks.ts';
import type { CompiledWorkerOptions } from './options.ts';

export interface JobRuntimeContext {
  nc: NatsConnection;
  store: ObjectStore;
  options: CompiledWorkerOptions;
  logger: Logger;
  reportFailure(failure: TaskFailure): void;
  sendCheckpointAck(ack: CheckpointAck): void;
  /** Asks the coordinator for a checkpoint now (the overlay passed its bound). */
  requestCheckpoint(jobId: string, epoch: number): void;
}

export type JobRuntimeState = 'DEPLOYED' | 'RUNNING' | 'FAILED' | 'STOPPED';

/** A checkpoint being cut on this worker. */
interface Cut {
  id: number;
  /** Keyed tasks aligned on its barrier so far. */
  aligned: number;
  /** Exactly-once sink output before the barrier. */
  output: CheckpointOutput[];
  /** Source split → next sequence, recorded at injection. */
  positions: Map<number, number>;
  /** Lets the aligned tasks go on once the state is frozen. */
  release: () => void;
  released: Promise<void>;
}

/** Sender names carry the epoch, so a receiver fences off batches of an earlier epoch. */
export const splitSender = (partition: number, epoch: number) => `split${partition}@e${epoch}`;
export const stageSender = (stage: string, worker: string, epoch: number) => `${stage}@${worker}@e${epoch}`;

export class JobRuntime {
  readonly jobId: JobId;
  readonly manifest: JobManifest;
  readonly epoch: number;
  readonly keyGroups: readonly number[];
  readonly backend: StateBackend;
  readonly #ctx: JobRuntimeContext;
  readonly #counters: Map<string, StageCounters>;
  readonly #sources: SourceTask[] = [];
  readonly #keyed: KeyedTask[] = [];
  readonly #keyedOutputs: StageOutput[] = [];
  readonly #sourceOutputs: StageOutput[] = [];
  readonly #queries: QueryResponder;
  readonly #logger: Logger;
  readonly #writer: CheckpointWriter;
  /** The checkpoint being cut: tasks aligned so far, and their release. */
  #cut: Cut | undefined;
  /** Source positions per cut checkpoint, until acknowledged. */
  readonly #positions = new Map<number, Map<number, number>>();
  #uploading: Promise<void> = Promise.resolve();
  #state: JobRuntimeState = 'DEPLOYED';
  #stopping: Promise<void> | undefined;

  private constructor(ctx: JobRuntimeContext, deploy: DeployTasks, manifest: JobManifest, plan: JobPlan, backend: StateBackend) {
    this.#ctx = ctx;
    this.jobId = parseJobId(deploy.jobId);
    this.manifest = manifest;
    this.epoch = deploy.epoch;
    this.backend = backend;
    this.#logger = ctx.logger.child({ jobId: this.jobId, epoch: deploy.epoch });
    this.#counters = new Map(manifest.stages.map((s) => [s.id, new StageCounters(s.id)]));
    const keyedStages = manifest.stages.filter((s) => s.kind === 'keyed').map((s) => s.id);
    this.#writer = new CheckpointWriter(ctx.store, backend, this.jobId, ctx.options.workerId, keyedStages);
    const workerId = ctx.options.workerId;
    const epoch = deploy.epoch;
    const deadLetters = new DeadLetters(ctx.nc, this.jobId, workerId);
    this.keyGroups = [...keyGroupsOf(deploy.keyGroups)];
    const [sourcePlan, ...keyedPlans] = plan.stages;
    const starts = new Map(deploy.startPositions.map((p) => [p.split, p.nextSequence]));

    // Keyed stages subscribe at deploy time, before any source starts (the coordinator sends
    // start only when every worker has deployed), so no channel's first batch is missed.
    keyedPlans.forEach((stage, i) => {
      const counters = this.#counters.get(stage.spec.id)!;
      const upstream = i === 0
        ? Array.from({ length: manifest.source.partitions }, (_, p) => splitSender(p, epoch))
        : deploy.workers.map((w) => stageSender(keyedPlans[i - 1]!.spec.id, w, epoch));
      let task: KeyedTask | undefined;
      const output = createStageOutput({
        nc: ctx.nc,
        jobId: this.jobId,
        stage,
        chained: stage.operators.slice(1),
        senderTask: stageSender(stage.spec.id, workerId, epoch),
        maxParallelism: manifest.maxParallelism,
        counters,
        deadLetters,
        where: { jobId: this.jobId, stageId: stage.spec.id, keyGroup: () => task?.currentKeyGroup ?? -1 },
        worker: ctx.options,
        onBroken: (e) => this.#fail(e, stage.spec.id, -1),
      });
      this.#keyedOutputs.push(output);
      task = new KeyedTask({
        nc: ctx.nc,
        jobId: this.jobId,
        manifest,
        stage,
        keyGroups: this.keyGroups,
        upstreamSenders: upstream,
        backend,
        output,
        counters,
        deadLetters,
        logger: this.#logger.child({ stage: stage.spec.id }),
        onFailure: (e, kg) => this.#fail(e, stage.spec.id, kg),
        onAligned: (id) => this.#taskAligned(id, output),
        afterBatch: () => this.#checkOverlay(),
      });
      if (this.keyGroups.length > 0) task.start();
      this.#keyed.push(task);
    });
    this.#queries = new QueryResponder({ nc: ctx.nc, jobId: this.jobId, manifest, keyGroups: this.keyGroups, backend, logger: this.#logger });
    this.#queries.start();

    for (const partition of deploy.sourceSplits) {
      const counters = this.#counters.get(sourcePlan!.spec.id)!;
      const output = createStageOutput({
        nc: ctx.nc,
        jobId: this.jobId,
        stage: sourcePlan!,
        chained: sourcePlan!.operators,
        // One reader per split in the whole job: the split (and epoch) names the channel's sender.
        senderTask: splitSender(partition, epoch),
        maxParallelism: manifest.maxParallelism,
        counters,
        deadLetters,
        where: { jobId: this.jobId, stageId: sourcePlan!.spec.id, keyGroup: () => -1 },
        worker: ctx.options,
        onBroken: (e) => this.#fail(e, sourcePlan!.spec.id, -1),
      });
      this.#sourceOutputs.push(output);
      this.#sources.push(
        new SourceTask({
          nc: ctx.nc,
          manifest,
          stageId: sourcePlan!.spec.id,
          partition,
          startSequence: starts.get(partition) ?? 1,
          output,
          counters,
          deadLetters,
          logger: this.#logger.child({ stage: sourcePlan!.spec.id, split: partition }),
          onFailure: (e) => this.#fail(e, sourcePlan!.spec.id, -1),
          ...(sourcePlan!.timestamp && { timestampOf: sourcePlan!.timestamp }),
        }),
      );
    }
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
      const kept = new Set(backend.committedCheckpointId === target || (target === 0 && backend.committedCheckpointId <= 0) ? previous.keyGroups : []);
      toLoad = keyGroups.filter((kg) => !kept.has(kg));
      const mine = new Set(keyGroups);
      for (const kg of previous.keyGroups) if (!mine.has(kg)) for (const stage of stages) await backend.dropKeyGroup(stage, kg);
    } else {
      await previous?.stop();
      const statePath = path.join(workerDir, 'jobs', deploy.jobId, 'state');
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

  get state(): JobRuntimeState {
    return this.#state;
  }

  async start(): Promise<void> {
    if (this.#state !== 'DEPLOYED') return;
    this.#state = 'RUNNING';
    for (const s of this.#sources) await s.start();
    this.#logger.info({ splits: this.#sources.length }, 'job started');
  }

  counters(): JobCounters {
    return { jobId: this.jobId, stages: [...this.#counters.values()].map((c) => c.snapshot()) };
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
    for (const s of this.#sources) cut.positions.set(s.partition, s.injectBarrier(checkpointId));
    for (const o of this.#sourceOutputs) cut.output.push(...o.takeCheckpointOutput());
    if (this.keyGroups.length === 0 || this.#keyed.length === 0) this.#cutComplete(cut);
  }

  #beginCut(checkpointId: number): Cut {
    if (this.#cut && this.#cut.id === checkpointId) return this.#cut;
    if (this.#cut) throw new Error(`checkpoint ${checkpointId} started while ${this.#cut.id} is being cut`);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    this.#cut = { id: checkpointId, aligned: 0, output: [], positions: new Map(), release, released };
    return this.#cut;
  }

  /** A keyed task aligned on barrier N: forward the barrier, and freeze once all have. */
  #taskAligned(checkpointId: number, output: StageOutput): Promise<void> {
    output.sender?.flush();
    output.sender?.sendBarrier(checkpointId);
    const cut = this.#beginCut(checkpointId);
    cut.output.push(...output.takeCheckpointOutput());
    if (++cut.aligned === this.#keyed.length) this.#cutComplete(cut);
    return cut.released;
  }

  #cutComplete(cut: Cut): void {
    this.#cut = undefined;
    // Everything before barrier N is in the overlay and nothing after it: freeze delta N.
    if (cut.id > this.backend.frozenCheckpointId) this.backend.freeze(cut.id);
    this.#writer.frozen(cut.id, cut.output);
    this.#positions.set(cut.id, cut.positions);
    cut.release();
    this.#uploading = this.#uploading.then(() => this.#upload(cut.id));
  }

  async #upload(checkpointId: number): Promise<void> {
    const ack: CheckpointAck = { jobId: this.jobId, checkpointId, epoch: this.epoch, workerId: this.#ctx.options.workerId, sources: [], parts: [], error: '' };
    for (const [split, nextSequence] of this.#positions.get(checkpointId) ?? []) ack.sources.push({ split, nextSequence });
    this.#positions.delete(checkpointId);
    try {
      ack.parts = await this.#writer.upload(checkpointId);
    } catch (e) {
      const err = ensureError(e);
      this.#logger.warn({ checkpoint: checkpointId, err: err.message }, 'checkpoint upload failed');
      ack.error = `upload failed: ${err.message}`;
    }
    if (this.#state === 'RUNNING') this.#ctx.sendCheckpointAck(ack);
  }

  /** Checkpoint N is complete (its _metadata is written): RocksDB takes delta N, in one batch. */
  async complete(checkpointId: number): Promise<void> {
    if (this.#state !== 'RUNNING') return;
    if (checkpointId > this.backend.committedCheckpointId && checkpointId <= this.backend.frozenCheckpointId) await this.backend.commit(checkpointId);
    this.#writer.completed(checkpointId);
  }

  #lastRequestMs = 0;

  /**
   * The overlay's memory bound (ARCHITECTURE.md, "State" step 6): past it, ask for an early
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
    this.#logger.error({ err: error, stage, keyGroup: kg }, 'job task failed');
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
    });
    void this.#stopTasks();
  }

  async #stopTasks(): Promise<void> {
    this.#cut?.release();
    await Promise.all(this.#sources.map((s) => s.stop()));
    await Promise.all(this.#keyed.map((k) => k.stop()));
    this.#queries.stop();
    await Promise.all([...this.#sourceOutputs, ...this.#keyedOutputs].map((o) => o.close()));
  }

  /** Stops every task; closes RocksDB unless a redeploy takes it over. */
  stop(options: { closeBackend?: boolean } = {}): Promise<void> {
    this.#stopping ??= (async () => {
      const wasFailed = this.#state === 'FAILED';
      this.#state = 'STOPPED';
      if (!wasFailed) await this.#stopTasks();
      await this.#uploading.catch(() => undefined);
      this.#writer.reset();
      if (options.closeBackend !== false) await this.backend.close();
      this.#logger.info('job stopped');
    })();
    return this.#stopping;
  }
}
