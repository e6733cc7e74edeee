export { Coordinator } from './coordinator.ts';
export type { CoordinatorOptions, CompiledCoordinatorOptions } from './options.ts';
export { compileCoordinatorOptions, DEFAULT_GRPC_ADDRESS, DEFAULT_HTTP_ADDRESS } from './options.ts';
import { Coordinator } from './coordinator.ts';
import type { CoordinatorOptions } from './options.ts';

/** Starts a coordinator; it logs "coordinator ready" once its gRPC server listens. */
export function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  return Coordinator.start(options);
}
export { METHOD_ROLES } from './auth.ts';
export { Authenticator, allows, type Principal, type Role } from '../core/tokens.ts';
