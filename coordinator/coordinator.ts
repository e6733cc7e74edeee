// The coordinator process: membership, key-group assignment, job lifecycle and the gRPC
// server (docs/ARCHITECTURE.md, "The pieces").
import * as grpc from '@grpc/grpc-js';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { connectNats } from '../core/nats.ts';
import { checkSender, codecs, logRejected } from '../core/control.ts';
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
import { Authenticator } from '../core/tokens.ts';
import { inboxPrefixes } from '../core/nats-connect.ts';
import { JobStore } from './job-store.ts';
import { CoordinatorMetrics } from './coordinator-metrics.ts';
import { DashboardServer, JobHistory, dashboardAuthorization } from './dashboard/index.ts';
import { lastFailureOf } from './dashboard/views.ts';

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
  readonly #dashboard: DashboardServer | undefined;
  /** Who may call: the gRPC server's check, reusable by other front doors (an HTTP dashboard). */
  readonly authenticator: Authenticator;
  #state: CoordinatorState = 'STARTING';
  /** The address the gRPC server is bound to (port resolved when 0 was asked for). */
  address = '';
  /** host:port of the dashboard once listening ('' when it is off). */
  httpAddress = '';

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
    this.authenticator = new Authenticator({ tokens: o.grpcTokens, certificates: o.grpcTls?.clientCa !== undefined });
    const features = new FeatureRouter(nc, jobs, metrics, this.#logger.child({ component: 'feature-router' }));
    const { server, health } = createGrpcServer({ jobs, features, registry: this.#registry, logger: this.#logger, authenticator: this.authenticator });
    metrics.observeJobTotals(o.telemetry.meter, () => jobs.list().map((j) => ({ jobId: j.id, stages: jobs.stageStatus(j) })));
    this.#server = server;
    this.#health = health;
    if (o.httpAddress !== '') {
      const sources = { jobs, registry: this.#registry, history: new JobHistory(), checkpointIntervalMs: o.checkpointIntervalMs };
      metrics.onEvent = (e) => sources.history.record(e, e.type === 'recovery-started' ? lastFailureOf(sources, e.jobId) : undefined);
      this.#dashboard = new DashboardServer({ address: o.httpAddress, sources, features, authorize: o.authorizeHttp ?? dashboardAuthorization(this.authenticator), logger: this.#logger.child({ component: 'dashboard' }) });
    }
  }

  static async start(options: CoordinatorOptions): Promise<Coordinator> {
    const o = compileCoordinatorOptions(options);
    const nc = await connectNats({ servers: o.natsServers, name: 'eddy-coordinator', auth: o.nats, inboxPrefix: inboxPrefixes.coordinator });
    const jobStore = await JobStore.open({ nc, logger: o.logger });
    const c = new Coordinator(o, nc, jobStore);
    await c.#run();
    return c;
  }

  async #run(): Promise<void> {
    this.#registry.start();
    this.#subs.push(
      this.#nc.subscribe(subjects.fromAnyWorker('failure'), {
        callback: (_e, msg) => {
          try {
            const failure = codecs.failure.decode(msg.data);
            checkSender(msg.subject, failure.workerId);
            this.#jobs.onTaskFailure(failure);
          } catch (e) {
            logRejected(this.#logger, e, 'failure report');
          }
        },
      }),
    );
    this.#subs.push(
      this.#nc.subscribe(subjects.fromAnyWorker('checkpoint-request'), {
        callback: (_e, msg) => {
          try {
            const r = codecs.trigger.decode(msg.data);
            this.#jobs.onCheckpointRequest(r.jobId, Number(r.epoch), subjects.senderOf(msg.subject) ?? '');
          } catch (e) {
            logRejected(this.#logger, e, 'checkpoint request');
          }
        },
      }),
      this.#nc.subscribe(subjects.fromAnyWorker('checkpoint-ack'), {
        callback: (_e, msg) => {
          try {
            const ack = codecs.checkpointAck.decode(msg.data);
            checkSender(msg.subject, ack.workerId);
            this.#jobs.onCheckpointAck(ack);
          } catch (e) {
            logRejected(this.#logger, e, 'checkpoint acknowledgement');
          }
        },
      }),
    );
    await this.#nc.flush();
    const port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(this.#o.grpcAddress, this.#serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.address = `${this.#o.grpcAddress.replace(/:\d+$/, '')}:${port}`;
    if (this.#dashboard) {
      await this.#dashboard.start();
      this.httpAddress = this.#dashboard.address;
    }
    for (const service of ['', 'eddy.v1.JobService', 'eddy.v1.FeatureService', 'eddy.v1.ClusterService', 'eddy.v2.FeatureService']) this.#health.setStatus(service, 'SERVING');
    const resumed = await this.#jobs.resume();
    this.#transition('RUNNING');
    this.#logger.info({ grpcAddress: this.address, ...(this.httpAddress && { dashboard: `http://${this.httpAddress}/` }), store: this.#o.storeUrl, resumedJobs: resumed }, 'coordinator ready');
  }

  #serverCredentials(): grpc.ServerCredentials {
    const tls = this.#o.grpcTls;
    const security = { tls: tls !== undefined, mutualTls: tls?.clientCa !== undefined, tokens: this.#o.grpcTokens.length };
    if (!this.authenticator.enabled || !tls) {
      // compileCoordinatorOptions refused a non-loopback address here unless told --insecure.
      const level = this.#o.insecure ? 'warn' : 'info';
      this.#logger[level]({ grpcAddress: this.#o.grpcAddress, ...security, insecure: this.#o.insecure }, this.#o.insecure ? 'gRPC served INSECURELY (--insecure): whoever reaches the port may be able to submit jobs' : 'gRPC without TLS or authentication (loopback only)');
    } else {
      this.#logger.info({ grpcAddress: this.#o.grpcAddress, ...security }, 'gRPC with TLS and authentication');
    }
    if (!tls) return grpc.ServerCredentials.createInsecure();
    return grpc.ServerCredentials.createSsl(tls.clientCa ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], tls.clientCa !== undefined);
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
    await this.#dashboard?.close();
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
