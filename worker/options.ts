import type { Logger } from '../core/logger.ts';
import { Telemetry } from '../core/telemetry.ts';
import type { WorkerId } from '../core/ids.ts';
import type { OpenObjectStoreOptions } from '../core/object-store.ts';
import type { ClientConnectionOptions } from '../core/nats-connect.ts';
import type { ServerTls } from '../core/tls.ts';
import type { TokenEntry } from '../core/tokens.ts';
import { checkExposure } from '../core/grpc-auth.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import { DEFAULT_LIVE_ENTRIES, DEFAULT_READ_CACHE_ENTRIES, DEFAULT_WRITE_BUFFER_MB } from './state/state-backend-options.ts';

/**
 * A worker's feature-serving endpoint (worker/query/serving-endpoint.ts): GetFeatures answered by
 * the owner of the ids' key groups, for clients that keep a job's serving map. The same security
 * as the coordinator's gRPC (README, "Security").
 */
export interface ServingOptions {
  /** host:port to listen on; port 0 takes a free port. */
  address: string;
  /** The address clients are told (GetServingMap). @default the bound address (the host name for 0.0.0.0 or ::) */
  advertisedAddress?: string;
  /** TLS identity, and the CA of client certificates for mutual TLS. @default none (plaintext: loopback only unless insecure) */
  tls?: ServerTls;
  /** Bearer tokens accepted (reader or admin role). With none and no client CA every caller may read. @default [] */
  tokens?: TokenEntry[];
  /** Serve a non-loopback address without TLS or without authentication. @default false */
  insecure?: boolean;
}

export interface WorkerOptions {
  /** NATS server URLs, comma-separated. */
  natsServers: string;
  /** How to authenticate to NATS and with what TLS (core/nats-connect.ts). @default none */
  nats?: ClientConnectionOptions;
  workerId: WorkerId;
  /** Local directory for RocksDB state and the bundle cache. */
  dataDir: string;
  /** Object store the bundles are fetched from (s3://bucket/prefix, a file:// URL or a directory). */
  storeUrl: string;
  /**
   * How to reach an s3:// store: endpoint, region, path-style, credentials (file:// stores
   * ignore it). cli/ fills endpoint and region from --s3-endpoint and --s3-region.
   * @default {} (AWS's endpoint for us-east-1, credentials from the AWS SDK's default chain)
   */
  storeOptions?: OpenObjectStoreOptions;
  /** Records per channel batch before it is sent. @default 512 */
  maxBatchRecords?: number;
  /** Bytes per channel batch before it is sent (approximate). @default 65536 */
  maxBatchBytes?: number;
  /** How long a non-full batch may wait for more records. @default 2 */
  batchLingerMs?: number;
  /**
   * How long a watermark may wait for a data batch of its channel to ride on before it is sent as
   * a message of its own (worker/channel/channel-sender.ts, "Watermarks"); it delays event time
   * downstream by up to this much on channels without records. 0: every watermark goes alone.
   * @default 200
   */
  watermarkLingerMs?: number;
  /** Unacknowledged batches per channel before the sender waits (backpressure). @default 16 */
  channelWindow?: number;
  /**
   * Bytes that a job's JetStream source splits on this worker may have asked the server for and
   * not yet read, all together (worker/task/source-task.ts, "Pull size"). nats-server cuts off a
   * client that falls this far behind on its max_pending (64 MB by default): keep it well below.
   * @default 16777216
   */
  sourcePullBytes?: number;
  /** A batch unacknowledged this long breaks its channel (the receiver is gone or stuck, or lost it); it is sent again every third of this. @default 30000 */
  ackTimeoutMs?: number;
  /**
   * Bytes of changes held in memory since the last barrier. Past it the worker asks for an early
   * checkpoint (the coordinator starts the next one at once). @default 268435456
   */
  maxOverlayBytes?: number;
  /**
   * Decoded state values each job keeps in memory on this worker (the live cache: the working set;
   * changed values stay until the next checkpoint freezes them, whatever this bound).
   * @default 500000
   */
  liveEntries?: number;
  /** Committed values, as stored, each job keeps in its read cache on this worker (0: none). @default 100000 */
  readCacheEntries?: number;
  /** Each job's RocksDB memtable size on this worker, in MB (RocksDB keeps up to two). @default 64 */
  rocksdbWriteBufferMb?: number;
  /**
   * On SIGTERM, how long the worker waits for the coordinator to move its key groups and splits
   * to other workers before it stops anyway (the job then recovers from its last checkpoint).
   * @default 60000
   */
  handOverTimeoutMs?: number;
  /**
   * Where each job's code runs: 'thread', a worker thread per job (its own event loop, heap limit
   * and environment; a watchdog stops it when user code holds it; worker/isolated-job.ts), or
   * 'none', in the worker's own thread next to its control plane and the other jobs (no
   * watchdog, no heap limit of its own, the worker's whole environment).
   * @default "thread"
   */
  jobIsolation?: 'thread' | 'none';
  /** A job's maxCallMs when it sets none (isolated jobs only). @default 30000 */
  maxCallMs?: number;
  /** A job's maxHeapMb when it sets none (isolated jobs only). @default 1024 */
  maxHeapMb?: number;
  /**
   * Metrics and traces (core/telemetry.ts), started by the caller, which also closes it.
   * @default Telemetry.disabled(): no-op meter and tracer
   */
  telemetry?: Telemetry;
  /** Serve feature reads directly (ServingOptions). @default none: reads go through a coordinator */
  serve?: ServingOptions;
  logger: Logger;
}

export type CompiledWorkerOptions = Required<Omit<WorkerOptions, 'serve'>> & { serve?: ServingOptions & { tokens: TokenEntry[]; insecure: boolean } };

export function compileWorkerOptions(o: WorkerOptions): CompiledWorkerOptions {
  return {
    natsServers: o.natsServers,
    nats: o.nats ?? {},
    workerId: o.workerId,
    dataDir: o.dataDir,
    storeUrl: o.storeUrl,
    storeOptions: o.storeOptions ?? {},
    maxBatchRecords: o.maxBatchRecords ?? 512,
    maxBatchBytes: o.maxBatchBytes ?? 65_536,
    batchLingerMs: o.batchLingerMs ?? 2,
    watermarkLingerMs: o.watermarkLingerMs ?? 200,
    channelWindow: o.channelWindow ?? 16,
    sourcePullBytes: o.sourcePullBytes ?? 16 * 1024 * 1024,
    ackTimeoutMs: o.ackTimeoutMs ?? 30_000,
    maxOverlayBytes: o.maxOverlayBytes ?? 256 * 1024 * 1024,
    liveEntries: o.liveEntries ?? DEFAULT_LIVE_ENTRIES,
    readCacheEntries: o.readCacheEntries ?? DEFAULT_READ_CACHE_ENTRIES,
    rocksdbWriteBufferMb: o.rocksdbWriteBufferMb ?? DEFAULT_WRITE_BUFFER_MB,
    handOverTimeoutMs: o.handOverTimeoutMs ?? 60_000,
    jobIsolation: o.jobIsolation ?? 'thread',
    maxCallMs: o.maxCallMs ?? 30_000,
    maxHeapMb: o.maxHeapMb ?? 1024,
    telemetry: o.telemetry ?? Telemetry.disabled(o.logger),
    logger: o.logger,
    ...(o.serve !== undefined && { serve: compileServing(o.serve) }),
  };
}

function compileServing(o: ServingOptions): NonNullable<CompiledWorkerOptions['serve']> {
  if (!/^[^:]+:\d+$|^\[[^\]]+\]:\d+$/.test(o.address)) throw new InvalidArgumentError(`serve address ${o.address} is not host:port`);
  const c = { ...o, tokens: o.tokens ?? [], insecure: o.insecure ?? false };
  checkExposure('feature reads', c.address, { tls: c.tls, tokens: c.tokens.length, insecure: c.insecure });
  return c;
}
