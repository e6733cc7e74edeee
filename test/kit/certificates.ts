// Real certificates for TLS tests, made with the machine's openssl: a CA, a server certificate
// for 127.0.0.1/localhost, client certificates whose subject O names a role, and a second,
// untrusted CA with a client certificate of its own (a stranger's).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TestPki {
  /** The trusted CA's certificate (PEM file path). */
  ca: string;
  server: KeyPair;
  /** Signed by the CA, subject O=admin / O=reader / O=nobody. */
  admin: KeyPair;
  reader: KeyPair;
  nobody: KeyPair;
  /** Signed by another CA, subject O=admin: must be refused. */
  stranger: KeyPair;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function newCa(dir: string, name: string): KeyPair {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', pair.key, '-out', pair.cert, '-days', '2', '-subj', `/CN=${name}`]);
  return pair;
}

function issue(dir: string, ca: KeyPair, name: string, subject: string, extensions: string): KeyPair {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', pair.key, '-out', csr, '-subj', subject]);
  openssl(dir, ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', pair.cert, '-days', '2', '-extfile', ext]);
  return pair;
}

/** Writes a PKI into dir (which must exist) and returns the file paths. */
export function makeTestPki(dir: string): TestPki {
  const ca = newCa(dir, 'ca');
  const other = newCa(dir, 'other-ca');
  const client = 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n';
  return {
    ca: ca.cert,
    server: issue(dir, ca, 'server', '/CN=localhost', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n'),
    admin: issue(dir, ca, 'admin', '/O=admin/CN=alice', client),
    reader: issue(dir, ca, 'reader', '/O=reader/CN=rita', client),
    nobody: issue(dir, ca, 'nobody', '/O=nobody/CN=nina', client),
    stranger: issue(dir, other, 'stranger', '/O=admin/CN=mallory', client),
  };
}
