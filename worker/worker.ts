// The worker process: registers with the coordinator, heartbeats with its counters, and runs
// the jobs it is told to deploy, start and cancel over NATS request-reply.
import os from 'node:os';
import path from 'node:path';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { connectNats } from '../core/nats.ts';
import { inboxPrefixes } from '../core/nats-connect.ts';
import { codecs, ForgedMessageError, leaderEpochOf, logRejected, type DeployTasks, type TaskFailure } from '../core/control.ts';
import { SealingKeyPair } from '../core/channel-key.ts';
import { subjects } from '../core/subjects.ts';
import { openObjectStore, type ObjectStore } from '../core/object-store.ts';
import { isSavepointMetadataKey, objectKeys } from '../core/object-keys.ts';
import { FencedError, ensureError, excerpt } from '../core/errors.ts';
import { isValidId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { compileWorkerOptions, type CompiledWorkerOptions, type WorkerOptions } from './options.ts';
import { JobRuntime } from './job-runtime.ts';
import { IsolatedJob, type IsolatedJobContext } from './isolated-job.ts';
import type { HostedJob } from './hosted-job.ts';
import { StateSizeProbe } from './state/index.ts';
import { ProcessUsage } from './process-usage.ts';
import { WorkerMetrics } from './worker-metrics.ts';
import { ServingEndpoint } from './query/index.ts';

/** How long a starting worker waits for its first job thread before it registers anyway. */
const SPARE_READY_TIMEOUT_MS = 60_000;

export type WorkerState = 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED';

export class Worker {
  readonly #o: CompiledWorkerOptions;
  readonly #nc: NatsConnection;
  readonly #store: ObjectStore;
  readonly #logger: Logger;
  readonly #metrics: WorkerMetrics;
  readonly #jobs = new Map<string, HostedJob>();
  readonly #deploying = new Map<string, Promise<void>>();
  /** Opens the channel keys the coordinator seals to this process (core/channel-key.ts); the private key stays here. */
  readonly #sealing = new SealingKeyPair();
  readonly #subs: Subscription[] = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #heartbeatIntervalMs = 500;
  #state: WorkerState = 'STARTING';
  /** The newest leader epoch a command came with (coordinator/leader-lease.ts); older ones are refused. */
  #leaderEpoch = 0;
  readonly #stateSize: StateSizeProbe;
  readonly #processUsage = new ProcessUsage();
  /** Feature reads served directly (--serve), started before the worker registers: registration names its address. */
  #serving: ServingEndpoint | undefined;

  private constructor(o: CompiledWorkerOptions, nc: NatsConnection) {
    this.#o = o;
    this.#nc = nc;
    this.#store = openObjectStore(o.storeUrl, o.storeOptions);
    this.#logger = o.logger.child({ workerId: o.workerId });
    // Where JobRuntime keeps each job's RocksDB: <data>/<worker>/jobs/<job>/state.
    this.#stateSize = new StateSizeProbe(path.join(o.dataDir, o.workerId, 'jobs'));
    this.#metrics = new WorkerMetrics(o.telemetry.meter, o.workerId, { measureState: o.telemetry.metricsEnabled });
  }

  static async start(options: WorkerOptions): Promise<Worker> {
    const o = compileWorkerOptions(options);
    const nc = await connectNats({ servers: o.natsServers, name: `eddy-worker-${o.workerId}`, auth: o.nats, inboxPrefix: inboxPrefixes.worker(o.workerId), logger: o.logger.child({ workerId: o.workerId }) });
    const w = new Worker(o, nc);
    await w.#run();
    return w;
  }

  get state(): WorkerState {
    return this.#state;
  }

  async #run(): Promise<void> {
    const id = this.#o.workerId;
    this.#subs.push(
      this.#nc.subscribe(subjects.deploy(id), { callback: (_e, m) => void this.#reply(m, () => this.#deploy(m)) }),
      this.#nc.subscribe(subjects.start(id), { callback: (_e, m) => void this.#reply(m, () => this.#start(m)) }),
      this.#nc.subscribe(subjects.cancel(id), { callback: (_e, m) => void this.#reply(m, () => this.#cancel(m)) }),
      this.#nc.subscribe(subjects.trigger(id), { callback: (_e, m) => void this.#reply(m, async () => this.#trigger(m)) }),
      this.#nc.subscribe(subjects.complete(id), { callback: (_e, m) => void this.#reply(m, () => this.#complete(m)) }),
      this.#nc.subscribe(subjects.move(id), { callback: (_e, m) => void this.#reply(m, () => this.#prepareMove(m)) }),
      // The coordinator's liveness probe when heartbeats are late, and its admission probe of a
      // registration: the answer says "alive, with this channel key" (coordinator/worker-registry.ts).
      this.#nc.subscribe(subjects.ping(id), { callback: (_e, m) => void m.respond(this.#sealing.publicKey) }),
    );
    await this.#nc.flush();
    if (this.#o.jobIsolation === 'thread') {
      // A job's first deploy here takes this thread: registered before it has started, the
      // worker could be sent a deploy that waits for it past the coordinator's control time-out.
      const started = performance.now();
      IsolatedJob.prewarm(this.#isolatedContext());
      const ready = await IsolatedJob.spareReady(SPARE_READY_TIMEOUT_MS);
      if (ready) this.#logger.info({ ms: Math.round(performance.now() - started) }, 'job thread started ahead');
      else this.#logger.warn({ timeoutMs: SPARE_READY_TIMEOUT_MS }, 'job thread not started in time; registering without it');
    }
    const serve = this.#o.serve;
    if (serve !== undefined) {
      this.#serving = await ServingEndpoint.start({
        address: serve.address,
        ...(serve.advertisedAddress !== undefined && { advertisedAddress: serve.advertisedAddress }),
        ...(serve.tls !== undefined && { tls: serve.tls }),
        tokens: serve.tokens,
        workerId: id,
        job: (jobId) => this.#jobs.get(jobId),
        logger: this.#logger.child({ component: 'serving' }),
      });
    }
    await this.#register();
    this.#stateSize.start();
    this.#heartbeat = setInterval(() => this.#sendHeartbeat(), this.#heartbeatIntervalMs);
    this.#transition('RUNNING');
    this.#logger.info({ pid: process.pid }, 'worker ready');
  }

  /** Registers, retrying until a coordinator answers (it may start after the workers). */
  async #register(): Promise<void> {
    const req = codecs.register.encode({ workerId: this.#o.workerId, pid: process.pid, host: os.hostname(), channelPublicKey: this.#sealing.publicKey, servingAddress: this.#serving?.address ?? '' });
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = codecs.registerReply.decode((await this.#nc.request(subjects.fromWorker(this.#o.workerId, 'register'), req, { timeout: 1000 })).data);
        this.#heartbeatIntervalMs = reply.heartbeatIntervalMs || 500;
        return;
      } catch (e) {
        if (attempt === 1 || attempt % 10 === 0) this.#logger.warn({ attempt, err: ensureError(e).message }, 'coordinator not answering registration; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  #sendHeartbeat(): void {
    const hb = codecs.heartbeat.encode({
      workerId: this.#o.workerId,
      sentAtUnixMs: Date.now(),
      jobs: [...this.#jobs.values()].map((j) => j.counters()),
      runningJobs: [...this.#jobs.values()].filter((j) => j.state === 'RUNNING' || j.state === 'DEPLOYED').map((j) => j.jobId),
      stateBytes: this.#stateSize.bytes,
      ...this.#processUsage.sample(),
      channelPublicKey: this.#sealing.publicKey,
      servingAddress: this.#serving?.address ?? '',
    });
    this.#nc.publish(subjects.fromWorker(this.#o.workerId, 'heartbeat'), hb);
  }

  async #reply(m: Msg, handler: () => Promise<void>): Promise<void> {
    try {
      this.#checkLeaderEpoch(m);
      await handler();
      m.respond(codecs.ack.encode({ ok: true, error: '' }));
    } catch (e) {
      const err = ensureError(e);
      if (err instanceof ForgedMessageError) logRejected(this.#logger, err, 'control request', { subject: m.subject });
      else if (err instanceof FencedError) this.#logger.warn({ subject: m.subject, err: err.message }, 'command of a deposed coordinator refused');
      else this.#logger.error({ err }, 'control request failed');
      m.respond(codecs.ack.encode({ ok: false, error: err.message }));
    }
  }

  /**
   * Every command carries its coordinator's leader epoch: one older than the newest seen comes
   * from a deposed leader (paused or partitioned past its lease) and is refused, whatever it says.
   */
  #checkLeaderEpoch(m: Msg): void {
    const epoch = leaderEpochOf(m);
    if (epoch < this.#leaderEpoch) throw new FencedError(`${m.subject.split('.').pop()} of leader epoch ${epoch} refused: a coordinator of epoch ${this.#leaderEpoch} leads`);
    if (epoch > this.#leaderEpoch) {
      if (this.#leaderEpoch > 0) this.#logger.info({ from: this.#leaderEpoch, to: epoch }, 'new leader epoch');
      this.#leaderEpoch = epoch;
    }
  }

  async #deploy(m: Msg): Promise<void> {
    const d: DeployTasks = codecs.deploy.decode(m.data);
    checkDeploy(d);
    // The channel key of the epoch, sealed to this process's key pair (core/channel-key.ts).
    if (d.sealedChannelKey !== undefined && d.sealedChannelKey.length > 0) {
      try {
        d.channelKey = this.#sealing.open(d.sealedChannelKey, { jobId: d.jobId, epoch: d.epoch, workerId: this.#o.workerId });
      } catch (e) {
        throw new ForgedMessageError(`deploy of job ${d.jobId}: its channel key does not open with this worker's key (${ensureError(e).message})`);
      }
      d.sealedChannelKey = Buffer.alloc(0);
    }
    // Deploys of one job are serialized: a recovery may follow another before it finished.
    const previousDeploy = this.#deploying.get(d.jobId) ?? Promise.resolve();
    const run = previousDeploy.catch(() => undefined).then(async () => {
      const previous = this.#jobs.get(d.jobId);
      if (previous && d.epoch <= previous.epoch) throw new Error(`stale deploy of job ${d.jobId}: epoch ${d.epoch}, running ${previous.epoch}`);
      this.#jobs.delete(d.jobId);
      try {
        this.#jobs.set(d.jobId, await this.#deployHosted(d, previous));
      } catch (e) {
        // The previous epoch's runtime stays for the next deploy to take over: its RocksDB is open
        // (a redeploy takes the backend over; a failed one leaves it open), and dropped, its thread
        // kept the job's RocksDB lock, so that every later deploy of the job on this worker failed
        // ("lock hold by current process") and the job never recovered.
        if (previous && !this.#jobs.has(d.jobId)) this.#jobs.set(d.jobId, previous);
        throw e;
      }
    });
    this.#deploying.set(d.jobId, run);
    await run;
  }

  async #deployHosted(d: DeployTasks, previous: HostedJob | undefined): Promise<HostedJob> {
    if (this.#o.jobIsolation === 'thread') return IsolatedJob.deploy(this.#isolatedContext(), d, previous as IsolatedJob | undefined);
    return JobRuntime.deploy(
      {
        nc: this.#nc,
        store: this.#store,
        options: this.#o,
        logger: this.#logger,
        metrics: this.#metrics,
        reportFailure: (f) => this.#reportFailure(f),
        sendCheckpointAck: (ack) => this.#nc.publish(subjects.fromWorker(this.#o.workerId, 'checkpoint-ack'), codecs.checkpointAck.encode(ack)),
        requestCheckpoint: (jobId, epoch) => this.#nc.publish(subjects.fromWorker(this.#o.workerId, 'checkpoint-request'), codecs.trigger.encode({ jobId, epoch, checkpointId: 0, rematerializeKeyGroups: [] })),
      },
      d,
      previous as JobRuntime | undefined,
    );
  }

  #isolatedContext(): IsolatedJobContext {
    return { nc: this.#nc, store: this.#store, options: this.#o, logger: this.#logger, metrics: this.#metrics, reportFailure: (f: TaskFailure) => this.#reportFailure(f) };
  }

  #trigger(m: Msg): void | Promise<void> {
    const t = codecs.trigger.decode(m.data);
    const job = this.#jobs.get(t.jobId);
    if (!job || job.epoch !== t.epoch) throw new Error(`job ${t.jobId} epoch ${t.epoch} is not running on worker ${this.#o.workerId}`);
    return job.trigger(t.checkpointId, t.rematerializeKeyGroups);
  }

  async #complete(m: Msg): Promise<void> {
    const c = codecs.complete.decode(m.data);
    const job = this.#jobs.get(c.jobId);
    if (job && job.epoch === c.epoch) await job.complete(c);
  }

  async #prepareMove(m: Msg): Promise<void> {
    const move = codecs.move.decode(m.data);
    const job = this.#jobs.get(move.jobId);
    if (!job || job.epoch !== move.epoch) throw new Error(`job ${move.jobId} epoch ${move.epoch} is not running on worker ${this.#o.workerId}`);
    await job.prepareMove(move);
  }

  /** Work this worker still holds: key groups or source splits of any job. */
  get #holdsWork(): boolean {
    for (const job of this.#jobs.values()) if (job.state === 'RUNNING' && (job.keyGroups.length > 0 || job.sourceSplits > 0 || job.moving)) return true;
    return false;
  }

  /**
   * SIGTERM (docs/ARCHITECTURE.md, "Failure and scaling"): ask the coordinator to hand this worker's
   * key groups and splits to the others at a checkpoint boundary, keep running until they are
   * gone (finishing any checkpoint in flight), then stop. Without a coordinator, or without
   * another worker to take over, the worker just stops and the job recovers from its last
   * checkpoint when it can.
   */
  async #handOver(): Promise<void> {
    if (!this.#holdsWork) return;
    const started = Date.now();
    // Asked again every second while waiting: the coordinator may have restarted, or every
    // other worker may be leaving too (a whole cluster stopping), and then there is no one to wait for.
    let askedAt = 0;
    while (this.#holdsWork) {
      if (Date.now() - started > this.#o.handOverTimeoutMs) {
        this.#logger.warn({ timeoutMs: this.#o.handOverTimeoutMs }, 'hand-over timed out; stopping');
        return;
      }
      if (Date.now() - askedAt >= 1000) {
        askedAt = Date.now();
        try {
          const reply = codecs.ack.decode((await this.#nc.request(subjects.fromWorker(this.#o.workerId, 'leave'), codecs.leave.encode({ workerId: this.#o.workerId }), { timeout: 5000 })).data);
          if (!reply.ok) {
            this.#logger.warn({ reason: reply.error }, 'hand-over refused; stopping without it');
            return;
          }
        } catch (e) {
          this.#logger.warn({ err: ensureError(e).message }, 'no coordinator to hand over to; stopping without it');
          return;
        }
        if (started === askedAt) this.#logger.info('handing work over');
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    this.#logger.info({ ms: Date.now() - started }, 'work handed over');
  }

  async #start(m: Msg): Promise<void> {
    const { jobId } = codecs.start.decode(m.data);
    const job = this.#jobs.get(jobId);
    if (!job) throw new Error(`job ${jobId} is not deployed on worker ${this.#o.workerId}`);
    await job.start();
  }

  async #cancel(m: Msg): Promise<void> {
    const { jobId } = codecs.cancel.decode(m.data);
    const job = this.#jobs.get(jobId);
    if (!job) return;
    this.#jobs.delete(jobId);
    await job.stop();
    this.#logger.info({ jobId }, 'job cancelled');
  }

  #reportFailure(f: TaskFailure): void {
    this.#nc.publish(subjects.fromWorker(this.#o.workerId, 'failure'), codecs.failure.encode(f));
  }

  #transition(to: WorkerState): void {
    this.#logger.info({ from: this.#state, to }, 'worker state');
    this.#state = to;
  }

  async close(): Promise<void> {
    if (this.#state === 'STOPPING' || this.#state === 'STOPPED') return;
    this.#transition('STOPPING');
    await this.#handOver().catch((e) => this.#logger.error({ err: ensureError(e) }, 'hand-over failed'));
    clearInterval(this.#heartbeat);
    this.#stateSize.stop();
    for (const s of this.#subs) s.unsubscribe();
    // Its key groups are handed over: clients asking here are told to fetch the map again.
    await this.#serving?.close();
    for (const job of this.#jobs.values()) await job.stop().catch((e) => this.#logger.error({ err: ensureError(e) }, 'job stop failed'));
    this.#jobs.clear();
    await IsolatedJob.closeSpare();
    this.#nc.publish(subjects.fromWorker(this.#o.workerId, 'deregister'), codecs.leave.encode({ workerId: this.#o.workerId }));
    this.#metrics.close();
    await this.#nc.drain().catch(() => undefined);
    this.#transition('STOPPED');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * What a deploy names becomes paths (the job's state directory, removed and recreated) and object
 * keys (the bundle): each is checked before it is used, whoever sent it.
 */
function checkDeploy(d: DeployTasks): void {
  if (!isValidId(d.jobId)) throw new ForgedMessageError(`deploy of an invalid job id ${excerpt(d.jobId)}`);
  if (!/^[0-9a-f]{64}$/.test(d.bundleSha256)) throw new ForgedMessageError(`deploy of job ${d.jobId}: bundle digest ${excerpt(d.bundleSha256)} is not a SHA-256`);
  if (d.bundleKey !== objectKeys.bundle(d.jobId, d.bundleSha256)) throw new ForgedMessageError(`deploy of job ${d.jobId}: bundle key ${excerpt(d.bundleKey)} is not the job's`);
  if (d.restore && !d.restore.metadataKey.startsWith(objectKeys.job(d.jobId)) && !isSavepointMetadataKey(d.restore.metadataKey)) {
    throw new ForgedMessageError(`deploy of job ${d.jobId}: restore from ${excerpt(d.restore.metadataKey)}, outside the job's checkpoints and savepoints`);
  }
  if (d.restore && d.restore.metadataKey.split('/').some((s) => s === '..' || s === '.' || s === '')) throw new ForgedMessageError(`deploy of job ${d.jobId}: restore key ${excerpt(d.restore.metadataKey)} is not a plain key`);
}
