// The coordinator process: membership, key-group assignment, job lifecycle and the gRPC
// server (docs/ARCHITECTURE.md, "The pieces").
import * as grpc from '@grpc/grpc-js';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { connectNats } from '../core/nats.ts';
import { codecs } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { openObjectStore } from '../core/object-store.ts';
import { ensureError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { HealthImplementation } from 'grpc-health-check';
import { compileCoordinatorOptions, type CompiledCoordinatorOptions, type CoordinatorOptions } from './options.ts';
import { WorkerRegistry } from './worker-registry.ts';
import { JobManager } from './job-manager.ts';
import { FeatureRouter } from './feature-router.ts';
import { createGrpcServer } from './grpc-server.ts';
import { JobStore } from './job-store.ts';
import { CoordinatorMetrics } from './coordinator-metrics.ts';

export type CoordinatorState = 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED';

export class Coordinator {
  readonly #o: CompiledCoordinatorOptions;
  readonly #nc: NatsConnection;
  readonly #logger: Logger;
  readonly #registry: WorkerRegistry;
  readonly #jobs: JobManager;
  readonly #server: grpc.Server;
  readonly #health: HealthImplementation;
  readonly #subs: Subscription[] = [];
  #state: CoordinatorState = 'STARTING';
  /** The address the gRPC server is bound to (port resolved when 0 was asked for). */
  address = '';

  private constructor(o: CompiledCoordinatorOptions, nc: NatsConnection, jobStore: JobStore) {
    this.#o = o;
    this.#nc = nc;
    this.#logger = o.logger;
    const store = openObjectStore(o.storeUrl, o.storeOptions);
    const metrics = new CoordinatorMetrics(o.telemetry);
    let jobs: JobManager | undefined;
    this.#registry = new WorkerRegistry({
      nc,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      workerTimeoutMs: o.workerTimeoutMs,
      logger: this.#logger,
      onWorkerDead: (w) => jobs?.onWorkerDead(w),
      onWorkerJoined: () => jobs?.onWorkerJoined(),
      onWorkerLeaving: (w) => jobs?.onWorkerLeaving(w.id) ?? 'the coordinator is starting',
      onHeartbeat: () => jobs?.sample(),
    });
    jobs = new JobManager({
      nc,
      store,
      registry: this.#registry,
      controlTimeoutMs: o.controlTimeoutMs,
      checkpointIntervalMs: o.checkpointIntervalMs,
      checkpointTimeoutMs: o.checkpointTimeoutMs,
      retainedCheckpoints: o.retainedCheckpoints,
      maxDeltaChain: o.maxDeltaChain,
      maxMovingKeyGroups: o.maxMovingKeyGroups,
      jobStore,
      // Workers re-register on their next heartbeat; give them a few.
      resumeDelayMs: 3 * o.heartbeatIntervalMs,
      logger: this.#logger,
      metrics,
    });
    this.#jobs = jobs;
    const { server, health } = createGrpcServer({ jobs, features: new FeatureRouter(nc, jobs, metrics), registry: this.#registry, logger: this.#logger });
    this.#server = server;
    this.#health = health;
  }

  static async start(options: CoordinatorOptions): Promise<Coordinator> {
    const o = compileCoordinatorOptions(options);
    const nc = await connectNats({ servers: o.natsServers, name: 'eddy-coordinator' });
    const jobStore = await JobStore.open({ nc, logger: o.logger });
    const c = new Coordinator(o, nc, jobStore);
    await c.#run();
    return c;
  }

  async #run(): Promise<void> {
    this.#registry.start();
    this.#subs.push(
      this.#nc.subscribe(subjects.failure, {
        callback: (_e, msg) => {
          try {
            this.#jobs.onTaskFailure(codecs.failure.decode(msg.data));
          } catch (e) {
            this.#logger.warn({ err: ensureError(e).message }, 'bad failure report ignored');
          }
        },
      }),
    );
    this.#subs.push(
      this.#nc.subscribe(subjects.checkpointRequest, {
        callback: (_e, msg) => {
          try {
            const r = codecs.trigger.decode(msg.data);
            this.#jobs.onCheckpointRequest(r.jobId, Number(r.epoch));
          } catch (e) {
            this.#logger.warn({ err: ensureError(e).message }, 'bad checkpoint request ignored');
          }
        },
      }),
      this.#nc.subscribe(subjects.checkpointAck, {
        callback: (_e, msg) => {
          try {
            this.#jobs.onCheckpointAck(codecs.checkpointAck.decode(msg.data));
          } catch (e) {
            this.#logger.warn({ err: ensureError(e).message }, 'bad checkpoint acknowledgement ignored');
          }
        },
      }),
    );
    await this.#nc.flush();
    const port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(this.#o.grpcAddress, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.address = `${this.#o.grpcAddress.replace(/:\d+$/, '')}:${port}`;
    for (const service of ['', 'eddy.v1.JobService', 'eddy.v1.FeatureService', 'eddy.v1.ClusterService']) this.#health.setStatus(service, 'SERVING');
    const resumed = await this.#jobs.resume();
    this.#transition('RUNNING');
    this.#logger.info({ grpcAddress: this.address, store: this.#o.storeUrl, resumedJobs: resumed }, 'coordinator ready');
  }

  get state(): CoordinatorState {
    return this.#state;
  }

  #transition(to: CoordinatorState): void {
    this.#logger.info({ from: this.#state, to }, 'coordinator state');
    this.#state = to;
  }

  async close(): Promise<void> {
    if (this.#state === 'STOPPING' || this.#state === 'STOPPED') return;
    this.#transition('STOPPING');
    this.#health.setStatus('', 'NOT_SERVING');
    await new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
    this.#registry.stop();
    this.#jobs.stop();
    await this.#jobs.flush();
    for (const s of this.#subs) s.unsubscribe();
    await this.#nc.drain().catch(() => undefined);
    this.#transition('STOPPED');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
