// What a nats-server refused a connection: the permission violations it reports on the
// connection's status stream, and a wait for one of them (the security tests' evidence).
import type { NatsConnection } from '@nats-io/transport-node';
import { waitFor } from './wait-for.ts';

export interface PermissionViolation {
  operation: string;
  subject: string;
}

/** Every permission violation the server reports to this connection from now on (the array grows). */
export function permissionViolations(nc: NatsConnection): PermissionViolation[] {
  const seen: PermissionViolation[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' && s.error?.name === 'PermissionViolationError') {
        const e = s.error as unknown as PermissionViolation;
        seen.push({ operation: e.operation, subject: e.subject });
      }
    }
  })();
  return seen;
}

/** Resolves once the server has refused `operation` ("publish" or "subscription") to `subject`. */
export function refusedBy(seen: readonly PermissionViolation[], operation: string, subject: string): Promise<boolean> {
  return waitFor(() => seen.some((v) => v.operation === operation && v.subject === subject), { timeoutMs: 10_000, what: `the server to refuse ${operation} to ${subject}` });
}
