// The coordinator process: membership, key-group assignment, job lifecycle and the gRPC
// server (docs/ARCHITECTURE.md, "The pieces"). Several may run: the one holding the leader lease
// (leader-lease.ts) runs the jobs, the others stand by, watching workers' heartbeats, and take
// the jobs over from the job store when the lease runs out (docs/ARCHITECTURE.md, "Standby
// coordinators").
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { connectNats, defaultReplicas } from '../core/nats.ts';
import { checkSender, codecs, logRejected } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { openObjectStore } from '../core/object-store.ts';
import { NotLeaderError, ensureError } from '../core/errors.ts';
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
import { lastFailureOf, type DashboardSources } from './dashboard/views.ts';
import type { ClusterView } from './dashboard/api.ts';
import { LeaderLease } from './leader-lease.ts';
import { DirectoryPublisher, JobDirectory, type JobLookup } from './job-directory.ts';

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
  readonly #jobStore: JobStore;
  /** Every job as the leader last published it: how a standby routes feature reads. */
  readonly #directory: JobDirectory;
  readonly #directoryPublisher: DirectoryPublisher;
  #lease: LeaderLease | undefined;
  /** The takeover under way (resuming the jobs), if any. */
  #takingOver: Promise<void> | undefined;
  /** Stops the watch of the job keys (JobStore.watchJobs). */
  #stopJobWatch: (() => void) | undefined;
  readonly #startedAtMs = Date.now();
  /** This process among the coordinators (the lease names its holder by it). */
  readonly id = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
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
    this.#jobStore = jobStore;
    this.#logger = o.logger;
    const store = openObjectStore(o.storeUrl, o.storeOptions);
    const self = this;
    const metrics = new CoordinatorMetrics(o.telemetry);
    let jobs: JobManager | undefined;
    this.#registry = new WorkerRegistry({
      nc,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      workerTimeoutMs: o.workerTimeoutMs,
      workerProbeMs: o.workerProbeMs,
      logger: this.#logger,
      onWorkerDead: (w) => jobs?.onWorkerDead(w),
      onWorkerJoined: () => jobs?.onWorkerJoined(),
      onWorkerLeaving: (w) => jobs?.onWorkerLeaving(w.id) ?? 'the coordinator is starting',
      onHeartbeat: () => jobs?.sample(),
      answers: () => this.#lease?.role === 'LEADER',
    });
    jobs = new JobManager({
      nc,
      store,
      registry: this.#registry,
      controlTimeoutMs: o.controlTimeoutMs,
      deployTimeoutMs: o.deployTimeoutMs,
      checkpointIntervalMs: o.checkpointIntervalMs,
      skipIdleCheckpoints: o.skipIdleCheckpoints,
      checkpointTimeoutMs: o.checkpointTimeoutMs,
      retainedCheckpoints: o.retainedCheckpoints,
      maxDeltaChain: o.maxDeltaChain,
      maxMovingKeyGroups: o.maxMovingKeyGroups,
      natsReplicas: o.natsReplicas,
      holdJobCreateMs: o.holdJobCreateMs,
      jobStore,
      // Workers re-register on their next heartbeat; give them a few.
      resumeDelayMs: 3 * o.heartbeatIntervalMs,
      logger: this.#logger,
      metrics,
      // The lease is made once the gRPC address is known (#run); until then this one does not lead.
      leadership: {
        get term() {
          return self.#lease?.term ?? 0;
        },
        holds: () => this.#lease?.holds() ?? false,
        leaderAddress: () => this.#lease?.leader()?.address ?? '',
        fenced: (reason) => this.#lease?.stepDown(reason),
      },
    });
    this.#jobs = jobs;
    this.authenticator = new Authenticator({ tokens: o.grpcTokens, certificates: o.grpcTls?.clientCa !== undefined });
    this.#directory = new JobDirectory(jobStore.kv, this.#logger.child({ component: 'job-directory' }));
    this.#directoryPublisher = new DirectoryPublisher({
      kv: jobStore.kv,
      jobs: () => jobs.list(),
      movingTo: (jobId) => jobs.rebalancer.inProgress(jobId)?.to,
      term: () => this.#lease?.term ?? 0,
      holds: () => this.#lease?.holds() ?? false,
      logger: this.#logger,
    });
    // Feature reads go to the jobs this coordinator runs; a standby (or a leader still taking
    // over) routes them with the leader's published directory, and sends the client to the
    // leader only for a job the directory does not know (docs/ARCHITECTURE.md, "Queries").
    const directory = this.#directory;
    const lookup: JobLookup = {
      get(jobId) {
        try {
          return jobs.get(jobId);
        } catch (e) {
          if (!(e instanceof NotLeaderError)) throw e;
          const entry = directory.get(jobId);
          if (entry === undefined) throw e;
          return entry;
        }
      },
    };
    const features = new FeatureRouter(nc, lookup, metrics, this.#logger.child({ component: 'feature-router' }));
    const { server, health } = createGrpcServer({ jobs, features, registry: this.#registry, logger: this.#logger, authenticator: this.authenticator });
    metrics.observeJobTotals(o.telemetry.meter, () => jobs.list().map((j) => ({ jobId: j.id, stages: jobs.stageStatus(j) })));
    this.#server = server;
    this.#health = health;
    if (o.httpAddress !== '') {
      const sources: DashboardSources = {
        jobs,
        registry: this.#registry,
        history: new JobHistory(),
        checkpointIntervalMs: o.checkpointIntervalMs,
        directory,
        leading: () => this.#runsJobs(),
        cluster: () => this.#clusterView(),
      };
      metrics.onEvent = (e) => sources.history.record(e, e.type === 'recovery-started' ? lastFailureOf(sources, e.jobId) : undefined);
      this.#dashboard = new DashboardServer({ address: o.httpAddress, sources, features, authorize: o.authorizeHttp ?? dashboardAuthorization(this.authenticator), logger: this.#logger.child({ component: 'dashboard' }) });
    }
  }

  static async start(options: CoordinatorOptions): Promise<Coordinator> {
    const o = compileCoordinatorOptions(options);
    const nc = await connectNats({ servers: o.natsServers, name: 'eddy-coordinator', auth: o.nats, inboxPrefix: inboxPrefixes.coordinator, logger: o.logger });
    // 0: as many as the NATS cluster allows (3 with three or more servers, else 1).
    const replicas = o.natsReplicas === 0 ? defaultReplicas(nc) : o.natsReplicas;
    const jobStore = await JobStore.open({ nc, logger: o.logger, replicas });
    const c = new Coordinator({ ...o, natsReplicas: replicas }, nc, jobStore);
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
    this.#lease = new LeaderLease({
      kv: this.#jobStore.kv,
      coordinatorId: this.id,
      address: this.#o.advertisedAddress || this.address,
      httpAddress: reachableHttpAddress(this.httpAddress, this.#o.advertisedAddress || this.address),
      leaseMs: this.#o.leaderLeaseMs,
      logger: this.#logger,
      onElected: (term) => {
        this.#directoryPublisher.reset();
        return (this.#takingOver = this.#takeOver(term));
      },
      onDeposed: (reason) => {
        this.#jobs.release();
        this.#logger.warn({ reason }, 'coordinator standing by');
      },
    });
    await this.#directory.start();
    this.#directoryPublisher.start();
    // Before the first takeover's claim: a job a deposed leader creates after the claim listed
    // the keys is seen here, and the leader takes it over (JobManager.onJobWritten).
    this.#stopJobWatch = await this.#jobStore.watchJobs((jobId) => this.#jobs.onJobWritten(jobId));
    // The first attempt: with no live leader (a first start) this coordinator leads at once and
    // resumes the jobs before it says it is ready.
    await this.#lease.start();
    await this.#takingOver;
    this.#transition('RUNNING');
    this.#logger.info({ grpcAddress: this.address, ...(this.httpAddress && { dashboard: `http://${this.httpAddress}/` }), store: this.#o.storeUrl, coordinatorId: this.id, role: this.#lease.role, leader: this.#lease.leader()?.address ?? '' }, 'coordinator ready');
  }

  /**
   * This coordinator now leads: every live job is claimed from the job store and redeployed from
   * its latest checkpoint. A standby that has watched heartbeats for a few intervals knows the
   * live workers already and redeploys at once; one just started gives them time to show up.
   */
  async #takeOver(term: number): Promise<void> {
    const started = performance.now();
    const knownForMs = Date.now() - this.#startedAtMs;
    const resumeDelayMs = Math.max(0, 3 * this.#o.heartbeatIntervalMs - knownForMs);
    const resumed = await this.#jobs.resume(resumeDelayMs);
    this.#logger.info({ term, resumedJobs: resumed, resumeDelayMs, takeOverMs: Math.round(performance.now() - started), workers: this.#registry.alive().length }, 'coordinator leading');
  }

  /** Leads and has resumed the jobs (a leader still taking over reads the directory, as a standby does). */
  #runsJobs(): boolean {
    try {
      this.#jobs.requireLeader();
      return true;
    } catch {
      return false;
    }
  }

  /** Who leads, for the dashboard: a standby's page links to the leader's. */
  #clusterView(): ClusterView {
    const leader = this.#lease?.leader();
    return {
      role: this.#runsJobs() ? 'LEADER' : 'STANDBY',
      leader: leader ? { address: leader.address, term: leader.term, dashboardUrl: leader.httpAddress ? `http://${leader.httpAddress}/` : null } : null,
    };
  }

  /** LEADER or STANDBY (leader-lease.ts); CLOSED once stopped. */
  get role(): string {
    return this.#lease?.role ?? 'STANDBY';
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
    this.#directoryPublisher.stop();
    this.#directory.stop();
    this.#stopJobWatch?.();
    this.#jobs.stop();
    this.#jobs.stopWriting();
    await this.#jobs.flush();
    // After the last job write: a standby takes over at once, from the final state.
    await this.#lease?.close();
    for (const s of this.#subs) s.unsubscribe();
    await this.#nc.drain().catch(() => undefined);
    this.#transition('STOPPED');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * The dashboard's address as other coordinators' pages link to it: a wildcard bind (0.0.0.0, ::)
 * is reached at the host this coordinator advertises for gRPC.
 */
function reachableHttpAddress(httpAddress: string, grpcAddress: string): string {
  const m = /^(.*):(\d+)$/.exec(httpAddress);
  if (!m || !['0.0.0.0', '::', '[::]', ''].includes(m[1]!)) return httpAddress;
  return `${grpcAddress.replace(/:\d+$/, '')}:${m[2]}`;
}
