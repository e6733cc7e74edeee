// Event time end to end with real processes (nats-server, a coordinator, two workers): timestamps
// assigned at the source, bounded-out-of-orderness watermarks sent in-band, the minimum over
// channels, idle splits, event-time timers in the state store, and late records. The input is
// crafted (out of order within the bound, late after the watermark passed) and the expectation is
// computed here, independently of the job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startCluster, waitFor, REPO_ROOT } from '../kit/index.ts';
import { readStreamDirect } from '../kit/read-stream-direct.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import type { BucketOutput, Tick } from '../fixtures/event-time-buckets.ts';

const T0 = 1_700_000_000_000; // a multiple of 10 s
const BUCKET_MS = 10_000;

function rng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

/**
 * Ticks of a partition with event times from fromMs to toMs, in order except that each tick may
 * be moved up to 900 ms behind the largest time before it: within the sources' 1 s bound, so on time.
 */
function ticks(users: string[], fromMs: number, toMs: number, stepMs: number, seed: number): Tick[] {
  const rand = rng(seed);
  const out: Tick[] = [];
  for (let ts = fromMs; ts < toMs; ts += stepMs) out.push({ user: users[Math.floor(rand() * users.length)]!, ts, value: 1 + Math.floor(rand() * 100) });
  // Swap neighbours whose times differ by less than 900 ms: out of order, within the bound.
  for (let i = 1; i < out.length; i++) if (rand() < 0.4 && out[i]!.ts - out[i - 1]!.ts < 900) [out[i - 1], out[i]] = [out[i]!, out[i - 1]!];
  return out;
}

/** The buckets every tick falls in, summed per (user, bucket start). */
function sumBuckets(all: Tick[], ends: (start: number) => boolean): Map<string, { sum: number; count: number }> {
  const m = new Map<string, { sum: number; count: number }>();
  for (const t of all) {
    const start = Math.floor(t.ts / BUCKET_MS) * BUCKET_MS;
    if (!ends(start)) continue;
    const k = `${t.user}/${start}`;
    const b = m.get(k) ?? { sum: 0, count: 0 };
    m.set(k, { sum: b.sum + t.value, count: b.count + 1 });
  }
  return m;
}

test('event time - watermarks from the sources fire event-time timers; idle splits do not hold time back; late records are told apart', { timeout: 180_000 }, async () => {
  const cluster = await startCluster({ workers: 2, metrics: true });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-et-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/event-time-buckets.ts'), join(dir, 'cache'));
    assert.deepEqual(bundle.manifest.sources[0]!.eventTime, { maxOutOfOrdernessMs: 1000, idleTimeoutMs: 4000, watermarkIntervalMs: 50 });
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob('event-time-buckets')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
    const js = jetstream(nc);
    const publish = async (partition: number, list: Tick[]): Promise<void> => {
      for (const t of list) await js.publish(`ticks.${partition}`, JSON.stringify(t));
    };

    // Phase 1: partitions 0 and 1 carry ticks from T0 to T0+25 s; partitions 2 and 3 stay empty
    // and must go idle, or no watermark would ever pass. Split 1 stops at T0+25 s too.
    const p0 = ticks(['a', 'b', 'c'], T0, T0 + 25_000, 97, 1);
    const p1 = ticks(['d', 'e'], T0 + 3, T0 + 25_000, 131, 2);
    // Interleaved, so that neither split runs ahead while the other looks idle.
    for (let i = 0; i < Math.max(p0.length, p1.length); i++) {
      if (i < p0.length) await publish(0, [p0[i]!]);
      if (i < p1.length) await publish(1, [p1[i]!]);
    }
    // The watermark reaches at most T0+25 s - 1001 ms: buckets T0 and T0+10 s close, T0+20 s does not.
    const phase1 = sumBuckets([...p0, ...p1], (start) => start + BUCKET_MS - 1 <= T0 + 25_000 - 1001);
    assert.equal(phase1.size, 10, 'five users, two closed buckets each');
    const outputs = async (): Promise<BucketOutput[]> => (await readStreamDirect(nc, 'BUCKETS_OUT')).map((m) => JSON.parse(m) as BucketOutput);
    const closed = await waitFor(async () => {
      const out = await outputs();
      return out.length >= phase1.size ? out : undefined;
    }, { timeoutMs: 60_000, what: `${phase1.size} closed buckets` });
    assert.deepEqual(new Map(closed.map((o) => (o.kind === 'bucket' ? [`${o.user}/${o.start}`, { sum: o.sum, count: o.count }] : ['late', { sum: 0, count: 0 }]))), phase1);

    // Phase 2: a tick of user a in bucket T0 (closed: late), then partition 0 moves to T0+40 s.
    // Split 1 is quiet by now: once idle it stops holding the watermark at ~T0+24 s, so bucket
    // T0+20 s closes for every user, d and e (only on split 1) included.
    const late: Tick = { user: 'a', ts: T0 + 5_000, value: 1000 };
    const onward: Tick = { user: 'b', ts: T0 + 40_000, value: 7 };
    await publish(0, [late, onward]);
    const phase2 = sumBuckets([...p0, ...p1], (start) => start === T0 + 20_000);
    const expectedCount = phase1.size + phase2.size + 1;
    const all = await waitFor(async () => {
      const out = await outputs();
      return out.length >= expectedCount ? out : undefined;
    }, { timeoutMs: 60_000, what: `${expectedCount} outputs` });
    assert.equal(all.length, expectedCount);
    const buckets = new Map(all.filter((o) => o.kind === 'bucket').map((o) => [`${o.user}/${o.start}`, { sum: o.sum, count: o.count }]));
    assert.deepEqual(buckets, new Map([...phase1, ...phase2]));
    assert.deepEqual(all.filter((o) => o.kind === 'late'), [{ kind: 'late', ...late }]);
    assert.equal((await client.getJob('event-time-buckets')).state, 'RUNNING');
    // The keyed stage's watermark shows on the workers' Prometheus endpoints as a lag behind now.
    const lags = await waitFor(async () => {
      const texts = await Promise.all(cluster.workers.map(async (w) => (await fetch(w.metricsUrl!, { signal: AbortSignal.timeout(10_000) })).text()));
      const found = texts.flatMap((t) => t.split('\n').filter((l) => l.startsWith('eddy_watermark_lag_ms{')));
      return found.length > 0 ? found : undefined;
    }, { timeoutMs: 30_000, what: 'eddy_watermark_lag_ms on a worker' });
    for (const line of lags) assert.ok(Number(line.split(' ').pop()) > 0, `a positive watermark lag: ${line}`);
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
