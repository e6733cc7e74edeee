// The one check of a gRPC call (credentials, role, request decoding), shared by every front door:
// the coordinator (coordinator/auth.ts names its methods' roles) and a worker's feature-serving
// endpoint (worker/query/serving-endpoint.ts). Who a caller is comes from core/tokens.ts.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from './logger.ts';
import { allows, type Authenticator, type Role } from './tokens.ts';
import { hostOf, isLoopbackHost, type ServerTls } from './tls.ts';
import { InvalidArgumentError } from './errors.ts';

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
export function authInterceptor(auth: Authenticator, logger: Logger, roles: Readonly<Record<string, Role | 'public'>>): grpc.ServerInterceptor {
  return (method, call) => {
    // A method missing from `roles` needs admin: new RPCs are closed until listed.
    const required = roles[method.path] ?? 'admin';
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

/** The server credentials of a front door: TLS (mutual with a client CA) when given, else plaintext. */
export function serverCredentials(tls: ServerTls | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.clientCa ?? null, [{ private_key: tls.key, cert_chain: tls.cert }], tls.clientCa !== undefined);
}

/**
 * Refuses to serve a non-loopback address without TLS and authentication (a tokens file or a
 * client CA) unless told `insecure` (README, "Security"); `what` names the front door.
 */
export function checkExposure(what: string, address: string, security: { tls?: ServerTls | undefined; tokens: number; insecure: boolean }): void {
  const exposed = !isLoopbackHost(hostOf(address));
  const authenticated = security.tokens > 0 || security.tls?.clientCa !== undefined;
  if (exposed && !security.insecure && !(security.tls && authenticated)) {
    throw new InvalidArgumentError(
      `refusing to serve ${what} on ${address} (not loopback) without TLS and authentication: give a certificate and key, and a tokens file or a client CA (or --insecure to accept the risk)`,
    );
  }
}
