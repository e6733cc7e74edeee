// A checkpoint that times out while a worker is still aligning its barriers is aborted, and the
// next one goes on without a recovery (docs/ARCHITECTURE.md, "Checkpoints"). One key's records are
// slow, so one key group holds barrier N back for longer than the checkpoint time-out while the
// other key groups (on both workers) have aligned. The coordinator aborts N and triggers N + 1: a
// worker still cutting N must give it up for N + 1, and a keyed task that gets barrier N + 1 on a
// channel while aligning N must cancel N's alignment (as Flink does), not fail the job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, readStream, REPO_ROOT } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { BulkPublisher } from '../../core/jetstream-publisher.ts';
import { partitionForKey } from '../../core/key-groups.ts';
import { SLOW_JOB, SLOW_PARTITIONS, type SlowEcho, type SlowEvent } from '../fixtures/slow-align-job.ts';

const KEYS = 40;
const SLOW_KEY = 'k-slow';
/** Slow records and how long each takes: 30 × 150 ms holds a barrier back ~4.5 s, past the 1.5 s time-out. */
const SLOW_RECORDS = 30;
const SLOW_MS = 150;

function events(): SlowEvent[] {
  const out: SlowEvent[] = [];
  let id = 0;
  for (let i = 0; i < 1500; i++) out.push({ id: id++, key: `k${i % KEYS}` });
  for (let i = 0; i < SLOW_RECORDS; i++) {
    out.push({ id: id++, key: SLOW_KEY, slowMs: SLOW_MS });
    for (let j = 0; j < 20; j++) out.push({ id: id++, key: `k${(i * 20 + j) % KEYS}` });
  }
  for (let i = 0; i < 1500; i++) out.push({ id: id++, key: `k${i % KEYS}` });
  return out;
}

test('checkpoint - a checkpoint that times out while barriers are being aligned is aborted, and the next one goes on without a recovery', { timeout: 180_000 }, async (t) => {
  // Checkpoints go on after the timed-out one, idle or not: a checkpoint every interval.
  const cluster = await startCluster({ workers: 2, workerTimeoutMs: 10_000, checkpointIntervalMs: 300, checkpointTimeoutMs: 1500, skipIdleCheckpoints: false });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-cp-timeout-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const input = events();
  let passed = false;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/slow-align-job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    // Both workers read a split and own key groups: barriers cross between them.
    await waitFor(async () => {
      const j = await client.getJob(SLOW_JOB);
      const workers = (await client.listWorkers()).filter((w) => w.assignments.some((a) => a.jobId === SLOW_JOB && a.keyGroups.length > 0 && a.sourceSplits.length > 0));
      return j.state === 'RUNNING' && Number(j.checkpoints!.latestId) >= 1 && workers.length === 2;
    }, { timeoutMs: 30_000, what: 'the job running on both workers, a checkpoint completed' });
    const before = await client.getJob(SLOW_JOB);

    const publisher = new BulkPublisher(nc);
    const encoder = new TextEncoder();
    for (const e of input) publisher.publishNow(`slow-events.${partitionForKey(e.key, SLOW_PARTITIONS)}`, encoder.encode(JSON.stringify(e)));
    await publisher.flush();
    publisher.close();

    // Every record echoed once (or a recovery: the failure this test is about), and checkpoints
    // completing again after the slow ones.
    await waitFor(async () => (await client.getJob(SLOW_JOB)).restarts > 0 || (await readStream(nc, 'SLOW_OUT')).length >= input.length, { timeoutMs: 90_000, what: `${input.length} echoes` });
    const done = await client.getJob(SLOW_JOB);
    assert.equal(done.restarts, 0, `no recovery (last failure: ${done.lastFailure?.message ?? 'none'})`);
    await waitFor(async () => Number((await client.getJob(SLOW_JOB)).checkpoints!.latestId) >= Number(done.checkpoints!.latestId) + 2, { timeoutMs: 30_000, what: 'two more completed checkpoints' });
    const after = await client.getJob(SLOW_JOB);
    t.diagnostic(`checkpoints failed during the slow records: ${Number(after.checkpoints!.failed) - Number(before.checkpoints!.failed)} (last: ${after.checkpoints!.lastFailure}); restarts: ${after.restarts}`);
    assert.ok(Number(after.checkpoints!.failed) > Number(before.checkpoints!.failed), 'a checkpoint timed out while the slow key group held its barrier');
    assert.equal(after.restarts, 0, `no recovery (last failure: ${after.lastFailure?.message ?? 'none'})`);

    const echoes = (await readStream(nc, 'SLOW_OUT')).map((m) => JSON.parse(m.data) as SlowEcho);
    const ids = new Set(echoes.map((e) => e.id));
    assert.equal(ids.size, input.length, 'every record echoed');
    assert.equal(echoes.length, input.length, 'none twice');
    // Each key's running count went up by one per record, in order: no state lost or applied twice.
    const counts = new Map<string, number[]>();
    for (const e of echoes) counts.set(e.key, [...(counts.get(e.key) ?? []), e.n]);
    for (const [key, ns] of counts) assert.deepEqual([...ns].sort((a, b) => a - b), Array.from({ length: ns.length }, (_, i) => i + 1), `counts of ${key}`);
    passed = true;
  } finally {
    if (!passed) {
      const j = await client.getJob(SLOW_JOB).catch(() => undefined);
      t.diagnostic(`job: ${j?.state} epoch ${j?.epoch}, restarts ${j?.restarts}, last failure: ${j?.lastFailure?.message}; checkpoints ${JSON.stringify(j?.checkpoints)}`);
      for (const w of cluster.workers) t.diagnostic(`${w.name}: ${w.output().split('\n').filter((l) => /"level":[4-6]0/.test(l)).slice(-15).join('\n')}`);
    }
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
