// TLS material as the processes take it (PEM bytes, read by cli/ from files), and the one test of
// whether an address is loopback-only: the coordinator refuses to serve other interfaces in the
// clear (README, "Security").
import { isIP } from 'node:net';

/** A server's TLS identity, and optionally the CA its clients' certificates must chain to. */
export interface ServerTls {
  /** PEM certificate chain. */
  cert: Buffer;
  /** PEM private key. */
  key: Buffer;
  /** PEM CA bundle: when set, clients must present a certificate it signed (mutual TLS). */
  clientCa?: Buffer;
}

/** What a client trusts and, for mutual TLS, presents. */
export interface ClientTls {
  /** PEM CA bundle the server's certificate must chain to. @default the system's roots */
  ca?: Buffer;
  /** PEM client certificate (mutual TLS), with its key. */
  cert?: Buffer;
  key?: Buffer;
}

/** The host part of host:port (brackets of an IPv6 literal removed). */
export function hostOf(address: string): string {
  const host = address.replace(/:\d+$/, '');
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** True when only this machine can reach the address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}
