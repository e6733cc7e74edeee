import type { Logger } from '../core/logger.ts';
import { Telemetry } from '../core/telemetry.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import type { OpenObjectStoreOptions } from '../core/object-store.ts';
import { DEFAULT_MAX_DELTA_CHAIN } from './checkpoint-coordinator.ts';
import type { Authorize } from './dashboard/index.ts';
import type { ServerTls } from '../core/tls.ts';
import { checkExposure } from '../core/grpc-auth.ts';
import type { ClientConnectionOptions } from '../core/nats-connect.ts';
import type { TokenEntry } from '../core/tokens.ts';
import { DEFAULT_LEADER_LEASE_MS } from './leader-lease.ts';

export interface CoordinatorOptions {
  /** NATS server URLs, comma-separated. */
  natsServers: string;
  /** host:port the gRPC server listens on. @default "127.0.0.1:7400" */
  grpcAddress?: string;
  /**
   * host:port other coordinators send clients to while this one leads (a standby names the
   * leader's address in its refusals). @default grpcAddress, with the port it was bound to
   */
  advertisedAddress?: string;
  /**
   * The leader lease (coordinator/leader-lease.ts): a leader that has not renewed it this long is
   * replaced by a standby; renewed every third of it. Shorter: faster takeovers, more KV writes,
   * a long GC pause or NATS hiccup deposes the leader. @default 1500
   */
  leaderLeaseMs?: number;
  /**
   * Replicas of what the coordinator creates in JetStream (the job-store KV bucket, dead-letter,
   * sink and missing source streams); 0: 3 on a NATS cluster of three or more servers, else 1.
   * What exists already keeps its replicas. @default 0
   */
  natsReplicas?: number;
  /**
   * Fault injection, for tests only: a submitted job's create in the job store waits this long
   * after its lease check, so that a test can pause the leader at that moment (the worst one for
   * a takeover). `eddy coordinator` reads it from EDDY_TEST_HOLD_JOB_CREATE_MS. @default 0
   */
  holdJobCreateMs?: number;
  /**
   * host:port the dashboard (HTTP: the page, a JSON API, Server-Sent Events) listens on; port 0
   * picks a free one; "" turns it off. @default "127.0.0.1:7480"
   */
  httpAddress?: string;
  /**
   * Decides which HTTP requests the dashboard answers (coordinator/dashboard/http-server.ts).
   * @default dashboardAuthorization: the gRPC API's tokens (reader role) when authentication is
   * on, loopback clients without a token
   */
  authorizeHttp?: Authorize;
  /** TLS of the gRPC server; with clientCa, clients must present certificates. @default none (plaintext) */
  grpcTls?: ServerTls;
  /**
   * Bearer tokens the gRPC server accepts (coordinator/auth.ts). With none and no client CA, every
   * caller is admin: acceptable on loopback only. @default []
   */
  grpcTokens?: TokenEntry[];
  /**
   * Serve a non-loopback address without TLS or without authentication. Anyone who reaches the
   * port can then submit code that runs on every worker. @default false
   */
  insecure?: boolean;
  /** How to authenticate to NATS and with what TLS (core/nats-connect.ts). @default none */
  nats?: ClientConnectionOptions;
  /** Object store for bundles (s3://bucket/prefix, a file:// URL or a directory). */
  storeUrl: string;
  /**
   * How to reach an s3:// store: endpoint, region, path-style, credentials (file:// stores
   * ignore it). cli/ fills endpoint and region from --s3-endpoint and --s3-region.
   * @default {} (AWS's endpoint for us-east-1, credentials from the AWS SDK's default chain)
   */
  storeOptions?: OpenObjectStoreOptions;
  /**
   * A worker silent this long is dead, even when its NATS connection is open (hung, stopped or cut
   * off). One whose process is gone is found sooner: see workerProbeMs. @default 10000
   */
  workerTimeoutMs?: number;
  /**
   * A worker silent this long is probed over NATS; "no responders" (its process is gone) makes it
   * dead at once. Capped at workerTimeoutMs. @default 2000
   */
  workerProbeMs?: number;
  /** How often workers heartbeat. @default 500 */
  heartbeatIntervalMs?: number;
  /** How long to wait for a worker to acknowledge a deploy, start or cancel. @default 10000 */
  controlTimeoutMs?: number;
  /**
   * How long to wait for a worker to acknowledge a deploy: it may start a job's thread (seconds on
   * a busy machine, README "Isolation of jobs"), import the bundle and restore state. @default 30000
   */
  deployTimeoutMs?: number;
  /** How often a checkpoint starts. @default 1000 */
  checkpointIntervalMs?: number;
  /**
   * Skip periodic checkpoints while a job is idle (nothing read, emitted or dead-lettered since its
   * latest checkpoint: coordinator/checkpoint-idle.ts): an idle job sends no barriers and uploads
   * nothing. Moves and savepoints still take theirs. A client that waits for "N more checkpoints"
   * after its input ended waits for ever: CheckpointInfo.idle tells it that everything is in the
   * latest one. False: a checkpoint every interval whatever the job does. @default true
   */
  skipIdleCheckpoints?: boolean;
  /** A checkpoint not completed this long after it started is aborted. @default 10000 */
  checkpointTimeoutMs?: number;
  /** Completed checkpoints kept per job. @default 3 */
  retainedCheckpoints?: number;
  /**
   * Deltas a key group's chain may hold before the key group is re-materialized as a full
   * snapshot (a few key groups per checkpoint). Smaller: faster restores, more bytes uploaded.
   * @default 16
   */
  maxDeltaChain?: number;
  /**
   * Key groups one rebalancing checkpoint moves when workers join or leave; the rest move with
   * the checkpoints after it. Smaller: shorter pauses of fewer key groups, a slower rebalance.
   * @default 32
   */
  maxMovingKeyGroups?: number;
  /**
   * Metrics and traces (core/telemetry.ts), started by the caller, which also closes it.
   * @default Telemetry.disabled(): no-op meter and tracer
   */
  telemetry?: Telemetry;
  logger: Logger;
}

export type CompiledCoordinatorOptions = Required<Omit<CoordinatorOptions, 'grpcTls' | 'authorizeHttp'>> & Pick<CoordinatorOptions, 'grpcTls' | 'authorizeHttp'>;

export const DEFAULT_GRPC_ADDRESS = '127.0.0.1:7400';
export const DEFAULT_HTTP_ADDRESS = '127.0.0.1:7480';

export function compileCoordinatorOptions(o: CoordinatorOptions): CompiledCoordinatorOptions {
  const c: CompiledCoordinatorOptions = {
    natsServers: o.natsServers,
    grpcAddress: o.grpcAddress ?? DEFAULT_GRPC_ADDRESS,
    advertisedAddress: o.advertisedAddress ?? '',
    leaderLeaseMs: o.leaderLeaseMs ?? DEFAULT_LEADER_LEASE_MS,
    natsReplicas: o.natsReplicas ?? 0,
    holdJobCreateMs: o.holdJobCreateMs ?? 0,
    httpAddress: o.httpAddress ?? DEFAULT_HTTP_ADDRESS,
    ...(o.authorizeHttp ? { authorizeHttp: o.authorizeHttp } : {}),
    ...(o.grpcTls ? { grpcTls: o.grpcTls } : {}),
    grpcTokens: o.grpcTokens ?? [],
    insecure: o.insecure ?? false,
    nats: o.nats ?? {},
    storeUrl: o.storeUrl,
    storeOptions: o.storeOptions ?? {},
    workerTimeoutMs: o.workerTimeoutMs ?? 10_000,
    workerProbeMs: Math.min(o.workerProbeMs ?? 2_000, o.workerTimeoutMs ?? 10_000),
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? 500,
    controlTimeoutMs: o.controlTimeoutMs ?? 10_000,
    deployTimeoutMs: o.deployTimeoutMs ?? 30_000,
    checkpointIntervalMs: o.checkpointIntervalMs ?? 1000,
    skipIdleCheckpoints: o.skipIdleCheckpoints ?? true,
    checkpointTimeoutMs: o.checkpointTimeoutMs ?? 10_000,
    retainedCheckpoints: o.retainedCheckpoints ?? 3,
    maxDeltaChain: o.maxDeltaChain ?? DEFAULT_MAX_DELTA_CHAIN,
    maxMovingKeyGroups: o.maxMovingKeyGroups ?? 32,
    telemetry: o.telemetry ?? Telemetry.disabled(o.logger),
    logger: o.logger,
  };
  if (!/^[^:]+:\d+$/.test(c.grpcAddress)) throw new InvalidArgumentError(`grpcAddress ${c.grpcAddress} is not host:port`);
  if (c.httpAddress !== '' && !/^[^:]*:\d+$|^\[[^\]]+\]:\d+$/.test(c.httpAddress)) throw new InvalidArgumentError(`httpAddress ${c.httpAddress} is not host:port`);
  checkExposure('gRPC', c.grpcAddress, { tls: c.grpcTls, tokens: c.grpcTokens.length, insecure: c.insecure });
  if (!(c.checkpointIntervalMs >= 10)) throw new InvalidArgumentError(`checkpointIntervalMs ${c.checkpointIntervalMs} must be at least 10`);
  if (!Number.isSafeInteger(c.maxDeltaChain) || c.maxDeltaChain < 1) throw new InvalidArgumentError(`maxDeltaChain ${c.maxDeltaChain} must be an integer of at least 1`);
  if (!Number.isSafeInteger(c.maxMovingKeyGroups) || c.maxMovingKeyGroups < 1) throw new InvalidArgumentError(`maxMovingKeyGroups ${c.maxMovingKeyGroups} must be an integer of at least 1`);
  if (!Number.isSafeInteger(c.leaderLeaseMs) || c.leaderLeaseMs < 300) throw new InvalidArgumentError(`leaderLeaseMs ${c.leaderLeaseMs} must be an integer of at least 300`);
  if (!Number.isSafeInteger(c.natsReplicas) || c.natsReplicas < 0 || c.natsReplicas > 5) throw new InvalidArgumentError(`natsReplicas ${c.natsReplicas} must be an integer from 0 (by the cluster's size) to 5`);
  if (!Number.isSafeInteger(c.holdJobCreateMs) || c.holdJobCreateMs < 0) throw new InvalidArgumentError(`holdJobCreateMs ${c.holdJobCreateMs} must be a non-negative integer`);
  if (!(c.retainedCheckpoints >= 1)) throw new InvalidArgumentError(`retainedCheckpoints ${c.retainedCheckpoints} must be at least 1`);
  if (c.heartbeatIntervalMs <= 0 || c.workerTimeoutMs < 2 * c.heartbeatIntervalMs) {
    throw new InvalidArgumentError(`workerTimeoutMs ${c.workerTimeoutMs} must be at least twice heartbeatIntervalMs ${c.heartbeatIntervalMs}`);
  }
  return c;
}
