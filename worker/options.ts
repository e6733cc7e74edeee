import type { Logger } from '../core/logger.ts';
import type { WorkerId } from '../core/ids.ts';

export interface WorkerOptions {
  /** NATS server URLs, comma-separated. */
  natsServers: string;
  workerId: WorkerId;
  /** Local directory for RocksDB state and the bundle cache. */
  dataDir: string;
  /** Object store the bundles are fetched from (file:// URL or a directory). */
  storeUrl: string;
  /** Records per channel batch before it is sent. @default 512 */
  maxBatchRecords?: number;
  /** Bytes per channel batch before it is sent (approximate). @default 65536 */
  maxBatchBytes?: number;
  /** How long a non-full batch may wait for more records. @default 2 */
  batchLingerMs?: number;
  /** Unacknowledged batches per channel before the sender waits (backpressure). @default 16 */
  channelWindow?: number;
  /** A batch unacknowledged this long breaks its channel (the receiver stalled or lost it). @default 30000 */
  ackTimeoutMs?: number;
  /** How often the state overlay is written to RocksDB until checkpoints take this over. @default 200 */
  stateFlushIntervalMs?: number;
  logger: Logger;
}

export type CompiledWorkerOptions = Required<WorkerOptions>;

export function compileWorkerOptions(o: WorkerOptions): CompiledWorkerOptions {
  return {
    natsServers: o.natsServers,
    workerId: o.workerId,
    dataDir: o.dataDir,
    storeUrl: o.storeUrl,
    maxBatchRecords: o.maxBatchRecords ?? 512,
    maxBatchBytes: o.maxBatchBytes ?? 65_536,
    batchLingerMs: o.batchLingerMs ?? 2,
    channelWindow: o.channelWindow ?? 16,
    ackTimeoutMs: o.ackTimeoutMs ?? 30_000,
    stateFlushIntervalMs: o.stateFlushIntervalMs ?? 200,
    logger: o.logger,
  };
}
