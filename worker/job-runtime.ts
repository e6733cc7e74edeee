// Everything one job runs on this worker: its bundle, its RocksDB, the keyed tasks and query
// responder for the key groups it owns, and the source splits it reads.
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
import type { DeployTasks, JobCounters, TaskFailure } from '../core/control.ts';
import type { JobPlan } from '../sdk/index.ts';
import { StateBackend } from './state-backend.ts';
import { StageCounters } from './stage-counters.ts';
import { DeadLetters } from './dead-letters.ts';
import { createStageOutput, type StageOutput } from './stage-output.ts';
import { SourceTask } from './source-task.ts';
import { KeyedTask } from './keyed-task.ts';
import { QueryResponder } from './query-responder.ts';
import type { CompiledWorkerOptions } from './options.ts';

export interface JobRuntimeContext {
  nc: NatsConnection;
  store: ObjectStore;
  options: CompiledWorkerOptions;
  logger: Logger;
  reportFailure(failure: TaskFailure): void;
}

export type JobRuntimeState = 'DEPLOYED' | 'RUNNING' | 'FAILED' | 'STOPPED';

export class JobRuntime {
  readonly jobId: JobId;
  readonly manifest: JobManifest;
  readonly #ctx: JobRuntimeContext;
  readonly #backend: StateBackend;
  readonly #counters: Map<string, StageCounters>;
  readonly #sources: SourceTask[] = [];
  readonly #keyed: KeyedTask[] = [];
  readonly #outputs: StageOutput[] = [];
  readonly #queries: QueryResponder;
  readonly #logger: Logger;
  readonly #flushTimer: NodeJS.Timeout;
  #flushId = 0;
  #flushing: Promise<void> = Promise.resolve();
  #state: JobRuntimeState = 'DEPLOYED';

  private constructor(ctx: JobRuntimeContext, deploy: DeployTasks, manifest: JobManifest, plan: JobPlan, backend: StateBackend) {
    this.#ctx = ctx;
    this.jobId = parseJobId(deploy.jobId);
    this.manifest = manifest;
    this.#backend = backend;
    this.#logger = ctx.logger.child({ jobId: this.jobId, epoch: deploy.epoch });
    this.#counters = new Map(manifest.stages.map((s) => [s.id, new StageCounters(s.id)]));
    const workerId = ctx.options.workerId;
    const deadLetters = new DeadLetters(ctx.nc, this.jobId, workerId);
    const keyGroups = [...keyGroupsOf(deploy.keyGroups)];
    const [sourcePlan, ...keyedPlans] = plan.stages;

    // Keyed stages subscribe at deploy time, before any source starts (the coordinator sends
    // start only when every worker has deployed), so no channel's first batch is missed.
    for (const stage of keyedPlans) {
      const counters = this.#counters.get(stage.spec.id)!;
      let task: KeyedTask | undefined;
      const output = createStageOutput({
        nc: ctx.nc,
        jobId: this.jobId,
        stage,
        chained: stage.operators.slice(1),
        senderTask: `${stage.spec.id}-${workerId}`,
        maxParallelism: manifest.maxParallelism,
        counters,
        deadLetters,
        where: { jobId: this.jobId, stageId: stage.spec.id, keyGroup: () => task?.currentKeyGroup ?? -1 },
        worker: ctx.options,
        onBroken: (e) => this.#fail(e, stage.spec.id, -1),
      });
      this.#outputs.push(output);
      task = new KeyedTask({
        nc: ctx.nc,
        jobId: this.jobId,
        manifest,
        stage,
        keyGroups,
        backend,
        output,
        counters,
        deadLetters,
        logger: this.#logger.child({ stage: stage.spec.id }),
        onFailure: (e, kg) => this.#fail(e, stage.spec.id, kg),
      });
      task.start();
      this.#keyed.push(task);
    }
    this.#queries = new QueryResponder({ nc: ctx.nc, jobId: this.jobId, manifest, keyGroups, backend, logger: this.#logger });
    this.#queries.start();

    for (const partition of deploy.sourceSplits) {
      const counters = this.#counters.get(sourcePlan!.spec.id)!;
      const output = createStageOutput({
        nc: ctx.nc,
        jobId: this.jobId,
        stage: sourcePlan!,
        chained: sourcePlan!.operators,
        // One reader per split in the whole job: the split names the channel's sender.
        senderTask: `split${partition}`,
        maxParallelism: manifest.maxParallelism,
        counters,
        deadLetters,
        where: { jobId: this.jobId, stageId: sourcePlan!.spec.id, keyGroup: () => -1 },
        worker: ctx.options,
        onBroken: (e) => this.#fail(e, sourcePlan!.spec.id, -1),
      });
      this.#outputs.push(output);
      this.#sources.push(
        new SourceTask({
          nc: ctx.nc,
          manifest,
          stageId: sourcePlan!.spec.id,
          partition,
          startSequence: 1,
          output,
          counters,
          deadLetters,
          logger: this.#logger.child({ stage: sourcePlan!.spec.id, split: partition }),
          onFailure: (e) => this.#fail(e, sourcePlan!.spec.id, -1),
        }),
      );
    }
    // Until checkpoints align it, the overlay is written to RocksDB on a timer, in one batch.
    this.#flushTimer = setInterval(() => {
      this.#flushing = this.#flushing.then(() => this.#flushState()).catch((e) => this.#fail(ensureError(e), '', -1));
    }, ctx.options.stateFlushIntervalMs);
  }

  /** Fetches and checks the bundle, opens state and subscribes the keyed tasks. */
  static async deploy(ctx: JobRuntimeContext, deploy: DeployTasks): Promise<JobRuntime> {
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
    // No checkpoints to restore from in this version: a deployed job starts from empty state.
    const statePath = path.join(workerDir, 'jobs', deploy.jobId, 'state');
    await fs.rm(statePath, { recursive: true, force: true });
    const backend = await StateBackend.open({ path: statePath });
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

  async #flushState(): Promise<void> {
    if (this.#backend.activeOverlaySize() === 0) return;
    const id = ++this.#flushId;
    this.#backend.freeze(id);
    await this.#backend.commit(id);
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
    });
    void this.#stopTasks();
  }

  async #stopTasks(): Promise<void> {
    clearInterval(this.#flushTimer);
    await Promise.all(this.#sources.map((s) => s.stop()));
    await Promise.all(this.#keyed.map((k) => k.stop()));
    this.#queries.stop();
    await Promise.all(this.#outputs.map((o) => o.close()));
  }

  async stop(): Promise<void> {
    if (this.#state === 'STOPPED') return;
    const wasFailed = this.#state === 'FAILED';
    this.#state = 'STOPPED';
    if (!wasFailed) await this.#stopTasks();
    await this.#flushing.catch(() => undefined);
    await this.#flushState().catch(() => undefined);
    await this.#backend.close();
    this.#logger.info('job stopped');
  }
}
