// A job isolated in a worker thread of its own (issue 12; README, "Isolation"). The worker's
// thread keeps its control plane (registration, heartbeats, control requests) and the object
// store's client; the job's thread (worker/job-thread-main.ts) runs the job's JobRuntime with its
// own NATS connection and RocksDB, so records never cross the boundary one by one.
//
// Why a thread and not a process: a thread costs one V8 isolate (~10 MB, ~40 ms to start with the
// bundle import) and shares the process's libuv pool and native RocksDB build; terminate() stops
// a thread even inside `for (;;) {}` (V8's TerminateExecution), resourceLimits caps its heap and
// an out-of-memory ends the thread alone, and `env` gives it an environment of its own. What a
// thread does not separate: the file system (same user, same permissions), the native heap, and
// process-wide APIs (process.exit, signals: user code calling process.exit ends only its thread,
// but child_process and fs are open to it). See the README for what is enforced.
//
// The watchdog: the job's thread stamps a clock in shared memory every TICK_INTERVAL_MS from its
// event loop (worker/call-site.ts). When the stamp is older than the job's maxCallMs, user code
// holds the thread (a loop in a function, a timer callback or the bundle's top level): the thread
// is terminated and the task failed with the job, stage, key group and source position it was
// at; the coordinator then applies the job's restart strategy.
import { MessageChannel, type MessagePort, Worker as Thread } from 'node:worker_threads';
import type { Logger } from '../core/logger.ts';
import type { ObjectStore } from '../core/object-store.ts';
import { NotFoundError, ensureError } from '../core/errors.ts';
import { parseManifest, splitSource, type JobManifest } from '../core/manifest.ts';
import type { CheckpointComplete, DeployTasks, JobCounters, MoveTasks, QueryReply, QueryRequest, TaskFailure } from '../core/control.ts';
import type { ServedQuery } from './hosted-job.ts';
import type { CompiledWorkerOptions } from './options.ts';
import { CALL_SITE_BYTES, CallSite, Phase } from './task/call-site.ts';
import type { FromJobThread, JobCall, JobStatus, JobThreadData, JobThreadOptions, QueryMessage, StoreMethod, ToJobThread } from './job-thread-protocol.ts';
import type { HostedJob } from './hosted-job.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import { InboxRelay, type FromInbox } from './query/query-inbox.ts';
import { decodeOrigin } from '../core/record-origin.ts';
import type { ObservedJob, SplitSample, StageSample, WorkerMetrics } from './worker-metrics.ts';

export interface IsolatedJobContext {
  /** The worker's connection: it holds the job's query subscriptions (worker/query/query-inbox.ts). */
  nc: NatsConnection;
  store: ObjectStore;
  options: CompiledWorkerOptions;
  logger: Logger;
  /** The worker's metrics: the job's thread relays its measurements and samples to them. */
  metrics: WorkerMetrics;
  reportFailure(failure: TaskFailure): void;
}

/** How often the watchdog looks at a job's clock. */
const WATCHDOG_INTERVAL_MS = 250;
/** The longest a bundle's top level may hold the thread while it is imported. */
const MAX_IMPORT_MS = 5_000;
/** How long a job's thread gets to stop on its own before it is terminated. */
const STOP_TIMEOUT_MS = 10_000;

const BOOT = new URL('./job-thread-boot.mjs', import.meta.url);
// Compiled (cli/dist-build.ts), the thread runs the compiled entry beside this module, without tsx.
const ENTRY = new URL(import.meta.url.endsWith('.js') ? './job-thread-main.js' : './job-thread-main.ts', import.meta.url).href;

export class IsolatedJob implements HostedJob, ObservedJob {
  readonly jobId: string;
  readonly #ctx: IsolatedJobContext;
  readonly #thread: Thread;
  /** Where feature queries go: a port of their own, which the thread also reads between batches (job-thread-main.ts). */
  readonly #queryPort: MessagePort;
  /** The job's routed feature queries, subscribed here and handed to the thread on the query port. */
  readonly #inboxRelay: InboxRelay;
  readonly #callSite: CallSite;
  readonly #maxCallMs: number;
  readonly #maxHeapMb: number;
  readonly #logger: Logger;
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  /** Feature queries asked of the thread (the serving endpoint), by id. */
  readonly #queries = new Map<number, (served: ServedQuery) => void>();
  readonly #watchdog: NodeJS.Timeout;
  readonly #exited: Promise<void>;
  readonly #detachMetrics: () => void;
  #manifest: JobManifest;
  #epoch = 0;
  #nextId = 1;
  #status: JobStatus;
  #alive = true;
  #stopping = false;
  /** The thread has started (its first message): from then on the watchdog counts. */
  #ready = false;
  /** Why the thread ended, when it was not asked to. */
  #death: string | undefined;

  private constructor(ctx: IsolatedJobContext, jobId: string, manifest: JobManifest, spawned: Spawned) {
    this.#ctx = ctx;
    this.jobId = jobId;
    this.#manifest = manifest;
    this.#maxCallMs = manifest.limits?.maxCallMs ?? ctx.options.maxCallMs;
    this.#maxHeapMb = spawned.heapMb;
    this.#logger = ctx.logger.child({ jobId });
    this.#status = { state: 'NONE', epoch: 0, keyGroups: [], sourceSplits: 0, moving: false, counters: { jobId, stages: [] } };
    this.#thread = spawned.thread;
    this.#queryPort = spawned.queries;
    this.#inboxRelay = new InboxRelay(ctx.nc, this.#queryPort);
    this.#queryPort.on('message', (m: FromInbox) => this.#inboxRelay.onMessage(m));
    this.#callSite = spawned.callSite;
    this.#ready = spawned.ready;
    spawned.adopt();
    this.#detachMetrics = ctx.metrics.attach(this);
    this.#thread.on('message', (m: FromJobThread) => this.#onMessage(m));
    this.#thread.on('error', (e) => {
      const code = (e as NodeJS.ErrnoException).code;
      this.#death ??= code === 'ERR_WORKER_OUT_OF_MEMORY' ? `reached its heap limit of ${this.#maxHeapMb} MB (limits.maxHeapMb)` : `its thread failed: ${ensureError(e).message}`;
    });
    this.#exited = spawned.exited.then((code) => this.#onExit(code));
    this.#watchdog = setInterval(() => this.#watch(), WATCHDOG_INTERVAL_MS);
    this.#watchdog.unref();
    this.#logger.info({ maxCallMs: this.#maxCallMs, maxHeapMb: this.#maxHeapMb, env: manifest.env ?? [] }, 'job thread assigned');
  }

  /**
   * Starts a spare thread for the next job that declares no heap limit of its own (a thread's
   * heap limit is fixed when it starts; its environment is set by the first deploy): starting a thread (compiling and importing the runtime, connecting to NATS) takes
   * seconds on a busy machine, longer than a deploy may wait. Called when the worker starts and
   * whenever a job takes the spare.
   */
  static prewarm(ctx: IsolatedJobContext): void {
    if (spare !== undefined && spare.alive) return;
    spare = spawn(ctx, ctx.options.maxHeapMb);
  }

  /**
   * Resolves once the spare thread has started (or ended), at most after `timeoutMs`; true when it
   * is ready. The worker waits for it before it registers: a deploy that had to start a thread
   * (seconds on a busy machine, compiling the runtime) could outlast the coordinator's control
   * time-out.
   */
  static async spareReady(timeoutMs: number): Promise<boolean> {
    const s = spare;
    if (s === undefined) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([s.started, timeout]);
    clearTimeout(timer);
    return s.ready && s.alive;
  }

  /** Stops the spare thread, if any (the worker stops). */
  static async closeSpare(): Promise<void> {
    const s = spare;
    spare = undefined;
    if (s?.alive) await s.thread.terminate();
  }

  /** Deploys an epoch of the job: in the previous epoch's thread while it lives, else in a new one. */
  static async deploy(ctx: IsolatedJobContext, deploy: DeployTasks, previous: IsolatedJob | undefined): Promise<IsolatedJob> {
    const manifest = parseManifest(deploy.manifestJson);
    let job = previous;
    // A new version may change limits or environment: those are fixed when a thread starts.
    if (job !== undefined && (!job.#alive || JSON.stringify([job.#manifest.limits, job.#manifest.env]) !== JSON.stringify([manifest.limits, manifest.env]))) {
      await job.stop();
      job = undefined;
    }
    if (job === undefined) {
      const heapMb = manifest.limits?.maxHeapMb ?? ctx.options.maxHeapMb;
      let spawned: Spawned;
      if (spare !== undefined && spare.alive && heapMb === spare.heapMb) {
        spawned = spare;
        spare = undefined;
        IsolatedJob.prewarm(ctx);
      } else spawned = spawn(ctx, heapMb);
      job = new IsolatedJob(ctx, deploy.jobId, manifest, spawned);
    }
    try {
      await job.#call({ method: 'deploy', args: [deploy, declaredEnv(manifest.env ?? [])] });
    } catch (e) {
      // A thread started for this deploy goes with it (ending a thread closes its RocksDB and
      // frees the job's lock); the previous epoch's thread stays for the next deploy to reuse.
      if (job !== previous) await job.stop();
      throw e;
    }
    job.#manifest = manifest;
    job.#epoch = deploy.epoch;
    return job;
  }

  get epoch(): number {
    return this.#epoch;
  }

  get state(): HostedJob['state'] {
    if (!this.#alive) return this.#stopping ? 'STOPPED' : 'FAILED';
    return this.#status.state === 'NONE' ? 'DEPLOYED' : this.#status.state;
  }

  get keyGroups(): readonly number[] {
    return this.#alive ? this.#status.keyGroups : [];
  }

  get sourceSplits(): number {
    return this.#alive ? this.#status.sourceSplits : 0;
  }

  get moving(): boolean {
    return this.#alive && this.#status.moving;
  }

  counters(): JobCounters {
    return this.#status.counters;
  }

  /** The job's RocksDB directory on this worker, as the job's thread reports it ("" before its first deploy). */
  get statePath(): string {
    return this.#status.observed?.statePath ?? '';
  }

  stageSamples(): StageSample[] {
    return this.#alive ? (this.#status.observed?.stages ?? []) : [];
  }

  splitSamples(): SplitSample[] {
    return this.#alive ? (this.#status.observed?.splits ?? []) : [];
  }

  start(): Promise<void> {
    return this.#call({ method: 'start', args: [] });
  }

  trigger(checkpointId: number, rematerialize: readonly number[]): Promise<void> {
    return this.#call({ method: 'trigger', args: [checkpointId, [...rematerialize]] });
  }

  complete(c: CheckpointComplete): Promise<void> {
    return this.#call({ method: 'complete', args: [c] });
  }

  prepareMove(m: MoveTasks): Promise<void> {
    return this.#call({ method: 'prepareMove', args: [m] });
  }

  /** Stops the job's tasks and its thread: asked first, terminated after STOP_TIMEOUT_MS. */
  async stop(): Promise<void> {
    if (this.#stopping) return this.#exited;
    this.#stopping = true;
    if (this.#alive) {
      const asked = this.#call({ method: 'stop', args: [] }).catch((e) => this.#logger.warn({ err: ensureError(e).message }, 'job thread did not stop cleanly'));
      const timer = new Promise<void>((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS).unref());
      await Promise.race([asked, timer]);
      await this.#thread.terminate();
    }
    await this.#exited;
  }

  get maxParallelism(): number {
    return this.#manifest.maxParallelism;
  }

  /**
   * A feature read for the worker's serving endpoint, answered in the job's thread by its query
   * responder: one message each way, no status (control calls carry the whole status); the
   * response comes back as bytes, so only they are copied. The request goes on the thread's query
   * port, which the thread reads between batches too: a job busy with a backlog answers within
   * about a millisecond instead of at its next turn of the event loop.
   */
  serve(request: QueryRequest): Promise<ServedQuery> {
    if (!this.#alive || this.#stopping) return Promise.resolve({ reply: this.#unavailable(`job ${this.jobId}'s thread is stopping or has ended`) });
    const id = this.#nextId++;
    return new Promise<ServedQuery>((resolve) => {
      this.#queries.set(id, resolve);
      this.#queryPort.postMessage({ kind: 'serve', id, request } satisfies QueryMessage);
    });
  }

  #unavailable(why: string): QueryReply {
    return { values: [], error: `UNAVAILABLE:${why}`, checkpointId: 0, workerId: this.#ctx.options.workerId, epoch: this.#epoch };
  }

  #call(call: JobCall): Promise<void> {
    if (!this.#alive) return Promise.reject(new Error(`job ${this.jobId}'s thread has ended${this.#death ? `: it ${this.#death}` : ''}`));
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#thread.postMessage({ kind: 'call', id, ...call } as ToJobThread);
    });
  }

  #onMessage(m: FromJobThread): void {
    this.#ready = true;
    if ((m.kind === 'status' || m.kind === 'reply') && m.measurements !== undefined) {
      const unknown = this.#ctx.metrics.replay(m.measurements);
      if (unknown > 0) this.#logger.warn({ unknown }, 'measurements of the job thread name no instrument of the worker');
    }
    switch (m.kind) {
      case 'status':
        this.#status = m.status;
        return;
      case 'reply': {
        this.#status = m.status;
        const p = this.#pending.get(m.id);
        this.#pending.delete(m.id);
        if (m.ok) p?.resolve();
        else p?.reject(new Error(m.error));
        return;
      }
      case 'queryReply': {
        const resolve = this.#queries.get(m.id);
        this.#queries.delete(m.id);
        resolve?.(m.served);
        return;
      }
      case 'store':
        void this.#store(m.method, m.args).then(
          (value) => this.#thread.postMessage({ kind: 'storeReply', id: m.id, ok: true, value } satisfies ToJobThread),
          (e: unknown) => this.#thread.postMessage({ kind: 'storeReply', id: m.id, ok: false, error: ensureError(e).message, notFound: e instanceof NotFoundError } satisfies ToJobThread),
        );
        return;
    }
  }

  #store(method: StoreMethod, args: unknown[]): Promise<unknown> {
    const s = this.#ctx.store;
    const a = args as [string, never, never];
    switch (method) {
      case 'put':
        return s.put(a[0], args[1] as Uint8Array);
      case 'get':
        return s.get(a[0]);
      case 'getRange':
        return s.getRange(a[0], args[1] as number, args[2] as number);
      case 'size':
        return s.size(a[0]);
      case 'exists':
        return s.exists(a[0]);
      case 'delete':
        return s.delete(a[0]);
      case 'list':
        return s.list(a[0]);
    }
  }

  #watch(): void {
    if (!this.#ready || !this.#alive || this.#stopping || this.#death !== undefined) return;
    const site = this.#callSite.read();
    const heldMs = Date.now() - site.tickMs;
    // A bundle's import gets at most MAX_IMPORT_MS: the deploy waits for it, and the coordinator
    // takes a deploy unanswered for its control time-out (10 s) for a lost worker.
    const limitMs = site.phase === Phase.LOADING_BUNDLE ? Math.min(this.#maxCallMs, MAX_IMPORT_MS) : this.#maxCallMs;
    if (heldMs <= limitMs) return;
    this.#death = `held its thread for more than ${limitMs} ms (limits.maxCallMs${site.phase === Phase.LOADING_BUNDLE ? `, at most ${MAX_IMPORT_MS} ms for the bundle's import` : ''})`;
    this.#logger.error({ heldMs, limitMs }, 'job thread held by user code; terminating it');
    void this.#thread.terminate();
  }

  /** Where the job's thread was, in words: stage, key group, source position (also as numbers, for poison records). */
  #where(): { text: string; stageId: string; keyGroup: number; position?: { split: number; sequence: number } } {
    const site = this.#callSite.read();
    if (site.phase === Phase.LOADING_BUNDLE) return { text: 'while importing its bundle', stageId: '', keyGroup: -1 };
    const stageId = this.#manifest.stages[site.stage]?.id ?? '';
    if (site.phase === Phase.IDLE || stageId === '') return { text: 'outside any record', stageId, keyGroup: -1 };
    if (site.split >= 0) {
      let source = `split ${site.split}`;
      try {
        const s = splitSource(this.#manifest, site.split);
        source = `stream ${s.spec.stream} partition ${s.partition}`;
      } catch {
        // A split outside the manifest: keep its number.
      }
      return { text: `in stage ${stageId} at the record of ${source}, sequence ${site.sequence}`, stageId, keyGroup: -1, position: { split: site.split, sequence: site.sequence } };
    }
    const what = site.phase === Phase.TIMER ? 'a timer' : 'a record';
    const origin = site.phase === Phase.RECORD ? decodeOrigin(site.origin) : undefined;
    const from = origin === undefined ? '' : ` from split ${origin.split}, sequence ${origin.sequence}`;
    return { text: `in stage ${stageId}, key group ${site.keyGroup}, processing ${what}${from}`, stageId, keyGroup: site.keyGroup, ...(origin && { position: origin }) };
  }

  #onExit(code: number): void {
    this.#alive = false;
    clearInterval(this.#watchdog);
    this.#detachMetrics();
    const planned = this.#stopping && this.#death === undefined;
    const where = this.#where();
    const message = `job ${this.jobId} ${this.#death ?? `thread exited with code ${code}`} ${where.text}; its thread on worker ${this.#ctx.options.workerId} was stopped`;
    for (const p of this.#pending.values()) p.reject(new Error(message));
    this.#pending.clear();
    for (const resolve of this.#queries.values()) resolve({ reply: this.#unavailable(message) });
    this.#queries.clear();
    this.#inboxRelay.close();
    this.#queryPort.close();
    if (planned) {
      this.#logger.info({ code }, 'job thread stopped');
      return;
    }
    this.#logger.error({ code, where: where.text }, 'job thread ended');
    this.#ctx.reportFailure({
      jobId: this.jobId,
      workerId: this.#ctx.options.workerId,
      stageId: where.stageId,
      keyGroup: where.keyGroup,
      message,
      stack: '',
      atUnixMs: Date.now(),
      userCode: true,
      epoch: this.#epoch,
      ...(where.position && { hasSourcePosition: true, split: where.position.split, sequence: where.position.sequence }),
    });
  }
}

/** A started thread not yet running a job, or just given one. */
interface Spawned {
  thread: Thread;
  /** The worker's end of the thread's query channel. */
  queries: MessagePort;
  callSite: CallSite;
  heapMb: number;
  /** It has sent its first message: its start is over. */
  ready: boolean;
  /** Resolves with its first message, or when it ends before one. */
  started: Promise<void>;
  alive: boolean;
  exited: Promise<number>;
  /** A job takes it: the spare's own listeners go. */
  adopt(): void;
}

/** The worker's spare thread (IsolatedJob.prewarm). */
let spare: Spawned | undefined;

/** The job's environment: the variables it declares, with the worker's values. */
function declaredEnv(names: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) if (process.env[name] !== undefined) env[name] = process.env[name]!;
  return env;
}

function spawn(ctx: IsolatedJobContext, heapMb: number): Spawned {
  const o = ctx.options;
  const options: JobThreadOptions = {
    natsServers: o.natsServers,
    nats: o.nats,
    workerId: o.workerId,
    dataDir: o.dataDir,
    storeUrl: o.storeUrl,
    maxBatchRecords: o.maxBatchRecords,
    maxBatchBytes: o.maxBatchBytes,
    batchLingerMs: o.batchLingerMs,
    watermarkLingerMs: o.watermarkLingerMs,
    channelWindow: o.channelWindow,
    sourcePullBytes: o.sourcePullBytes,
    ackTimeoutMs: o.ackTimeoutMs,
    maxOverlayBytes: o.maxOverlayBytes,
    liveEntries: o.liveEntries,
    readCacheEntries: o.readCacheEntries,
    rocksdbWriteBufferMb: o.rocksdbWriteBufferMb,
    handOverTimeoutMs: o.handOverTimeoutMs,
    logLevel: o.logger.level,
    metrics: o.telemetry.metricsEnabled,
  };
  const shared = new SharedArrayBuffer(CALL_SITE_BYTES);
  const callSite = new CallSite(shared);
  callSite.tick(Date.now());
  const queries = new MessageChannel();
  const thread = new Thread(BOOT, {
    workerData: { options, callSite: shared, entry: ENTRY, queries: queries.port2 } satisfies JobThreadData,
    transferList: [queries.port2],
    // Nothing of the worker's environment: the first deploy adds what the job declares.
    env: {},
    resourceLimits: { maxOldGenerationSizeMb: heapMb },
    name: 'eddy-job',
  });
  let onStarted!: () => void;
  const spawned: Spawned = {
    thread,
    queries: queries.port1,
    callSite,
    heapMb,
    ready: false,
    started: new Promise<void>((resolve) => (onStarted = resolve)),
    alive: true,
    exited: new Promise((resolve) => thread.once('exit', (code) => {
      spawned.alive = false;
      onStarted();
      resolve(code);
    })),
    adopt: () => {
      thread.off('message', onFirst);
      thread.off('error', onSpareError);
      thread.ref();
    },
  };
  const onFirst = (): void => {
    spawned.ready = true;
    onStarted();
  };
  const onSpareError = (e: Error): void => ctx.logger.warn({ err: e.message }, 'spare job thread failed');
  thread.on('message', onFirst);
  thread.on('error', onSpareError);
  // A spare waiting for a job must not keep the process alive.
  thread.unref();
  return spawned;
}
