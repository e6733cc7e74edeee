// The dashboard's HTTP API on its own (coordinator/dashboard/): the JSON shapes the page reads,
// the errors, the Server-Sent Events stream, and the authorize hook. Against a real cluster
// (nats-server, a coordinator and a worker process) running the customer-experience job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startCluster, startNatsServer, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, CX_JOB } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { Coordinator } from '../../coordinator/index.ts';
import { allowLoopback } from '../../coordinator/dashboard/index.ts';
import { compileCoordinatorOptions } from '../../coordinator/options.ts';
import { silentLogger } from '../../core/logger.ts';
import { formatTokenLine, generateToken, parseTokensFile } from '../../core/tokens.ts';
import { buildBundle } from '../../core/bundle.ts';
import { REPO_ROOT } from '../kit/index.ts';
import { jobGraph } from '../../coordinator/dashboard/views.ts';
import { JobHistory } from '../../coordinator/dashboard/job-history.ts';
import type { ApiError, CheckpointsView, ClusterView, DashboardUpdate, EntityLookup, FeatureLookup, JobDetail, JobSummary, KeyGroupsView, WorkerView } from '../../coordinator/dashboard/api.ts';

async function get<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T; headers: Headers }> {
  const r = await fetch(url, init);
  return { status: r.status, body: (await r.json()) as T, headers: r.headers };
}

/** Reads Server-Sent Events from `url` until `count` events of type `update` arrived. */
function readEvents(url: string, count: number, timeoutMs: number): Promise<{ status: number; contentType: string; updates: DashboardUpdate[]; raw: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let raw = '';
      const updates: DashboardUpdate[] = [];
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`only ${updates.length} of ${count} updates within ${timeoutMs} ms`));
      }, timeoutMs);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        // Events end with a blank line; each `update` carries one JSON document in `data:`.
        for (let end = raw.indexOf('\n\n'); end >= 0; end = raw.indexOf('\n\n')) {
          const block = raw.slice(0, end);
          raw = raw.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event === 'update' && data) updates.push(JSON.parse(data) as DashboardUpdate);
        }
        if (updates.length >= count) {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), updates, raw });
        }
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), updates, raw });
      });
    });
    req.on('error', reject);
  });
}

test('dashboard API - jobs, a job with its graph, checkpoints, key groups, workers, feature lookups and the event stream; errors as JSON', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ workers: 1 });
  const base = cluster.coordinator.httpUrl;
  const dir = await mkdtemp(join(tmpdir(), 'eddy-dashboard-api-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: cluster.nats.url });
    // Before any job: empty lists, not errors.
    assert.deepEqual((await get<JobSummary[]>(`${base}/api/jobs`)).body, []);
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 15_000, what: 'a live worker' });
    await submitCx(client, join(dir, 'cache'));
    await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job running' });
    const events = cxEvents(3_000, 10, 3);
    await publishSteadily(nc, events, 1_000).done;

    const jobs = await get<JobSummary[]>(`${base}/api/jobs`);
    assert.equal(jobs.status, 200);
    assert.match(jobs.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(jobs.body.length, 1);
    const summary = jobs.body[0]!;
    assert.equal(summary.id, CX_JOB);
    assert.equal(summary.state, 'RUNNING');
    assert.equal(summary.maxParallelism, 128);
    assert.ok(summary.uptimeMs > 0 && summary.epoch >= 1 && summary.restarts === 0);
    // A loaded machine may let even a lone coordinator's lease lapse; it takes it again and resumes.
    await waitFor(async () => (await get<JobSummary[]>(`${base}/api/jobs`)).body[0]?.counted === true, { timeoutMs: 20_000, what: 'the coordinator running the job (it counts records)' });

    // Who answers: this coordinator leads, and names its own dashboard.
    const cv = (await get<ClusterView>(`${base}/api/cluster`)).body;
    assert.deepEqual(cv, { role: 'LEADER', leader: { address: cluster.coordinator.address, term: cv.leader!.term, dashboardUrl: `${base}/` } });
    assert.ok(cv.leader!.term >= 1);
    assert.deepEqual(summary.features.map((f) => f.name).sort(), ['indicators', 'received']);

    // The job: its graph has every source, stage and sink of the manifest, edges between them.
    const grpcStages = (await client.getJob(CX_JOB)).stages.map((s) => s.stageId).sort();
    const detail = await waitFor(async () => {
      const d = (await get<JobDetail>(`${base}/api/jobs/${CX_JOB}`)).body;
      // Rates are sampled once a second: a job through its input sooner has none yet.
      return d.recordsIn >= events.length && d.rates.length > 0 ? d : undefined;
    }, { timeoutMs: 30_000, what: 'every event counted in, and a rate sample' });
    assert.deepEqual(detail.stages.map((s) => s.stageId).sort(), grpcStages);
    assert.deepEqual(detail.graph.nodes.filter((n) => n.kind === 'stage').map((n) => n.id).sort(), grpcStages);
    assert.deepEqual(detail.graph.nodes.filter((n) => n.kind === 'source').map((n) => n.label), ['indicators']);
    assert.deepEqual(detail.graph.nodes.filter((n) => n.kind === 'sink').map((n) => n.detail).sort(), ['files', 'jetstream']);
    const ids = new Set(detail.graph.nodes.map((n) => n.id));
    for (const e of detail.graph.edges) assert.ok(ids.has(e.from) && ids.has(e.to), `edge ${e.from} → ${e.to} joins two nodes`);
    assert.ok(detail.graph.edges.some((e) => e.kind === 'shuffle'), 'the keyBy is a shuffle edge');
    assert.equal(detail.lastFailure, null);
    assert.ok(detail.rates.length > 0, 'rate samples are kept');
    const source = detail.stages.find((s) => s.kind === 'source')!;
    assert.equal(source.recordsIn, events.length);

    // Checkpoints: completed ones in the history, with duration and bytes; retained ones with paths.
    const checkpoints = await waitFor(async () => {
      const c = (await get<CheckpointsView>(`${base}/api/jobs/${CX_JOB}/checkpoints`)).body;
      return c.history.some((h) => h.status === 'COMPLETED' && h.bytes > 0) ? c : undefined;
    }, { timeoutMs: 30_000, what: 'a completed checkpoint with bytes' });
    assert.equal(checkpoints.intervalMs, 1000);
    assert.equal(checkpoints.kept, true);
    const done = checkpoints.history.filter((h) => h.status === 'COMPLETED');
    assert.ok(done.every((h) => h.durationMs >= 0 && h.startedAtUnixMs > 0 && h.epoch >= 1 && typeof h.slow === 'boolean'));
    assert.ok(checkpoints.medianDurationMs > 0);
    const withBytes = done.find((h) => h.bytes > 0)!;
    assert.deepEqual(withBytes.workers!.map((w) => w.workerId), ['worker-1'], "the worker's part of the checkpoint");
    assert.equal(withBytes.workers![0]!.bytes, withBytes.bytes);
    assert.ok(withBytes.workers![0]!.ackMs >= 0 && withBytes.workers![0]!.ackMs <= withBytes.durationMs);
    assert.ok(checkpoints.retained.length >= 1 && checkpoints.retained.every((r) => r.path === `jobs/${CX_JOB}/checkpoints/${r.id}/_metadata`));
    assert.deepEqual(checkpoints.savepoints, []);
    // A savepoint shows with its path.
    await client.savepoint(CX_JOB, false);
    const withSavepoint = (await get<CheckpointsView>(`${base}/api/jobs/${CX_JOB}/checkpoints`)).body;
    assert.equal(withSavepoint.savepoints.length, 1);
    assert.match(withSavepoint.savepoints[0]!.path, /^jobs\/customer-experience\/savepoints\/\d+\/_metadata$/);

    // Key groups: every one owned by the one worker, nothing moving.
    const kg = (await get<KeyGroupsView>(`${base}/api/jobs/${CX_JOB}/key-groups`)).body;
    assert.equal(kg.owners.length, 128);
    assert.ok(kg.owners.every((o) => o === 'worker-1'));
    assert.deepEqual(kg.moving, []);
    assert.deepEqual(kg.workers.map((w) => [w.id, w.keyGroups]), [['worker-1', 128]]);

    // Workers: liveness, heartbeat age, RSS and CPU from the heartbeat.
    const workers = (await get<WorkerView[]>(`${base}/api/workers`)).body;
    assert.equal(workers.length, 1);
    const w = workers[0]!;
    assert.equal(w.id, 'worker-1');
    assert.equal(w.state, 'ALIVE');
    assert.ok(w.heartbeatAgeMs < 3000, `heartbeat age ${w.heartbeatAgeMs} ms`);
    assert.ok(w.rssBytes > 10 * 1024 * 1024, `RSS ${w.rssBytes} B`);
    assert.ok(w.cpuCores >= 0 && w.cpuCores < 8, `CPU ${w.cpuCores}`);
    assert.deepEqual(w.jobs, [{ jobId: CX_JOB, keyGroups: 128, splits: 4 }]);
    // State size: the worker's RocksDB on disk, from its heartbeat, on the worker and in the key-group view.
    await waitFor(async () => (await get<WorkerView[]>(`${base}/api/workers`)).body[0]!.stateBytes > 0, { timeoutMs: 10_000, what: "the worker's state size" });
    assert.ok((await get<KeyGroupsView>(`${base}/api/jobs/${CX_JOB}/key-groups`)).body.workers[0]!.stateBytes > 0, "the key-group view shows each worker's state size");

    // A feature lookup: LATEST and COMMITTED, event time, checkpoint, both equal to the expectation.
    const expected = cxExpectation(events);
    const lookup = await waitFor(async () => {
      const l = (await get<FeatureLookup>(`${base}/api/jobs/${CX_JOB}/features/received?entity=e3`)).body;
      return l.committed.found && JSON.parse(l.committed.valueJson) === expected.received.get('e3') ? l : undefined;
    }, { timeoutMs: 30_000, what: 'the committed count of e3' });
    assert.equal(JSON.parse(lookup.latest.valueJson), expected.received.get('e3'));
    assert.ok(lookup.committed.checkpointId >= 1);
    assert.equal(lookup.latest.eventTimeUnixMs, events.filter((e) => e.entityId === 'e3').at(-1)!.ts);
    assert.equal(lookup.asOf, undefined);
    const absent = (await get<FeatureLookup>(`${base}/api/jobs/${CX_JOB}/features/received?entity=nobody`)).body;
    assert.equal(absent.latest.found, false);
    // Every feature of the job for one entity; as of a time, only those that keep history answer it.
    const all = (await get<EntityLookup>(`${base}/api/jobs/${CX_JOB}/features?entity=e3&asOf=1000`)).body;
    assert.equal(all.entityId, 'e3');
    assert.deepEqual(all.features.map((f) => [f.feature, f.stageId]).sort(), [['indicators', 'indicator-state'], ['received', 'indicator-state']]);
    const byName = new Map(all.features.map((f) => [f.feature, f]));
    assert.equal(JSON.parse(byName.get('received')!.committed.valueJson), expected.received.get('e3'));
    assert.deepEqual(JSON.parse(byName.get('indicators')!.latest.valueJson), expected.latest.get('e3'));
    assert.ok(all.features.every((f) => f.asOf === undefined), 'no feature of this job keeps history');
    assert.deepEqual((await get<EntityLookup>(`${base}/api/jobs/${CX_JOB}/features?entity=nobody`)).body.features.map((f) => f.latest.found), [false, false]);

    // Errors: JSON bodies with a code, and the HTTP status that goes with it.
    const expectError = async (path: string, status: number, code: string, init?: RequestInit) => {
      const r = await get<ApiError>(`${base}${path}`, init);
      assert.equal(r.status, status, path);
      assert.equal(r.body.error.code, code, path);
      assert.ok(r.body.error.message.length > 0);
    };
    await expectError('/api/jobs/no-such-job', 404, 'NOT_FOUND');
    await expectError('/api/jobs/no-such-job/checkpoints', 404, 'NOT_FOUND');
    await expectError('/api/nothing-here', 404, 'NOT_FOUND');
    await expectError(`/api/jobs/${CX_JOB}/features/received`, 400, 'INVALID_ARGUMENT');
    await expectError(`/api/jobs/${CX_JOB}/features`, 400, 'INVALID_ARGUMENT');
    await expectError('/api/jobs/no-such-job/features?entity=e1', 404, 'NOT_FOUND');
    await expectError(`/api/jobs/${CX_JOB}/features/no-such-feature?entity=e1`, 404, 'NOT_FOUND');
    await expectError(`/api/jobs/${CX_JOB}/features/received?entity=e1&asOf=yesterday`, 400, 'INVALID_ARGUMENT');
    // As-of on a feature that keeps no history.
    await expectError(`/api/jobs/${CX_JOB}/features/received?entity=e1&asOf=1000`, 409, 'FAILED_PRECONDITION');
    await expectError('/api/jobs', 405, 'METHOD_NOT_ALLOWED', { method: 'POST' });
    await expectError('/../../etc/passwd', 404, 'NOT_FOUND');

    // The page itself and its bundle are served (built by `make ui`, or this test's build below).
    const page = await fetch(`${base}/`);
    assert.ok(page.status === 200 || page.status === 503, `the page answers 200, or 503 when not built (got ${page.status})`);
    if (page.status === 200) assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);

    // The event stream: updates every second, each with the jobs, the workers and the asked job.
    const stream = await readEvents(`${base}/api/events?job=${CX_JOB}`, 2, 10_000);
    assert.equal(stream.status, 200);
    assert.match(stream.contentType, /^text\/event-stream/);
    const [first, second] = stream.updates;
    assert.ok(second!.atUnixMs > first!.atUnixMs);
    assert.equal(first!.jobs[0]!.id, CX_JOB);
    assert.equal(first!.cluster.role, 'LEADER');
    assert.equal(first!.workers[0]!.id, 'worker-1');
    assert.equal(first!.job!.id, CX_JOB);
    assert.equal(first!.checkpoints!.jobId, CX_JOB);
    assert.equal(first!.keyGroups!.owners.length, 128);
    const plain = await readEvents(`${base}/api/events`, 1, 10_000);
    assert.equal(plain.updates[0]!.job, undefined, 'without ?job no job detail');
    const refused = await get<ApiError>(`${base}/api/events?job=no-such-job`);
    assert.equal(refused.status, 404);
    assert.equal(refused.body.error.code, 'NOT_FOUND');
  } finally {
    await nc?.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('dashboard API - every coordinator serves it at 127.0.0.1:7480 unless told otherwise', () => {
  const o = compileCoordinatorOptions({ natsServers: 'nats://127.0.0.1:4222', storeUrl: '/tmp/eddy-store', logger: silentLogger });
  assert.equal(o.httpAddress, '127.0.0.1:7480');
  assert.equal(compileCoordinatorOptions({ natsServers: 'nats://127.0.0.1:4222', storeUrl: '/tmp/eddy-store', logger: silentLogger, httpAddress: '' }).httpAddress, '', '"" (--http off) turns it off');
});

test('dashboard API - the authorize hook decides every request; the default answers loopback only', { timeout: 60_000 }, async () => {
  // The default, on requests from elsewhere and from loopback.
  const from = (remoteAddress: string) => ({ socket: { remoteAddress } }) as unknown as http.IncomingMessage;
  assert.equal((await allowLoopback(from('10.1.2.3'))).allow, false);
  assert.equal((await allowLoopback(from('::ffff:192.168.0.9'))).allow, false);
  assert.equal((await allowLoopback(from('127.0.0.1'))).allow, true);
  assert.equal((await allowLoopback(from('::1'))).allow, true);

  // A coordinator given a hook (as the gRPC API's bearer tokens will be): it decides, the routes do not.
  await using nats = await startNatsServer();
  const store = await mkdtemp(join(tmpdir(), 'eddy-dashboard-auth-'));
  const coordinator = await Coordinator.start({
    natsServers: nats.url,
    grpcAddress: '127.0.0.1:0',
    httpAddress: '127.0.0.1:0',
    storeUrl: store,
    authorizeHttp: (req) =>
      req.headers.authorization === 'Bearer let-me-in' ? { allow: true } : { allow: false, status: 401, message: 'a bearer token is required' },
    logger: silentLogger,
  });
  try {
    const base = `http://${coordinator.httpAddress}`;
    const denied = await get<ApiError>(`${base}/api/jobs`);
    assert.equal(denied.status, 401);
    assert.deepEqual(denied.body, { error: { code: 'UNAUTHENTICATED', message: 'a bearer token is required' } });
    assert.equal((await fetch(`${base}/api/events`)).status, 401, 'the event stream too');
    assert.equal((await fetch(`${base}/`)).status, 401, 'the page too');
    const allowed = await get<JobSummary[]>(`${base}/api/jobs`, { headers: { Authorization: 'Bearer let-me-in' } });
    assert.equal(allowed.status, 200);
    assert.deepEqual(allowed.body, []);
  } finally {
    await coordinator.close();
    await rm(store, { recursive: true, force: true });
  }
});

test('dashboard API - with gRPC tokens configured, the dashboard takes them: reader and admin tokens read, a wrong token is 401', { timeout: 60_000 }, async () => {
  await using nats = await startNatsServer();
  const store = await mkdtemp(join(tmpdir(), 'eddy-dashboard-tokens-'));
  const reader = generateToken();
  const admin = generateToken();
  const coordinator = await Coordinator.start({
    natsServers: nats.url,
    grpcAddress: '127.0.0.1:0',
    httpAddress: '127.0.0.1:0',
    storeUrl: store,
    grpcTokens: parseTokensFile([formatTokenLine('serving', 'reader', reader), formatTokenLine('ops', 'admin', admin)].join('\n')),
    logger: silentLogger,
  });
  try {
    const base = `http://${coordinator.httpAddress}`;
    for (const token of [reader, admin]) {
      const r = await get<JobSummary[]>(`${base}/api/jobs`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
    }
    const wrong = await get<ApiError>(`${base}/api/jobs`, { headers: { Authorization: `Bearer ${generateToken()}` } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.message.includes('eddy_'), false, 'the refusal does not echo the token');
    assert.equal((await fetch(`${base}/api/events`, { headers: { Authorization: 'Bearer nope' } })).status, 401, 'the event stream too');
    // Without a header, a loopback browser is answered (it cannot send one on an EventSource).
    assert.equal((await get<JobSummary[]>(`${base}/api/jobs`)).status, 200);
  } finally {
    await coordinator.close();
    await rm(store, { recursive: true, force: true });
  }
});

test('dashboard API - the graph of a job with several sources, a connect, a broadcast and a side output', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-dashboard-graph-'));
  try {
    const { manifest } = await buildBundle(join(REPO_ROOT, 'test/fixtures/graph-job.ts'), dir);
    const { nodes, edges } = jobGraph(manifest);
    assert.deepEqual(nodes.filter((n) => n.kind === 'stage').map((n) => n.id).sort(), manifest.stages.map((s) => s.id).sort());
    assert.deepEqual(nodes.filter((n) => n.kind === 'source').map((n) => n.label).sort(), manifest.sources.map((s) => s.stream).sort());
    assert.equal(nodes.filter((n) => n.kind === 'sink').length, manifest.stages.reduce((n, s) => n + s.sinks.length, 0));
    const ids = new Set(nodes.map((n) => n.id));
    for (const e of edges) assert.ok(ids.has(e.from) && ids.has(e.to), `edge ${e.from} → ${e.to}`);
    const into = (stage: string) => edges.filter((e) => e.to === stage);
    // The keyed stages' inputs: the connect of two keyed streams, and keyed plus broadcast rules.
    assert.ok(into('ledger').filter((e) => e.kind === 'shuffle').length >= 2, 'ledger takes orders and payments by key');
    assert.deepEqual(into('alerts').map((e) => e.kind).sort(), ['broadcast', 'shuffle']);
    // The side output `applied`, mapped and sunk, is labelled on its edge.
    assert.ok(edges.some((e) => e.from === 'alerts' && e.kind === 'side' && e.label === 'applied'), JSON.stringify(edges.filter((e) => e.from === 'alerts')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('dashboard API - the checkpoint history marks the slow ones against the median and keeps the newest', () => {
  const history = new JobHistory({ maxCheckpoints: 5 });
  const completed = (checkpointId: number, durationMs: number) =>
    history.record({ type: 'checkpoint-completed', jobId: 'j', checkpointId, epoch: 1, startedAtUnixMs: checkpointId * 1000, durationMs, bytes: 10, workers: [] });
  [100, 110, 90, 500].forEach((ms, i) => completed(i + 1, ms));
  history.record({ type: 'checkpoint-failed', jobId: 'j', checkpointId: 5, epoch: 1, startedAtUnixMs: 5000, reason: 'worker w-1: store down' });
  completed(6, 120);
  const { history: list, medianDurationMs } = history.checkpoints('j', 2);
  assert.deepEqual(list.map((c) => c.id), [2, 3, 4, 5, 6], 'the five newest');
  assert.equal(medianDurationMs, 120);
  assert.deepEqual(list.filter((c) => c.slow).map((c) => c.id), [4]);
  assert.equal(list.find((c) => c.id === 5)!.status, 'FAILED');
  assert.equal(list.find((c) => c.id === 5)!.slow, false);
  assert.deepEqual(history.checkpoints('unknown', 2), { history: [], medianDurationMs: 0 });
});
