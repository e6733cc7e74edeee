// The roles of the coordinator's RPCs, checked for every call by core/grpc-auth.ts (credentials, role
// and request decoding). Who a caller is comes from core/tokens.ts (bearer tokens, client certificates).
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/logger.ts';
import type { Authenticator, Role } from '../core/tokens.ts';
import { authInterceptor as checkCalls } from '../core/grpc-auth.ts';

export { lenientDecoding } from '../core/grpc-auth.ts';

/**
 * The role each RPC needs; 'public' needs none (health checks, which compose and load balancers
 * probe without credentials). A method missing here needs admin: new RPCs are closed until listed.
 */
export const METHOD_ROLES: Readonly<Record<string, Role | 'public'>> = {
  '/eddy.v1.JobService/SubmitJob': 'admin',
  '/eddy.v1.JobService/CancelJob': 'admin',
  '/eddy.v1.JobService/Savepoint': 'admin',
  '/eddy.v1.JobService/ListJobs': 'reader',
  '/eddy.v1.JobService/GetJob': 'reader',
  '/eddy.v1.FeatureService/Get': 'reader',
  '/eddy.v1.FeatureService/BatchGet': 'reader',
  '/eddy.v1.FeatureService/WatchFeatures': 'reader',
  '/eddy.v1.ClusterService/ListWorkers': 'reader',
  '/eddy.v2.FeatureService/GetFeatures': 'reader',
  '/eddy.v2.FeatureService/GetServingMap': 'reader',
  // Server reflection describes the public API (what the .proto files in the repository say).
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': 'reader',
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': 'reader',
  '/grpc.health.v1.Health/Check': 'public',
  '/grpc.health.v1.Health/Watch': 'public',
};

/** The coordinator's interceptor: every call checked against METHOD_ROLES (core/grpc-auth.ts). */
export function authInterceptor(auth: Authenticator, logger: Logger): grpc.ServerInterceptor {
  return checkCalls(auth, logger, METHOD_ROLES);
}
