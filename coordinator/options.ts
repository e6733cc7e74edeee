import type { Logger } from '../core/logger.ts';
import { InvalidArgumentError } from '../core/errors.ts';

export interface CoordinatorOptions {
  /** NATS server URLs, comma-separated. */
  natsServers: string;
  /** host:port the gRPC server listens on. @default "127.0.0.1:7400" */
  grpcAddress?: string;
  /** Object store for bundles (file:// URL or a directory). */
  storeUrl: string;
  /** A worker silent this long is dead. @default 3000 */
  workerTimeoutMs?: number;
  /** How often workers heartbeat. @default 500 */
  heartbeatIntervalMs?: number;
  /** How long to wait for a worker to acknowledge a deploy, start or cancel. @default 10000 */
  controlTimeoutMs?: number;
  logger: Logger;
}

export type CompiledCoordinatorOptions = Required<CoordinatorOptions>;

export const DEFAULT_GRPC_ADDRESS = '127.0.0.1:7400';

export function compileCoordinatorOptions(o: CoordinatorOptions): CompiledCoordinatorOptions {
  const c: CompiledCoordinatorOptions = {
    natsServers: o.natsServers,
    grpcAddress: o.grpcAddress ?? DEFAULT_GRPC_ADDRESS,
    storeUrl: o.storeUrl,
    workerTimeoutMs: o.workerTimeoutMs ?? 3000,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? 500,
    controlTimeoutMs: o.controlTimeoutMs ?? 10_000,
    logger: o.logger,
  };
  if (!/^[^:]+:\d+$/.test(c.grpcAddress)) throw new InvalidArgumentError(`grpcAddress ${c.grpcAddress} is not host:port`);
  if (c.heartbeatIntervalMs <= 0 || c.workerTimeoutMs < 2 * c.heartbeatIntervalMs) {
    throw new InvalidArgumentError(`workerTimeoutMs ${c.workerTimeoutMs} must be at least twice heartbeatIntervalMs ${c.heartbeatIntervalMs}`);
  }
  return c;
}
