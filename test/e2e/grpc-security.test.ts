// The coordinator's gRPC front door with TLS, bearer tokens and client certificates: real
// processes, real certificates made by openssl in the test, real gRPC clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startNatsServer, startCoordinator, startWorker, runCli, makeTestPki, waitFor, type TestPki } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { formatTokenLine, generateToken } from '../../core/tokens.ts';
import type { ClientTls } from '../../core/tls.ts';

const ADMIN_TOKEN = generateToken();
const READER_TOKEN = generateToken();

async function tlsOf(pki: TestPki, pair?: { cert: string; key: string }): Promise<ClientTls> {
  return { ca: await readFile(pki.ca), ...(pair ? { cert: await readFile(pair.cert), key: await readFile(pair.key) } : {}) };
}

/** The gRPC status code a call failed with (or 'OK'). */
async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'OK';
  } catch (e) {
    const code = ((e as Error).cause as grpc.ServiceError | undefined)?.code ?? (e as grpc.ServiceError).code;
    return grpc.status[code] ?? String(code);
  }
}

const submitNothing = (client: EddyClient) => client.submitJob({ manifestJson: '{}', bundleSha256: '00', code: new Uint8Array(8), timeoutMs: 10_000 });

/** A raw unary call, bytes in and out, with the admin token. */
function rawUnary(address: string, credentials: grpc.ChannelCredentials, path: string, body: Buffer, timeoutMs: number): Promise<{ code: number; details: string; elapsedMs: number }> {
  const client = new grpc.Client(address, credentials);
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${ADMIN_TOKEN}`);
  const started = Date.now();
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, body, metadata, { deadline: Date.now() + timeoutMs }, (err) => {
      client.close();
      resolve({ code: err?.code ?? grpc.status.OK, details: err?.details ?? '', elapsedMs: Date.now() - started });
    });
  });
}

test('grpc security - TLS, tokens and client certificates decide who may call what', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-grpc-sec-'));
  const pki = makeTestPki(dir);
  const tokens = join(dir, 'tokens');
  await writeFile(tokens, `# test tokens\n${formatTokenLine('ops', 'admin', ADMIN_TOKEN)}\n${formatTokenLine('dash', 'reader', READER_TOKEN)}\n`);
  await using nats = await startNatsServer();
  await using natsB = await startNatsServer();
  const serverTls = ['--grpc-tls-cert', pki.server.cert, '--grpc-tls-key', pki.server.key];
  // A: TLS + tokens. B: mutual TLS, roles from the client certificates.
  const [a, b] = await Promise.all([
    startCoordinator({ natsUrl: nats.url, storeDir: join(dir, 'store'), extraArgs: [...serverTls, '--grpc-tokens', tokens] }),
    startCoordinator({ natsUrl: natsB.url, storeDir: join(dir, 'store-b'), extraArgs: [...serverTls, '--grpc-client-ca', pki.ca] }),
  ]);
  await using _a = a;
  await using _b = b;
  await using worker = await startWorker({ natsUrl: nats.url, workerId: 'w1', dataDir: join(dir, 'w1'), storeDir: join(dir, 'store') });
  const tls = await tlsOf(pki);
  try {
    // No token, a wrong token, a reader's token: SubmitJob is refused before anything is read.
    const none = new EddyClient({ address: a.address, timeoutMs: 10_000, tls });
    const wrong = new EddyClient({ address: a.address, timeoutMs: 10_000, tls, token: generateToken() });
    const reader = new EddyClient({ address: a.address, timeoutMs: 10_000, tls, token: READER_TOKEN });
    const admin = new EddyClient({ address: a.address, timeoutMs: 10_000, tls, token: ADMIN_TOKEN });
    assert.equal(await codeOf(submitNothing(none)), 'UNAUTHENTICATED');
    assert.equal(await codeOf(submitNothing(wrong)), 'UNAUTHENTICATED');
    assert.equal(await codeOf(submitNothing(reader)), 'PERMISSION_DENIED');
    assert.equal(await codeOf(reader.cancelJob('x')), 'PERMISSION_DENIED');
    assert.equal(await codeOf(none.listJobs()), 'UNAUTHENTICATED');
    assert.equal(await codeOf(reader.listJobs()), 'OK');
    assert.equal(await codeOf(submitNothing(admin)), 'INVALID_ARGUMENT', 'the admin gets past the check to the manifest');
    // Refusals leak nothing: no token names, no roles.
    const refused = await reader.cancelJob('x').catch((e: Error) => e.message);
    assert.equal(refused, 'permission denied');
    // The coordinator says who was refused (its output arrives through a pipe: wait for it).
    await waitFor(() => /"principal":"dash","role":"reader","msg":"call refused: role not allowed"/.test(a.output()), { timeoutMs: 10_000, what: 'the refusal in the coordinator log' });
    assert.doesNotMatch(a.output(), new RegExp(READER_TOKEN.slice(5, 20)), 'a token never reaches the log');

    // Plaintext to a TLS port does not get an answer.
    const plain = new EddyClient({ address: a.address, timeoutMs: 3_000, token: ADMIN_TOKEN });
    assert.equal(await codeOf(plain.listJobs()), 'UNAVAILABLE');
    for (const c of [none, wrong, reader, admin, plain]) c.close();

    // Malformed protobuf is the caller's fault; a megabyte id is not echoed back, and the call ends at once.
    const ssl = grpc.credentials.createSsl(await readFile(pki.ca));
    const malformed = await rawUnary(a.address, ssl, '/eddy.v1.JobService/GetJob', Buffer.from([0xff, 0xff]), 10_000);
    assert.equal(grpc.status[malformed.code], 'INVALID_ARGUMENT');
    const bigId = 'x'.repeat(1 << 20);
    const body = Buffer.concat([Buffer.from([0x0a, 0x80, 0x80, 0x40]), Buffer.from(bigId)]);
    const big = await rawUnary(a.address, ssl, '/eddy.v1.JobService/GetJob', body, 20_000);
    assert.equal(grpc.status[big.code], 'NOT_FOUND');
    assert.ok(big.details.length < 300, `details of ${big.details.length} chars`);
    assert.ok(big.elapsedMs < 10_000, `answered in ${big.elapsedMs} ms`);

    // Health checks need no credentials (compose and load balancers probe them).
    const health = await rawUnary(a.address, ssl, '/grpc.health.v1.Health/Check', Buffer.alloc(0), 10_000);
    assert.equal(grpc.status[health.code], 'OK');

    // Mutual TLS: a certificate of another CA is refused at the handshake; O names the role.
    const stranger = new EddyClient({ address: b.address, timeoutMs: 3_000, tls: await tlsOf(pki, pki.stranger) });
    const noCert = new EddyClient({ address: b.address, timeoutMs: 3_000, tls });
    const nobody = new EddyClient({ address: b.address, timeoutMs: 10_000, tls: await tlsOf(pki, pki.nobody) });
    const certReader = new EddyClient({ address: b.address, timeoutMs: 10_000, tls: await tlsOf(pki, pki.reader) });
    const certAdmin = new EddyClient({ address: b.address, timeoutMs: 10_000, tls: await tlsOf(pki, pki.admin) });
    assert.equal(await codeOf(stranger.listJobs()), 'UNAVAILABLE');
    assert.equal(await codeOf(noCert.listJobs()), 'UNAVAILABLE');
    assert.equal(await codeOf(nobody.listJobs()), 'UNAUTHENTICATED');
    assert.equal(await codeOf(certReader.listJobs()), 'OK');
    assert.equal(await codeOf(submitNothing(certReader)), 'PERMISSION_DENIED');
    assert.equal(await codeOf(submitNothing(certAdmin)), 'INVALID_ARGUMENT');
    for (const c of [stranger, noCert, nobody, certReader, certAdmin]) c.close();

    // The CLI end to end over TLS with tokens from the environment.
    const env = (token: string) => ({ EDDY_ADDR: a.address, EDDY_TLS_CA: pki.ca, EDDY_TOKEN: token });
    const denied = await runCli(['submit', 'jobs/customer-experience/job.ts'], { env: env(READER_TOKEN) });
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /permission denied/);
    const submitted = await runCli(['submit', 'jobs/customer-experience/job.ts'], { env: env(ADMIN_TOKEN), timeoutMs: 90_000 });
    assert.equal(submitted.code, 0, submitted.stderr);
    await waitFor(async () => /customer-experience\s+\S*\s*RUNNING/.test((await runCli(['jobs'], { env: env(READER_TOKEN) })).stdout), { timeoutMs: 60_000, what: 'the job RUNNING in `eddy jobs` (reader token, TLS)' });
    const cancelled = await runCli(['cancel', 'customer-experience'], { env: env(ADMIN_TOKEN) });
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.ok(worker.pid > 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('grpc security - a coordinator refuses a non-loopback address without TLS and authentication', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-grpc-bind-'));
  try {
    const pki = makeTestPki(dir);
    const base = ['coordinator', '--nats', 'nats://127.0.0.1:1', '--grpc', '0.0.0.0:7499', '--store', join(dir, 'store')];
    const [plain, tlsOnly] = await Promise.all([runCli(base), runCli([...base, '--grpc-tls-cert', pki.server.cert, '--grpc-tls-key', pki.server.key])]);
    for (const r of [plain, tlsOnly]) {
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /refusing to serve gRPC on 0\.0\.0\.0:7499 \(not loopback\) without TLS and authentication/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
