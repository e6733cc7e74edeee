// Jobs isolated in worker threads (worker/isolated-job.ts; issue 12), with real processes: beside
// a healthy job on the same worker, a job whose process function never returns, a job whose
// bundle never finishes its top level, a job that allocates without bound and a job that looks
// around. The bad jobs fail alone with a clear error within their limits, the healthy job's
// results are exact and its progress goes on (its dip is measured and printed), the probe shows
// what a job's code sees, and SIGTERM still stops the worker cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startCluster, waitFor, REPO_ROOT } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { partitionForKey } from '../../core/key-groups.ts';

const SECRET = 'the-cluster-s3-secret';
const IDS = Array.from({ length: 20 }, (_, i) => `h-${i}`);

async function submit(client: EddyClient, fixture: string, cache: string): Promise<void> {
  // `eddy build` evaluates the bundle; the top-level-loop fixture loops only without this.
  process.env.EDDY_TEST_BUILDING = '1';
  const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/isolation', fixture), cache);
  await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
}

async function findDir(root: string, name: string): Promise<string | undefined> {
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isDirectory() && entry.name === name) return join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
  }
  return undefined;
}

function firstMessage(nc: NatsConnection, subject: string): Promise<unknown> {
  return new Promise((resolve) => {
    const sub = nc.subscribe(subject, { max: 1, callback: (_e, m) => resolve(m.json()) });
    void sub;
  });
}

test('job isolation - a looping function, a looping bundle and a memory hog fail alone within their limits; the healthy job beside them is exact; SIGTERM stops the worker', { timeout: 240_000 }, async (t) => {
  const cluster = await startCluster({ workers: 1, env: { EDDY_JOB_ISOLATION: 'thread', EDDY_MAX_HEAP_MB: '160', AWS_SECRET_ACCESS_KEY: SECRET, EDDY_TEST_DECLARED: 'declared-value' } });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-iso-'));
  const cache = join(dir, 'cache');
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const js = jetstream(nc);
  let publishing = true;
  let published = 0;
  const expected = new Map<string, number>();
  try {
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 30_000, what: 'a live worker' });
    await submit(client, 'healthy-job.ts', cache);
    await waitFor(async () => (await client.getJob('iso-healthy')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the healthy job to run' });

    // A steady input for the healthy job while the others misbehave: 40 records every 100 ms.
    const feeder = (async () => {
      while (publishing) {
        const sends: Array<Promise<unknown>> = [];
        for (let i = 0; i < 40; i++) {
          const id = IDS[(published + i) % IDS.length]!;
          const n = ((published + i) % 5) + 1;
          expected.set(id, (expected.get(id) ?? 0) + n);
          sends.push(js.publish(`iso-healthy-in.${partitionForKey(id, 2)}`, JSON.stringify({ id, n })));
        }
        await Promise.all(sends);
        published += 40;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    // Progress of the healthy job (its keyed stage's records in, from heartbeats) every 500 ms.
    const samples: Array<{ atMs: number; records: number }> = [];
    const t0 = Date.now();
    const sampler = setInterval(() => {
      void client.getJob('iso-healthy').then((j) => {
        const keyed = j.stages.find((s) => s.stageId === 'counts');
        samples.push({ atMs: Date.now() - t0, records: Number(keyed?.recordsIn ?? 0) });
      }, () => undefined);
    }, 500);
    await waitFor(() => published >= 400, { timeoutMs: 30_000, what: 'the healthy job\'s input to flow' });

    // The bad jobs, beside it on the same worker.
    const badFrom = Date.now() - t0;
    await submit(client, 'loop-job.ts', cache);
    await waitFor(async () => (await client.getJob('iso-loop')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the looping job to run' });
    const loopAt = Date.now();
    await js.publish('iso-loop-in.0', JSON.stringify({ id: 'x', loop: true }));
    await submit(client, 'memory-job.ts', cache);
    await waitFor(async () => (await client.getJob('iso-memory')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the memory job to run' });
    await js.publish('iso-memory-in.0', JSON.stringify({ id: 'm', hog: true }));
    const topAt = Date.now();
    await submit(client, 'top-level-loop-job.ts', cache).catch((e: Error) => e);

    const loopFailed = await waitFor(async () => {
      const j = await client.getJob('iso-loop');
      return j.state === 'FAILED' ? j : undefined;
    }, { timeoutMs: 30_000, what: 'the looping job to fail' });
    // From the looping record's publish to the failure the worker reported: maxCallMs (3 s) plus
    // the watchdog's period and the record's way there.
    const loopMs = Number(loopFailed.lastFailure?.atUnixMs ?? 0) - loopAt;
    assert.ok(loopMs >= 3000 && loopMs < 10_000, `the looping job failed ${loopMs} ms after its record`);
    assert.match(loopFailed.lastFailure?.message ?? '', /job iso-loop held its thread for more than 3000 ms \(limits\.maxCallMs\) in stage spin, key group \d+, processing a record from split 0, sequence 1; its thread on worker worker-1 was stopped/);
    assert.equal(loopFailed.lastFailure?.stageId, 'spin');

    const topFailed = await waitFor(async () => {
      const j = await client.getJob('iso-top-level-loop');
      return j.state === 'FAILED' ? j : undefined;
    }, { timeoutMs: 30_000, what: 'the top-level-loop job to fail' });
    const topMs = Number(topFailed.lastFailure?.atUnixMs ?? 0) - topAt;
    assert.match(topFailed.lastFailure?.message ?? '', /held its thread for more than 3000 ms .* while importing its bundle/);

    const memoryFailed = await waitFor(async () => {
      const j = await client.getJob('iso-memory');
      return j.state === 'FAILED' ? j : undefined;
    }, { timeoutMs: 60_000, what: 'the memory job to fail' });
    assert.match(memoryFailed.lastFailure?.message ?? '', /job iso-memory reached its heap limit of 160 MB \(limits\.maxHeapMb\) in stage source-iso-memory-in at the record of stream iso-memory-in partition 0, sequence 1/);

    // What a job's code sees: only the variables it declared; another job's state directory is
    // readable (same process, same user: not enforced by a thread, see README "Isolation").
    const healthyState = await findDir(cluster.dataDir, 'iso-healthy');
    assert.ok(healthyState, 'the healthy job has a state directory');
    await submit(client, 'probe-job.ts', cache);
    await waitFor(async () => (await client.getJob('iso-probe')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the probe to run' });
    const seen = firstMessage(nc, 'iso.probe.out');
    await nc.flush();
    await js.publish('iso-probe-in.0', JSON.stringify({ id: 'p', otherStateDir: healthyState }));
    const probe = (await seen) as { env: Record<string, string>; listing: string[] | string };
    t.diagnostic(`probe: process.env = ${JSON.stringify(probe.env)}; another job's state directory ${healthyState} lists as ${JSON.stringify(probe.listing)}`);
    assert.deepEqual(probe.env, { EDDY_TEST_DECLARED: 'declared-value' }, 'only the declared variable; no AWS_SECRET_ACCESS_KEY');

    publishing = false;
    await feeder;
    clearInterval(sampler);
    const badTo = Date.now() - t0;
    // Exact results of the healthy job, and its progress while the others failed.
    await waitFor(async () => {
      const values = await client.batchGet('iso-healthy', 'count', IDS, 'latest');
      return values.every((v) => v.found && JSON.parse(v.valueJson) === expected.get(v.entityId));
    }, { timeoutMs: 60_000, what: 'every healthy count to equal its input' });
    const healthy = await client.getJob('iso-healthy');
    assert.equal(healthy.state, 'RUNNING');
    assert.equal(Number(healthy.restarts ?? 0), 0, 'the healthy job never restarted');
    const rates: number[] = [];
    const before = samples.filter((x) => x.atMs <= badFrom);
    const baseline = before.length >= 2 ? ((before.at(-1)!.records - before[0]!.records) * 1000) / (before.at(-1)!.atMs - before[0]!.atMs) : Number.NaN;
    let longestStallMs = 0;
    let stallFrom: number | undefined;
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1]!;
      const b = samples[i]!;
      const inWindow = b.atMs >= badFrom && a.atMs <= badTo;
      if (!inWindow) continue;
      rates.push(((b.records - a.records) * 1000) / (b.atMs - a.atMs));
      if (b.records === a.records) stallFrom ??= a.atMs;
      else if (stallFrom !== undefined) {
        longestStallMs = Math.max(longestStallMs, a.atMs - stallFrom);
        stallFrom = undefined;
      }
    }
    const sorted = [...rates].sort((x, y) => x - y);
    t.diagnostic(`healthy job before the bad ones: ${baseline.toFixed(0)} records/s; while they ran (${((badTo - badFrom) / 1000).toFixed(1)} s, input 400 records/s), per 0.5 s sample: median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)}/s, lowest ${sorted[0]?.toFixed(0)}/s, longest stall ${longestStallMs} ms; looping function failed ${loopMs} ms after its record, looping bundle ${topMs} ms after its build and submit began`);
    assert.ok(longestStallMs < 10_000, `the healthy job stalled ${longestStallMs} ms`);

    // SIGTERM still stops the worker on its own (no SIGKILL needed).
    const worker = cluster.workers[0]!;
    worker.kill('SIGTERM');
    const status = await Promise.race([worker.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 30_000))]);
    assert.ok(status !== undefined, 'the worker exited within 30 s of SIGTERM');
    assert.equal(status.signal, null, 'it exited by itself, not by a signal');
    assert.equal(status.code, 0);
  } finally {
    publishing = false;
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
