// Who may read the dashboard: the gRPC API's credentials, so one tokens file guards both doors.
//
// With authentication off (a loopback-only coordinator, or one told --insecure) the dashboard keeps
// its own default: loopback clients only. With it on, a request that carries
// `Authorization: Bearer <token>` must hold a token of the reader (or admin) role, and one without
// is answered only from loopback: a browser's EventSource cannot send headers, and the dashboard
// listens on 127.0.0.1 unless told otherwise (reach it remotely through an SSH tunnel or a proxy
// that adds the header).
import type { TLSSocket } from 'node:tls';
import { allows, type Authenticator } from '../../core/tokens.ts';
import { allowLoopback, type Authorize } from './http-server.ts';

export function dashboardAuthorization(authenticator: Authenticator): Authorize {
  return (request) => {
    const header = request.headers.authorization;
    if (!authenticator.enabled || header === undefined || header === '') return allowLoopback(request);
    const socket = request.socket as Partial<TLSSocket>;
    const principal = authenticator.authenticate(header, socket.getPeerCertificate?.());
    if (principal === undefined) return { allow: false, status: 401, message: 'unknown or malformed credentials' };
    if (!allows(principal, 'reader')) return { allow: false, status: 403, message: 'this role may not read the dashboard' };
    return { allow: true };
  };
}
