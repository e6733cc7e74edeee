// Who may call the coordinator: bearer tokens (a tokens file of hashed secrets) and client
// certificates (mutual TLS), each naming a role. The gRPC server checks every call with these
// (coordinator/auth.ts); other front doors (an HTTP dashboard) reuse `Authenticator` and `allows`
// so that a token means the same everywhere, and the CLI writes tokens files with them.
//
// Why a tokens file of hashes rather than JWTs: a token is 32 random bytes, so a plain SHA-256 of
// it cannot be brute-forced and a leaked file grants nothing; there is no signing key to keep,
// rotate or distribute; revoking a token is deleting its line. JWTs would buy expiry and
// stateless issuance by another service, which Eddy has no need of yet (README, "Security").
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { InvalidArgumentError } from './errors.ts';

/** admin: everything (submit, cancel, savepoint, stop); reader: queries and listings. */
export type Role = 'admin' | 'reader';
export const ROLES: readonly Role[] = ['admin', 'reader'];

export interface Principal {
  /** The token's name in the tokens file, or the certificate's common name. */
  name: string;
  role: Role;
  via: 'token' | 'certificate' | 'open';
}

export interface TokenEntry {
  name: string;
  role: Role;
  /** SHA-256 of the token, 32 bytes. */
  sha256: Buffer;
}

const TOKEN_PREFIX = 'eddy_';
/** A longer Authorization header is refused without hashing it. */
const MAX_AUTHORIZATION_CHARS = 512;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

/** A new random token (shown once; only its hash is stored). */
export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** One line of a tokens file: `<name> <role> sha256:<hex>`. */
export function formatTokenLine(name: string, role: Role, token: string): string {
  if (!NAME_PATTERN.test(name)) throw new InvalidArgumentError('a token name is 1-64 of [A-Za-z0-9_.@-], starting with a letter or digit');
  return `${name} ${role} sha256:${hashToken(token).toString('hex')}`;
}

/**
 * A tokens file: one `<name> <role> sha256:<hex>` per line; blank lines and `#` comments are
 * skipped. Errors name the line, never its content (it is a credential file).
 */
export function parseTokensFile(text: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const names = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(\S+)\s+(\S+)\s+sha256:([0-9a-f]{64})$/.exec(line);
    if (!m || !NAME_PATTERN.test(m[1]!) || !ROLES.includes(m[2] as Role)) {
      throw new InvalidArgumentError(`tokens file line ${i + 1}: expected "<name> <admin|reader> sha256:<64 hex digits>"`);
    }
    if (names.has(m[1]!)) throw new InvalidArgumentError(`tokens file line ${i + 1}: the name ${m[1]} is used twice`);
    names.add(m[1]!);
    entries.push({ name: m[1]!, role: m[2] as Role, sha256: Buffer.from(m[3]!, 'hex') });
  });
  return entries;
}

/** Role from a client certificate: its subject's O (organization), as Kubernetes maps groups. */
export function certificateRole(cert: PeerCertificate | undefined): Role | undefined {
  const o = cert?.subject?.O;
  const values = Array.isArray(o) ? o : o === undefined ? [] : [o];
  if (values.includes('admin')) return 'admin';
  if (values.includes('reader')) return 'reader';
  return undefined;
}

export interface AuthenticatorOptions {
  /** Tokens accepted as `authorization: Bearer <token>`. @default [] */
  tokens?: readonly TokenEntry[];
  /**
   * Client certificates (verified against the server's client CA) authenticate, with the role of
   * their subject's O (`admin` or `reader`). @default false
   */
  certificates?: boolean;
}

export class Authenticator {
  readonly #tokens: readonly TokenEntry[];
  readonly #certificates: boolean;

  constructor(options: AuthenticatorOptions = {}) {
    this.#tokens = options.tokens ?? [];
    this.#certificates = options.certificates ?? false;
  }

  /** Off: every caller is admin (a loopback-only coordinator, or one told --insecure). */
  get enabled(): boolean {
    return this.#tokens.length > 0 || this.#certificates;
  }

  /**
   * Who is calling, from an Authorization header value and the TLS peer's certificate; undefined
   * when neither proves anything. A bearer token, when sent, decides alone: a wrong token is not
   * rescued by a certificate.
   */
  authenticate(authorization: string | undefined, peerCertificate?: PeerCertificate): Principal | undefined {
    if (!this.enabled) return { name: 'anonymous', role: 'admin', via: 'open' };
    if (authorization !== undefined && authorization !== '') return this.#bearer(authorization);
    if (this.#certificates && peerCertificate && Object.keys(peerCertificate).length > 0) {
      const role = certificateRole(peerCertificate);
      const cn = peerCertificate.subject?.CN;
      if (role) return { name: (Array.isArray(cn) ? cn[0] : cn) ?? 'certificate', role, via: 'certificate' };
    }
    return undefined;
  }

  #bearer(authorization: string): Principal | undefined {
    if (authorization.length > MAX_AUTHORIZATION_CHARS) return undefined;
    const m = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!m) return undefined;
    const presented = hashToken(m[1]!);
    let found: TokenEntry | undefined;
    // Compare with every entry, so the time taken does not say which (or whether one) matched.
    for (const entry of this.#tokens) if (timingSafeEqual(entry.sha256, presented)) found = entry;
    return found ? { name: found.name, role: found.role, via: 'token' } : undefined;
  }
}

/** Whether a principal of this role may do what `required` guards (admin may do all). */
export function allows(principal: Principal, required: Role): boolean {
  return principal.role === 'admin' || principal.role === required;
}
