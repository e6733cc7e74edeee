// How a process proves who it is to NATS, and what TLS it uses: the options every Eddy process
// (coordinator, worker, `eddy publish`) passes to connectNats (core/nats.ts), the one place
// connections are made. NATS enforces the per-role permissions (deploy/nats-server.conf); Eddy
// only presents the credentials.
import { createInbox, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { InvalidArgumentError } from './errors.ts';
import type { ClientTls } from './tls.ts';

/** Credentials for NATS: one of user/password, token, nkey seed or a .creds file (JWT). */
export interface NatsCredentials {
  user?: string;
  password?: string;
  token?: string;
  /** An nkey seed (`SU…`): the server knows the user by its public key. */
  nkeySeed?: string;
  /** The text of a .creds file (a user JWT and its nkey seed), for operator/JWT mode. */
  creds?: string;
}

export interface ClientConnectionOptions extends NatsCredentials {
  /** TLS to the server; an empty object means TLS with the system's roots. @default none */
  tls?: ClientTls;
}

/**
 * Where replies to this process's requests arrive. Each role has its own prefix so that the
 * permissions can let a role subscribe to its own replies only (a producer cannot read the
 * coordinator's query replies).
 */
export const inboxPrefixes = {
  coordinator: '_INBOX.coordinator',
  worker: (workerId: string) => `_INBOX.worker.${workerId}`,
  producer: '_INBOX.producer',
  client: '_INBOX.client',
} as const;

/** The nats.js options for these credentials and TLS; fails on two kinds of credentials at once. */
export function natsAuthOptions(o: ClientConnectionOptions): Partial<ConnectionOptions> {
  const kinds = [o.user !== undefined, o.token !== undefined, o.nkeySeed !== undefined, o.creds !== undefined].filter(Boolean).length;
  if (kinds > 1) throw new InvalidArgumentError('NATS credentials: give one of user/password, token, nkey seed or creds file');
  if (o.password !== undefined && o.user === undefined) throw new InvalidArgumentError('NATS credentials: a password needs a user');
  const encoder = new TextEncoder();
  return {
    ...(o.user !== undefined ? { user: o.user, pass: o.password ?? '' } : {}),
    ...(o.token !== undefined ? { token: o.token } : {}),
    ...(o.nkeySeed !== undefined ? { authenticator: nkeyAuthenticator(encoder.encode(o.nkeySeed.trim())) } : {}),
    ...(o.creds !== undefined ? { authenticator: credsAuthenticator(encoder.encode(o.creds)) } : {}),
    ...(o.tls
      ? {
          tls: {
            ...(o.tls.ca ? { ca: o.tls.ca.toString('utf8') } : {}),
            ...(o.tls.cert ? { cert: o.tls.cert.toString('utf8') } : {}),
            ...(o.tls.key ? { key: o.tls.key.toString('utf8') } : {}),
          },
        }
      : {}),
  };
}

/**
 * A new inbox under the connection's own prefix (nats.js's createInbox() alone ignores it): a
 * subscription elsewhere would be refused by the role's permissions.
 */
export function connectionInbox(nc: object): string {
  const prefix = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
  return createInbox(prefix || undefined);
}
