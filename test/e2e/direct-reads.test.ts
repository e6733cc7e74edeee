// Direct feature reads: workers started with --serve answer eddy.v2.FeatureService.GetFeatures for
// the key groups they own, and sdk/feature-client.ts with `direct: true` routes by the job's
// serving map (GetServingMap on the coordinator). Real processes, real gRPC, a real key-group move.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startCluster, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, makeTestPki, CX_JOB } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { FeatureClient } from '../../sdk/feature-client.ts';
import { decodeRpcStatus, loadGrpc } from '../../core/proto.ts';
import { keyGroupForKey } from '../../core/key-groups.ts';
import { formatTokenLine, generateToken } from '../../core/tokens.ts';
import { NOT_SERVED_REASON, SERVING_EPOCH_HEADER } from '../../core/feature-limits.ts';
import { compileWorkerOptions } from '../../worker/index.ts';
import { createLogger } from '../../core/logger.ts';
import type { WorkerId } from '../../core/ids.ts';
import type { GetServingMapResponse__Output } from '../../proto/gen/eddy/v2/GetServingMapResponse.ts';
import type { GetFeaturesResponse__Output } from '../../proto/gen/eddy/v2/GetFeaturesResponse.ts';

const ENTITIES = 40;
const ids = Array.from({ length: ENTITIES }, (_, i) => `e${i}`);
const SERVE = ['--serve', '127.0.0.1:0'];

type Rows = Awaited<ReturnType<FeatureClient['getFeatures']>>;

/** Every entity's indicators and received count equal what the events make. */
function matches(rows: Rows, events: ReturnType<typeof cxEvents>): boolean {
  const expected = cxExpectation(events);
  return rows.every((r) => isDeepStrictEqual(r.indicators, expected.latest.get(r.entityId) ?? null) && (r.received ?? 0) === (expected.received.get(r.entityId) ?? 0));
}

function servingMap(address: string, credentials: grpc.ChannelCredentials, metadata = new grpc.Metadata()): Promise<GetServingMapResponse__Output> {
  const client = new (loadGrpc().eddy.v2.FeatureService)(address, credentials);
  return new Promise((resolve, reject) =>
    client.GetServingMap({ jobId: CX_JOB }, metadata, { deadline: Date.now() + 10_000 }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res!);
    }),
  );
}

/** One GetFeatures straight to a serving endpoint: the response, or the error. */
function rawGetFeatures(address: string, credentials: grpc.ChannelCredentials, entityIds: string[], metadata: grpc.Metadata): Promise<GetFeaturesResponse__Output | grpc.ServiceError> {
  const client = new (loadGrpc().eddy.v2.FeatureService)(address, credentials);
  return new Promise((resolve) =>
    client.GetFeatures({ jobId: CX_JOB, features: ['indicators'], entityIds }, metadata, { deadline: Date.now() + 10_000 }, (err, res) => {
      client.close();
      resolve(err ?? res!);
    }),
  );
}

const isError = (x: unknown): x is grpc.ServiceError => typeof (x as grpc.ServiceError).code === 'number';
const reasonOf = (e: grpc.ServiceError): string | undefined => {
  const bytes = e.metadata?.get('grpc-status-details-bin')[0];
  if (!(bytes instanceof Buffer)) return undefined;
  for (const d of decodeRpcStatus(bytes).details) if (d.type === 'ErrorInfo') return d.reason;
  return undefined;
};

test('direct reads - owners answer GetFeatures themselves; after a key-group move the old owner refuses and the client refreshes its map, never a stale value', { timeout: 180_000 }, async () => {
  await using cluster = await startCluster({ workers: 1, checkpointIntervalMs: 500, workerArgs: SERVE });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-direct-'));
  using admin = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  using direct = new FeatureClient({ address: cluster.address, direct: true, timeoutMs: 10_000 });
  using viaCoordinator = new FeatureClient({ address: cluster.address, timeoutMs: 10_000 });
  let nc: NatsConnection | undefined;
  let reading: Promise<void> | undefined;
  let stopReading = false;
  try {
    nc = await connect({ servers: cluster.nats.url });
    await waitFor(async () => (await admin.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 30_000, what: 'a live worker' });
    await submitCx(admin, join(dir, 'cache'));
    await waitFor(async () => (await admin.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job running' });
    const all = cxEvents(3_000, ENTITIES, 11);
    const [first, second] = [all.slice(0, 1_500), all.slice(1_500)];
    await publishSteadily(nc, first, 500).done;
    await waitFor(async () => matches(await direct.getFeatures(CX_JOB, ['indicators', 'received'], ids), first), { timeoutMs: 30_000, what: 'direct reads to show the first half' });

    // The same answers as through the coordinator, and no NATS query behind a direct read.
    let queries = 0;
    const sub = nc.subscribe('eddy.q.>', { callback: () => void queries++ });
    await nc.flush();
    const directRows = await direct.getFeatures(CX_JOB, ['indicators', 'received'], ids);
    await nc.flush();
    assert.equal(queries, 0, 'a direct read asks no worker over NATS');
    assert.deepEqual(directRows, await viaCoordinator.getFeatures(CX_JOB, ['indicators', 'received'], ids));
    assert.ok(queries > 0, 'a read through the coordinator does');
    sub.unsubscribe();

    const before = await servingMap(cluster.address, grpc.credentials.createInsecure());
    assert.equal(before.owners.length, 1);
    assert.match(before.owners[0]!.address, /^127\.0\.0\.1:\d+$/);

    // Reads go on, one after the other, while worker-2 joins and key groups move to it and the
    // second half is processed: each entity's received count never goes back (a stale owner's
    // answer after a fresher one would), and no read fails.
    const seen = new Map<string, number>();
    let reads = 0;
    reading = (async () => {
      while (!stopReading) {
        const rows = await direct.getFeatures(CX_JOB, ['received'], ids, { timeoutMs: 30_000 });
        reads++;
        for (const r of rows) {
          const n = (r.received as number | null) ?? 0;
          assert.ok(n >= (seen.get(r.entityId) ?? 0), `${r.entityId}: received ${n} after ${seen.get(r.entityId)}: a stale value`);
          seen.set(r.entityId, n);
        }
      }
    })();
    await cluster.addWorker('worker-2');
    const movedMap = await waitFor(async () => {
      const map = await servingMap(cluster.address, grpc.credentials.createInsecure()).catch(() => undefined);
      const w2 = map?.owners.find((o) => o.workerId === 'worker-2');
      return w2 !== undefined && w2.address !== '' && w2.keyGroups.length > 0 ? map : undefined;
    }, { timeoutMs: 60_000, what: 'key groups moved to worker-2' });
    const w2 = movedMap.owners.find((o) => o.workerId === 'worker-2')!;
    const w1 = movedMap.owners.find((o) => o.workerId === 'worker-1')!;
    const movedKeyGroups = new Set(w2.keyGroups.flatMap((r) => Array.from({ length: r.end - r.start + 1 }, (_, i) => r.start + i)));
    const movedIds = ids.filter((id) => movedKeyGroups.has(keyGroupForKey(id, movedMap.maxParallelism)));
    assert.ok(movedIds.length > 0, 'some entities live in the moved key groups');
    await publishSteadily(nc, second, 500).done;
    await waitFor(async () => matches(await direct.getFeatures(CX_JOB, ['indicators', 'received'], ids), all), { timeoutMs: 60_000, what: 'direct reads to show every event' });
    stopReading = true;
    await reading;
    assert.ok(reads > 0);

    // The old owner, asked for a moved id at the map's epoch (what a client with the old map
    // sends), refuses with the retryable reason that makes a client fetch the map again.
    const epoch = new grpc.Metadata();
    epoch.set(SERVING_EPOCH_HEADER, String(movedMap.epoch));
    const refused = await rawGetFeatures(w1.address, grpc.credentials.createInsecure(), [movedIds[0]!], epoch);
    assert.ok(isError(refused), 'the old owner does not answer for a key group it let go');
    assert.equal(refused.code, grpc.status.UNAVAILABLE);
    assert.equal(reasonOf(refused), NOT_SERVED_REASON);
    // The new owner answers it.
    const answered = await rawGetFeatures(w2.address, grpc.credentials.createInsecure(), [movedIds[0]!], epoch);
    assert.ok(!isError(answered), `the new owner answers: ${isError(answered) ? answered.details : ''}`);
    assert.equal(answered.rows[0]!.values[0]!.found, true);
  } catch (e) {
    for (const p of [cluster.coordinator, ...cluster.workers]) console.error(`--- ${p.name}\n${p.output().split('\n').slice(-30).join('\n')}`);
    throw e;
  } finally {
    stopReading = true;
    await reading?.catch(() => undefined);
    await nc?.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('direct reads - a serving endpoint takes the coordinator\'s TLS and tokens, and refuses an exposed address without them', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-direct-sec-'));
  const pki = makeTestPki(dir);
  const adminToken = generateToken();
  const readerToken = generateToken();
  const tokens = join(dir, 'tokens');
  await writeFile(tokens, `${formatTokenLine('ops', 'admin', adminToken)}\n${formatTokenLine('model', 'reader', readerToken)}\n`);
  const security = ['--grpc-tls-cert', pki.server.cert, '--grpc-tls-key', pki.server.key, '--grpc-tokens', tokens];
  await using cluster = await startCluster({ workers: 1, checkpointIntervalMs: 500, coordinatorArgs: security, workerArgs: [...SERVE, ...security] });
  const ca = await readFile(pki.ca);
  const tls = grpc.credentials.createSsl(ca);
  using admin = new EddyClient({ address: cluster.address, timeoutMs: 10_000, tls: { ca }, token: adminToken });
  using reader = new FeatureClient({ address: cluster.address, direct: true, credentials: tls, token: readerToken, timeoutMs: 10_000 });
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: cluster.nats.url });
    await waitFor(async () => (await admin.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 30_000, what: 'a live worker' });
    await submitCx(admin, join(dir, 'cache'));
    await waitFor(async () => (await admin.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job running' });
    const events = cxEvents(500, ENTITIES, 5);
    await publishSteadily(nc, events, 500).done;
    await waitFor(async () => matches(await reader.getFeatures(CX_JOB, ['indicators', 'received'], ids), events), { timeoutMs: 30_000, what: 'direct reads over TLS with a reader token' });

    const bearer = (token: string) => {
      const m = new grpc.Metadata();
      m.set('authorization', `Bearer ${token}`);
      return m;
    };
    assert.equal(await servingMap(cluster.address, tls).then(() => 'OK', (e: grpc.ServiceError) => grpc.status[e.code]), 'UNAUTHENTICATED', 'GetServingMap needs a token');
    const map = await servingMap(cluster.address, tls, bearer(readerToken));
    const endpoint = map.owners[0]!.address;
    const code = async (credentials: grpc.ChannelCredentials, metadata: grpc.Metadata) => {
      const r = await rawGetFeatures(endpoint, credentials, ['e1'], metadata);
      return isError(r) ? grpc.status[r.code] : 'OK';
    };
    assert.equal(await code(tls, new grpc.Metadata()), 'UNAUTHENTICATED', 'no token');
    assert.equal(await code(tls, bearer(generateToken())), 'UNAUTHENTICATED', 'an unknown token');
    assert.equal(await code(tls, bearer(readerToken)), 'OK', 'a reader');
    assert.equal(await code(grpc.credentials.createInsecure(), bearer(readerToken)), 'UNAVAILABLE', 'plaintext to a TLS endpoint does not connect');
    // Nothing but GetFeatures (and health) is open: the coordinator's RPCs are not served here.
    const closed = await new Promise<grpc.ServiceError | undefined>((resolve) => {
      const client = new (loadGrpc().eddy.v2.FeatureService)(endpoint, tls);
      client.GetServingMap({ jobId: CX_JOB }, bearer(readerToken), { deadline: Date.now() + 10_000 }, (err) => {
        client.close();
        resolve(err ?? undefined);
      });
    });
    assert.equal(closed?.code, grpc.status.PERMISSION_DENIED, 'a method not listed needs admin');

    // An address other hosts reach, without TLS and authentication, is refused at the start.
    const options = (serve: object) => () => compileWorkerOptions({ natsServers: '', workerId: 'w' as WorkerId, dataDir: dir, storeUrl: dir, logger: createLogger({ role: 'test', level: 'silent' }), serve: { address: '0.0.0.0:0', ...serve } });
    assert.throws(options({}), /refusing to serve feature reads on 0\.0\.0\.0:0/);
    assert.throws(options({ tokens: [], tls: { cert: Buffer.alloc(0), key: Buffer.alloc(0) } }), /without TLS and authentication/);
    assert.doesNotThrow(options({ insecure: true }));
  } catch (e) {
    for (const p of [cluster.coordinator, ...cluster.workers]) console.error(`--- ${p.name}\n${p.output().split('\n').slice(-30).join('\n')}`);
    throw e;
  } finally {
    await nc?.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
