// Feature serving from other languages: the Python client (clients/python, stubs generated from
// proto/ with Debian's protoc and python3-grpcio) and the TypeScript FeatureClient read the same
// rows through eddy.v2.FeatureService (one request per owning worker for all features); server reflection lists the public services; a bad request
// carries google.rpc.BadRequest. Skipped (with the reason) when the Python packages are missing:
// `make test` installs them (scripts/ensure-python-grpc.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startCluster, waitFor, runProcess, cxEvents, cxExpectation, submitCx, publishSteadily, CX_JOB, REPO_ROOT } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { FeatureClient } from '../../sdk/feature-client.ts';
import { decodeRpcStatus } from '../../core/proto.ts';

const PYTHON = '/usr/bin/python3';
const ENTITIES = 12;
const ids = Array.from({ length: ENTITIES }, (_, i) => `e${i}`);

function missingPython(): string | undefined {
  const python = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { encoding: 'utf8' });
  if (python.status !== 0) return `${PYTHON} with python3-grpcio is not installed (scripts/ensure-python-grpc.sh)`;
  for (const tool of ['protoc', 'grpc_python_plugin']) if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (scripts/ensure-python-grpc.sh)`;
  return undefined;
}

/** The names of the services the server's reflection (grpc.reflection.v1) lists. */
async function reflectedServices(address: string): Promise<string[]> {
  const definition = protoLoader.loadSync(join(REPO_ROOT, 'node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto'), { keepCase: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } } };
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const call = (client as unknown as { ServerReflectionInfo(options: grpc.CallOptions): grpc.ClientDuplexStream<unknown, unknown> }).ServerReflectionInfo({ deadline: Date.now() + 10_000 });
      call.on('data', (res: { list_services_response?: { service: Array<{ name: string }> } }) => {
        resolve((res.list_services_response?.service ?? []).map((s) => s.name));
        call.end();
      });
      call.on('error', reject);
      call.write({ list_services: '' });
    });
  } finally {
    client.close();
  }
}

test('python client - get_features from Python and the TypeScript FeatureClient give the same rows; reflection; BadRequest', { timeout: 150_000, skip: missingPython() }, async () => {
  // The worker serves direct reads too (--serve): the Python client reads both ways.
  await using cluster = await startCluster({ workers: 1, workerArgs: ['--serve', '127.0.0.1:0'] });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-python-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  using features = new FeatureClient({ address: cluster.address, timeoutMs: 5_000 });
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: cluster.nats.url });
    const stubs = join(dir, 'stubs');
    const generated = await runProcess({ name: 'generate.sh', command: join(REPO_ROOT, 'clients/python/generate.sh'), args: [stubs], timeoutMs: 60_000 });
    assert.equal(generated.code, 0, generated.stderr);
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 20_000, what: 'a live worker' });
    await submitCx(client, join(dir, 'cache'), 'test/fixtures/cx-history.ts');
    await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job running' });
    const events = cxEvents(600, ENTITIES, 11);
    await publishSteadily(nc, events, 300).done;
    const m = cxExpectation(events);
    const lastTs = new Map(events.map((e) => [e.entityId, e.ts]));
    const expected = [...ids, 'nobody'].map((id) => ({ entityId: id, indicators: m.latest.get(id) ?? null, received: m.received.get(id) ?? null }));
    await waitFor(async () => isDeepStrictEqual(await features.getFeatures(CX_JOB, ['indicators', 'received'], [...ids, 'nobody']), expected), {
      timeoutMs: 30_000,
      what: 'the TypeScript FeatureClient to read every event',
    });

    // Values as JSON text (VALUE_FORMAT_JSON), through the coordinator and from the owner: the same rows.
    using direct = new FeatureClient({ address: cluster.address, direct: true, timeoutMs: 5_000 });
    assert.deepEqual(await features.getFeatures(CX_JOB, ['indicators', 'received'], [...ids, 'nobody'], { valueFormat: 'json' }), expected, 'JSON values through the coordinator');
    assert.deepEqual(await direct.getFeatures(CX_JOB, ['indicators', 'received'], [...ids, 'nobody'], { valueFormat: 'json' }), expected, 'JSON values from the owner');
    for (const client of [features, direct]) {
      const raw = await client.getFeaturesResponse(CX_JOB, ['received'], [ids[0]!, 'nobody'], { valueFormat: 'json' });
      assert.deepEqual(raw.rows.map((r) => [r.values[0]!.value, r.values[0]!.valueJson]), [[null, String(m.received.get(ids[0]!))], [null, '']]);
    }

    // Several features of several entities: one NATS request to the (one) owning worker.
    let queries = 0;
    const counter = nc.subscribe('eddy.q.>', { callback: () => void queries++ });
    await nc.flush();
    await features.getFeatures(CX_JOB, ['indicators', 'received'], [...ids, 'nobody']);
    await nc.flush();
    counter.unsubscribe();
    assert.equal(queries, 1, 'one request for two features of 13 entities on one worker');

    // Python: the example prints one JSON object per entity.
    const py = await runProcess({
      name: 'python example',
      command: PYTHON,
      args: [join(REPO_ROOT, 'clients/python/example.py'), '--address', cluster.address, '--job', CX_JOB, '--features', 'indicators,received', '--ids', [...ids, 'nobody'].join(','), '--timeout', '10'],
      env: { EDDY_PYTHON_STUBS: stubs },
      timeoutMs: 60_000,
    });
    assert.equal(py.code, 0, py.stderr);
    const rows = (JSON.parse(py.stdout) as Array<Record<string, unknown>>).map(({ entity_id, ...rest }) => ({ entityId: entity_id, ...rest }));
    assert.deepEqual(rows, expected, 'Python reads what the TypeScript client reads');

    // Direct reads from the owning worker (the serving map, murmur3 in Python): the same rows, and
    // no NATS query behind them.
    let directQueries = 0;
    const directCounter = nc.subscribe('eddy.q.>', { callback: () => void directQueries++ });
    await nc.flush();
    const pyDirect = await runProcess({
      name: 'python example, direct',
      command: PYTHON,
      args: [join(REPO_ROOT, 'clients/python/example.py'), '--address', cluster.address, '--job', CX_JOB, '--features', 'indicators,received', '--ids', [...ids, 'nobody'].join(','), '--timeout', '10', '--direct'],
      env: { EDDY_PYTHON_STUBS: stubs },
      timeoutMs: 60_000,
    });
    await nc.flush();
    directCounter.unsubscribe();
    assert.equal(pyDirect.code, 0, pyDirect.stderr);
    const directRows = (JSON.parse(pyDirect.stdout) as Array<Record<string, unknown>>).map(({ entity_id, ...rest }) => ({ entityId: entity_id, ...rest }));
    assert.deepEqual(directRows, expected, 'Python reads the same directly from the owner');
    assert.equal(directQueries, 0, 'a direct read asks no worker over NATS');

    // Event times as google.protobuf.Timestamp, in both clients.
    const pyTimes = await runProcess({
      name: 'python example with times',
      command: PYTHON,
      args: [join(REPO_ROOT, 'clients/python/example.py'), '--address', cluster.address, '--job', CX_JOB, '--features', 'indicators', '--ids', ids.join(','), '--with-times', '--timeout', '10'],
      env: { EDDY_PYTHON_STUBS: stubs },
      timeoutMs: 60_000,
    });
    assert.equal(pyTimes.code, 0, pyTimes.stderr);
    for (const row of JSON.parse(pyTimes.stdout) as Array<{ entity_id: string; indicators: { event_time_ms: number | null } }>) {
      assert.equal(row.indicators.event_time_ms, lastTs.get(row.entity_id) ?? null, `event time of ${row.entity_id} (Python)`);
    }
    for (const row of await features.getFeaturesWithTimes(CX_JOB, ['indicators'], ids)) {
      assert.equal(row.indicators!.eventTimeUnixMs, lastTs.get(row.entityId) ?? null, `event time of ${row.entityId} (TypeScript)`);
    }

    // Server reflection lists the public services (grpcurl, grpcui and Postman need no .proto files).
    const services = await reflectedServices(cluster.address);
    for (const s of ['eddy.v1.JobService', 'eddy.v1.FeatureService', 'eddy.v1.ClusterService', 'eddy.v2.FeatureService']) assert.ok(services.includes(s), `${s} in ${services.join(', ')}`);

    // A bad request: INVALID_ARGUMENT with google.rpc.BadRequest naming the field.
    const bad = await features.getFeatures(CX_JOB, [], ids).then(
      () => assert.fail('no features must be refused'),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(bad.code, grpc.status.INVALID_ARGUMENT);
    const details = decodeRpcStatus(bad.metadata.get('grpc-status-details-bin')[0] as Buffer).details;
    assert.ok(details.some((d) => d.type === 'BadRequest' && d.fieldViolations.some((v) => v.field === 'features')), JSON.stringify(details));
  } catch (e) {
    for (const p of [cluster.coordinator, ...cluster.workers]) console.error(`--- ${p.name}\n${p.output().split('\n').slice(-30).join('\n')}`);
    throw e;
  } finally {
    await nc?.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
