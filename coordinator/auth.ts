// The one place gRPC calls are checked (authInterceptor): credentials, role and request
// decoding. Who a caller is comes from core/tokens.ts (bearer tokens, client certificates).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/logger.ts';
import { allows, type Authenticator, type Role } from '../core/tokens.ts';

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
  // Server reflection describes the public API (what the .proto files in the repository say).
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo': 'reader',
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo': 'reader',
  '/grpc.health.v1.Health/Check': 'public',
  '/grpc.health.v1.Health/Watch': 'public',
};

/**
 * What a request deserializer returns for bytes that are not the request message (see
 * lenientDecoding): the interceptor answers INVALID_ARGUMENT instead of grpc-js's INTERNAL.
 */
const MALFORMED: unique symbol = Symbol('malformed request');
type Malformed = { readonly [MALFORMED]: true };
const MALFORMED_MESSAGE: Malformed = Object.freeze({ [MALFORMED]: true as const });

/**
 * A service definition whose request decoding does not throw: grpc-js would answer a decode
 * failure with INTERNAL (a server fault), while it is the caller's.
 */
export function lenientDecoding<T extends grpc.ServiceDefinition>(definition: T): T {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition) as [string, grpc.MethodDefinition<unknown, unknown>][]) {
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch {
          return MALFORMED_MESSAGE;
        }
      },
    };
  }
  return out as T;
}

/**
 * The one place calls are checked: credentials (UNAUTHENTICATED), role (PERMISSION_DENIED) and
 * request decoding (INVALID_ARGUMENT). Refusals say nothing of why beyond the code: which tokens
 * exist, or that a name is known, is not the caller's business; the log says it for operators.
 */
export function authInterceptor(auth: Authenticator, logger: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    const required = METHOD_ROLES[method.path] ?? 'admin';
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        if (required === 'public') return next(metadata);
        const header = metadata.get('authorization')[0];
        const principal = auth.authenticate(typeof header === 'string' ? header : undefined, call.getAuthContext().sslPeerCertificate);
        if (!principal) {
          logger.warn({ rpc: method.path, peer: call.getPeer() }, 'unauthenticated call refused');
          call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: 'authentication required' });
          return;
        }
        if (!allows(principal, required)) {
          logger.warn({ rpc: method.path, peer: call.getPeer(), principal: principal.name, role: principal.role }, 'call refused: role not allowed');
          call.sendStatus({ code: grpc.status.PERMISSION_DENIED, details: 'permission denied' });
          return;
        }
        next(metadata);
      })
      .withOnReceiveMessage((message, next) => {
        if (message === MALFORMED_MESSAGE) {
          call.sendStatus({ code: grpc.status.INVALID_ARGUMENT, details: 'the request message does not decode' });
          return;
        }
        next(message);
      })
      .build();
    return new grpc.ServerInterceptingCall(call, new grpc.ResponderBuilder().withStart((next) => next(listener)).build());
  };
}
