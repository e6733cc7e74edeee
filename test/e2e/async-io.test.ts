// Async I/O end to end: real worker processes call a real HTTP server that this test starts.
// The job (test/fixtures/async-job.ts) enriches records in order before a keyed stage that
// numbers each key's records, then scores them unordered after it, into an exactly-once
// JetStream sink and a files sink. Expectations are computed here from the input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startCluster, waitFor, readStream, REPO_ROOT, clusterStore, readPartFiles, type Cluster } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import type { In, Out } from '../fixtures/async-job.ts';

const sum = (id: string) => [...id].reduce((a, c) => a + c.charCodeAt(0), 0);
const enrichedOf = (id: string) => (sum(id) * 7) % 10007;
const scoreOf = (id: string) => (sum(id) * 13) % 1009;
/** Scored slowly enough that the same key's next record, scored at once, overtakes them. */
const OVERTAKEN = new Set(['k0-13', 'k3-15', 'k5-17']);

/** The enrichment service: lane a (enrich) and b (score), with concurrency and attempts observed. */
class Service {
  readonly server: Server;
  readonly concurrent = { a: 0, b: 0 };
  readonly maxConcurrent = { a: 0, b: 0 };
  /** Requests per lane and id. */
  readonly requests = new Map<string, number>();
  /** Ids whose slow request was abandoned by the caller (the attempt's signal aborted it). */
  readonly aborted = new Set<string>();
  url = '';

  constructor() {
    this.server = createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const lane = url.pathname === '/a' ? 'a' : 'b';
    const id = url.searchParams.get('id') ?? '';
    const mode = url.searchParams.get('mode') ?? 'ok';
    const attempt = Number(url.searchParams.get('attempt'));
    this.requests.set(`${lane}/${id}`, (this.requests.get(`${lane}/${id}`) ?? 0) + 1);
    this.concurrent[lane]++;
    this.maxConcurrent[lane] = Math.max(this.maxConcurrent[lane], this.concurrent[lane]);
    let open = true;
    const finish = (status: number, body: unknown) => {
      if (!open) return;
      open = false;
      this.concurrent[lane]--;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    res.on('close', () => {
      if (!open) return;
      open = false;
      this.concurrent[lane]--;
      this.aborted.add(id);
    });
    if (lane === 'a') {
      if (mode === 'bad') return finish(500, { error: 'bad' });
      if (mode === 'flaky' && attempt < 3) return finish(503, { error: 'try again' });
      // Far past the job's 1 s time-out: only an aborted attempt ends this one early.
      if (mode === 'slow' && attempt === 1) return void setTimeout(() => finish(200, { enriched: -1 }), 8000).unref();
      setTimeout(() => finish(200, { enriched: enrichedOf(id) }), Math.random() * 15);
      return;
    }
    // Lane b: every other record of a key takes 80 ms, so that calls overlap up to the capacity.
    // Records reach the scorer interleaved by key when the pipeline keeps up, six apart, so the
    // 80 ms alone rarely lets a key's next record overtake; the few held for a second do, unless
    // a barrier (which waits for the calls in flight) falls right behind each of them.
    const n = Number(/-(\d+)$/.exec(id)?.[1] ?? 0);
    const delayMs = OVERTAKEN.has(id) ? 1000 : n % 2 === 1 ? 80 : Math.random() * 5;
    setTimeout(() => finish(200, { score: scoreOf(id) }), delayMs);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function submit(client: EddyClient, fixture: string, name: string, cache: string): Promise<void> {
  const bundle = await buildBundle(join(REPO_ROOT, fixture), cache);
  await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
  await waitFor(async () => (await client.getJob(name)).state === 'RUNNING', { timeoutMs: 30_000, what: `${name} to run` });
}

async function publishAll(nc: NatsConnection, stream: string, records: unknown[]): Promise<void> {
  const js = jetstream(nc);
  await Promise.all(records.map((r) => js.publish(`${stream}.0`, JSON.stringify(r))));
}

/** The expected output: each key's records (the dead-lettered excepted) numbered in input order. */
function expectedOut(input: In[]): Map<string, { key: string; n: number; enriched: number; score: number }> {
  const n = new Map<string, number>();
  const out = new Map<string, { key: string; n: number; enriched: number; score: number }>();
  for (const r of input) {
    if (r.mode === 'bad') continue;
    const k = (n.get(r.key) ?? 0) + 1;
    n.set(r.key, k);
    out.set(r.id, { key: r.key, n: k, enriched: enrichedOf(r.id), score: scoreOf(r.id) });
  }
  return out;
}

const view = (o: Out) => ({ key: o.key, n: o.n, enriched: o.enriched, score: o.score });

test('async I/O - ordered and unordered asyncMap against a real HTTP server: capacity, time-outs, retries, dead letters, a failing job', { timeout: 120_000 }, async () => {
  const service = new Service();
  await service.start();
  let cluster: Cluster;
  try {
    cluster = await startCluster({ workers: 1, env: { EDDY_TEST_ENRICH_URL: service.url } });
  } catch (e) {
    await service.stop();
    throw e;
  }
  const dir = await mkdtemp(join(tmpdir(), 'eddy-async-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 1, { timeoutMs: 15_000, what: 'a live worker' });
    await submit(client, 'test/fixtures/async-job.ts', 'async-io', join(dir, 'cache'));
    // 6 keys x 20 records; ids end with the record's index within its key.
    const input: In[] = [];
    for (let i = 0; i < 20; i++) {
      for (let k = 0; k < 6; k++) {
        const id = `k${k}-${i}`;
        const mode = id === 'k1-3' || id === 'k4-10' ? 'flaky' : id === 'k2-5' || id === 'k5-1' ? 'slow' : id === 'k3-7' || id === 'k0-12' ? 'bad' : 'ok';
        input.push({ id, key: `k${k}`, mode });
      }
    }
    // Numbering in the expectation follows the ids' indexes minus the dead-lettered before them.
    await publishAll(nc, 'async-in', input);
    const expected = expectedOut(input);
    const out = await waitFor(async () => {
      const o = (await readStream(nc, 'ASYNC_OUT')).map((m) => JSON.parse(m.data) as Out);
      return o.length >= expected.size ? o : undefined;
    }, { timeoutMs: 60_000, what: `${expected.size} outputs` });
    // Every record once, with its key's number in input order: the ordered enrichment kept each
    // key's order although its calls finished in any order and some were retried.
    assert.equal(out.length, expected.size, 'no duplicate');
    assert.deepEqual(new Map(out.map((o) => [o.id, view(o)])), expected);
    const byId = new Map(out.map((o) => [o.id, o]));
    // Retries: the flaky records succeeded on their third attempt; the slow ones timed out once
    // (their request was aborted by the attempt's signal) and succeeded on the second.
    assert.equal(byId.get('k1-3')!.attempt, 3);
    assert.equal(byId.get('k4-10')!.attempt, 3);
    assert.equal(service.requests.get('a/k1-3'), 3);
    assert.ok(byId.get('k2-5')!.attempt >= 2 && byId.get('k5-1')!.attempt >= 2, 'slow records were retried after their time-out');
    await waitFor(() => service.aborted.has('k2-5') && service.aborted.has('k5-1'), { timeoutMs: 10_000, what: 'the timed-out requests to be aborted' });
    // Capacity: one source task (capacity 4) and one keyed task (capacity 3).
    assert.ok(service.maxConcurrent.a <= 4 && service.maxConcurrent.a >= 2, `enrich calls in flight at once: ${service.maxConcurrent.a} (capacity 4)`);
    assert.ok(service.maxConcurrent.b <= 3 && service.maxConcurrent.b >= 2, `score calls in flight at once: ${service.maxConcurrent.b} (capacity 3)`);
    // Unordered: some key's results left the scorer out of their order.
    const emittedOrder = new Map<string, number[]>();
    for (const o of out) emittedOrder.set(o.key, [...(emittedOrder.get(o.key) ?? []), o.n]);
    assert.ok([...emittedOrder.values()].some((ns) => ns.some((x, i) => i > 0 && x < ns[i - 1]!)), 'unordered results overtook each other');
    // Dead letters: the records the enricher kept refusing, with the reason.
    const dead = await waitFor(async () => {
      const d = (await readStream(nc, 'EDDY_DLQ', 'eddy.dlq.async-io')).map((m) => JSON.parse(m.data) as { record: In; reason: string; operator: string; stageId: string });
      return d.length >= 2 ? d : undefined;
    }, { timeoutMs: 20_000, what: 'two dead letters' });
    assert.deepEqual(dead.map((d) => d.record.id).sort(), ['k0-12', 'k3-7']);
    for (const d of dead) {
      assert.equal(d.operator, 'enrich');
      assert.equal(d.stageId, 'source-async-in');
      assert.match(d.reason, /failed after 3 attempt\(s\): a answered 500/);
    }
    assert.equal(service.requests.get('a/k3-7'), 3, 'three attempts before the dead letter');
    // The files sink holds the same records once the checkpoints that wrote them completed.
    const store = clusterStore(cluster);
    const parts = await waitFor(async () => {
      const p = await readPartFiles(store, 'exports/async-io');
      return p.reduce((n, f) => n + f.lines.length, 0) >= expected.size ? p : undefined;
    }, { timeoutMs: 30_000, what: 'part files with every record' });
    const lines = parts.flatMap((p) => p.lines.map((l) => JSON.parse(l) as Out));
    assert.equal(lines.length, expected.size, 'no duplicate in the files');
    assert.deepEqual(new Map(lines.map((o) => [o.id, view(o)])), expected);

    // onFailure "fail": the job fails (no restarts) and says where.
    await submit(client, 'test/fixtures/async-fail-job.ts', 'async-fail', join(dir, 'cache'));
    await publishAll(nc, 'async-fail-in', [{ id: 'x1' }]);
    const failed = await waitFor(async () => {
      const j = await client.getJob('async-fail');
      return j.state === 'FAILED' ? j : undefined;
    }, { timeoutMs: 30_000, what: 'async-fail to fail' });
    assert.equal(failed.lastFailure?.stageId, 'source-async-fail-in');
    assert.match(failed.lastFailure?.message ?? '', /user function lookup of stage source-async-fail-in \(job async-fail, key group -1\) threw: failed after 2 attempt\(s\): lookup of x1 refused/);
    assert.equal((await client.getJob('async-io')).state, 'RUNNING', 'the other job runs on');
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await service.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
