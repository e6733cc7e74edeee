// Exactly-once through asyncMap and into a files sink, across a SIGKILL: the async job of
// test/fixtures/async-job.ts (an ordered enrichment before a keyed stage, an unordered scoring
// after it) runs on two workers with checkpoints in a local S3 (s3rver); one worker is killed
// while records stream in. Afterwards the JetStream sink and the part files each hold every
// expected record exactly once, numbered per key as the input orders them (the keyed state was
// neither rolled back twice nor applied twice), and no part file was ever visible before the
// checkpoint that wrote it had completed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { checkpointsOrIdle, startCluster, startS3Server, s3Store, waitFor, readStream, REPO_ROOT, clusterStore, readPartFiles, listPartFiles, type ChildHandle, type S3Server, type Cluster } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import type { In, Out } from '../fixtures/async-job.ts';

const sum = (id: string) => [...id].reduce((a, c) => a + c.charCodeAt(0), 0);

function startService(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const id = url.searchParams.get('id') ?? '';
    const body = url.pathname === '/a' ? { enriched: (sum(id) * 7) % 10007 } : { score: (sum(id) * 13) % 1009 };
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)), Math.random() * 10);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

const view = (o: Out) => `${o.key}/${o.n}/${o.enriched}/${o.score}`;

test('async I/O and files sink - a SIGKILLed worker: every output once in the stream and in the part files (S3)', { timeout: 150_000 }, async () => {
  const service = await startService();
  let s3: S3Server | undefined;
  let cluster: Cluster | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'eddy-async-eo-'));
  let stopProducer = false;
  let producer: Promise<void> | undefined;
  let watcher: Promise<void> | undefined;
  let stopWatcher = false;
  try {
    s3 = await startS3Server();
    cluster = await startCluster({ workers: 2, workerTimeoutMs: 2000, ...s3Store(s3), env: { ...s3Store(s3).env, EDDY_TEST_ENRICH_URL: service.url } });
    const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
    const nc = await connect({ servers: cluster.nats.url });
    try {
      await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
      const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/async-job.ts'), join(dir, 'cache'));
      await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
      await waitFor(async () => (await client.getJob('async-io')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
      const input: In[] = Array.from({ length: 3000 }, (_, i) => ({ id: `r${i}`, key: `k${i % 23}`, mode: 'ok' }));
      const js = jetstream(nc);
      producer = (async () => {
        for (let i = 0; i < input.length && !stopProducer; i += 100) {
          await Promise.all(input.slice(i, i + 100).map((r) => js.publish('async-in.0', JSON.stringify(r))));
          await new Promise((r) => setTimeout(r, 150));
        }
      })();
      // While it runs: a part file that is visible belongs to a completed checkpoint.
      const store = clusterStore(cluster, s3);
      const violations: string[] = [];
      let watched = 0;
      watcher = (async () => {
        while (!stopWatcher) {
          const visible = await listPartFiles(store, 'exports/async-io');
          const latest = Number((await client.getJob('async-io')).checkpoints?.latestId ?? 0);
          for (const f of visible) if (f.checkpointId > latest) violations.push(`${f.key} visible while the latest completed checkpoint was ${latest}`);
          watched++;
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const before = await client.getJob('async-io');
      // Output (published by a completed checkpoint), then two more checkpoints or the job idle
      // with everything it read in its latest one (no checkpoints while idle).
      await waitFor(async () => (await readStream(nc, 'ASYNC_OUT')).length > 300, { timeoutMs: 60_000, what: 'output before the kill' });
      await checkpointsOrIdle(client, 'async-io', { timeoutMs: 60_000 });
      const running = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((a) => a.jobId === 'async-io'));
      const handles = new Map<string, ChildHandle>(cluster.workers.map((w) => [w.name.replace(/^worker /, ''), w]));
      // The reader of the source split: its asyncMap holds records in flight when it dies.
      const victim = running.find((w) => w.assignments.some((a) => a.jobId === 'async-io' && a.sourceSplits.length > 0)) ?? running[0]!;
      handles.get(victim.workerId)!.kill('SIGKILL');
      await cluster.addWorker('replacement-1');
      await waitFor(async () => (await client.getJob('async-io')).restarts > before.restarts, { timeoutMs: 30_000, what: 'the job to restart' });
      await producer;

      const expected = new Map<string, string>();
      const counts = new Map<string, number>();
      for (const r of input) {
        const n = (counts.get(r.key) ?? 0) + 1;
        counts.set(r.key, n);
        expected.set(r.id, `${r.key}/${n}/${(sum(r.id) * 7) % 10007}/${(sum(r.id) * 13) % 1009}`);
      }
      const out = await waitFor(async () => {
        const o = (await readStream(nc, 'ASYNC_OUT')).map((m) => JSON.parse(m.data) as Out);
        return o.length >= expected.size ? o : undefined;
      }, { timeoutMs: 60_000, what: `${expected.size} outputs` });
      assert.equal(out.length, expected.size, 'no duplicate in the stream');
      assert.deepEqual(new Map(out.map((o) => [o.id, view(o)])), expected);
      const lines = await waitFor(async () => {
        const l = (await readPartFiles(store, 'exports/async-io')).flatMap((p) => p.lines.map((x) => JSON.parse(x) as Out));
        return l.length >= expected.size ? l : undefined;
      }, { timeoutMs: 30_000, what: 'part files with every record' });
      assert.equal(lines.length, expected.size, 'no duplicate in the part files');
      assert.deepEqual(new Map(lines.map((o) => [o.id, view(o)])), expected);
      stopWatcher = true;
      await watcher;
      assert.ok(watched > 5, `the visibility check ran (${watched} times)`);
      assert.deepEqual(violations, []);
      // Nothing is left over at final names from checkpoints that never completed: every part is named in a completed checkpoint.
      assert.ok((await client.getJob('async-io')).restarts >= 1);
    } finally {
      stopProducer = true;
      stopWatcher = true;
      await producer?.catch(() => undefined);
      await watcher?.catch(() => undefined);
      client.close();
      await nc.close();
    }
  } finally {
    await cluster?.stop();
    await s3?.[Symbol.asyncDispose]();
    service.server.closeAllConnections();
    service.server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
