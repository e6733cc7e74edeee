// Bad records under errorPolicy "dead-letter", end to end with real processes (issue 12): records
// that cannot be decoded safely are dead-lettered at the source with their reason, and a record
// that fails anywhere after its function wrote state and emitted (the function, a map after it, a
// files sink's encoding) leaves no state change and no output behind. Every other result exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startCluster, waitFor, readStream, REPO_ROOT, clusterStore, readPartFiles } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import type { In } from '../fixtures/bad-records-job.ts';

const GOOD = 300;
const IDS = ['a', 'b', 'c', 'd', 'e'];
const T0 = 1_733_400_000_000;

/** The input as raw lines, the good records, and a pattern for each bad record's dead-letter reason. */
function input(): { lines: string[]; good: In[]; reasons: RegExp[] } {
  const lines: string[] = [];
  const good: In[] = [];
  const reasons: RegExp[] = [];
  const bad = (line: string, reason: RegExp) => {
    lines.push(line);
    reasons.push(reason);
  };
  for (let i = 0; i < GOOD; i++) {
    const r: In = { id: IDS[i % IDS.length]!, n: (i % 7) + 1, seq: i, ts: T0 + i };
    good.push(r);
    lines.push(JSON.stringify(r));
    switch (i) {
      case 20: bad('['.repeat(100_000) + ']'.repeat(100_000), /^JSON nested deeper than 256 levels/); break;
      case 40: bad(`{"id":"a","n":1e999,"seq":-1,"ts":${T0}}`, /^\$\.n is not a finite number/); break;
      case 60: bad(`{"id":"b","n":1,"seq":-2,"ts":1e20}`, /^event time field ts is 100000000000000000000, not a time between 1970 and 9999/); break;
      case 80: bad(`{"id":{"nested":true},"n":1,"seq":-3,"ts":${T0}}`, /^missing key: id returned an object$/); break;
      case 100: bad(`{"id":"c\\ud800","n":1,"seq":-4,"ts":${T0}}`, /^missing key: id returned a string with a lone surrogate/); break;
      case 120: bad(JSON.stringify({ id: 'c', n: 1000, seq: -5, ts: T0, poison: 'throw' }), /threw: poison record -5$/); break;
      case 140: bad(JSON.stringify({ id: 'd', n: 1000, seq: -6, ts: T0, poison: 'encode' }), /files sink audit .*BigInt/); break;
      case 160: bad(JSON.stringify({ id: 'e', n: 1000, seq: -7, ts: T0, poison: 'map' }), /user function refuse-second .* threw: map refuses the second output of -7$/); break;
    }
  }
  return { lines, good, reasons };
}

test('bad records - deep JSON, Infinity, impossible times, object and lone-surrogate keys and records failing after their writes are dead-lettered once each, leaving nothing behind', { timeout: 180_000 }, async () => {
  const cluster = await startCluster({ workers: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bad-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/bad-records-job.ts'), join(dir, 'cache'));
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 30_000, what: 'a live worker' });
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob('bad-records')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });

    const { lines, good, reasons } = input();
    const js = jetstream(nc);
    for (const line of lines) await js.publish('bad-in.0', line);

    // Totals: the good records only (each bad one had 1 or 1000 to add).
    const totals = new Map<string, number>();
    const outputs: string[] = [];
    for (const r of good) {
      const t = (totals.get(r.id) ?? 0) + r.n;
      totals.set(r.id, t);
      outputs.push(JSON.stringify({ id: r.id, total: t, seq: r.seq }));
    }
    await waitFor(async () => {
      const values = await client.batchGet('bad-records', 'total', IDS, 'latest');
      return values.every((v) => v.found && JSON.parse(v.valueJson) === totals.get(v.entityId));
    }, { timeoutMs: 60_000, what: 'every total to equal the good records\' sum' });

    const out = await waitFor(async () => {
      const m = await readStream(nc, 'BAD_OUT');
      return m.length >= good.length ? m : undefined;
    }, { timeoutMs: 30_000, what: `${good.length} outputs` });
    assert.deepEqual(out.map((m) => m.data).sort(), outputs.sort(), 'one output per good record, none of a bad one');

    const parts = await waitFor(async () => {
      const p = await readPartFiles(clusterStore(cluster), 'audit');
      return p.reduce((n, f) => n + f.lines.length, 0) >= good.length ? p : undefined;
    }, { timeoutMs: 30_000, what: `${good.length} audit lines` });
    const audit = parts.flatMap((p) => p.lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).sort((a, b) => a - b);
    assert.deepEqual(audit, good.map((r) => r.seq), 'one audit line per good record, none of a bad one');

    const dead = await waitFor(async () => {
      const d = await readStream(nc, 'EDDY_DLQ', 'eddy.dlq.bad-records');
      return d.length >= reasons.length ? d : undefined;
    }, { timeoutMs: 30_000, what: `${reasons.length} dead letters` });
    // Each reason once, in any order: records of different key groups are dead-lettered
    // concurrently, so the stream's order may differ from the input's (seen: -6 before -5).
    const letters = dead.map((m) => JSON.parse(m.data) as { reason: string });
    assert.equal(letters.length, reasons.length, letters.map((l) => l.reason).join('\n'));
    for (const [i, pattern] of reasons.entries()) {
      assert.equal(letters.filter((l) => pattern.test(l.reason)).length, 1, `dead letter ${i} (${pattern}) once among: ${letters.map((l) => l.reason).join(' | ')}`);
    }

    const job = await client.getJob('bad-records');
    assert.equal(job.state, 'RUNNING');
    assert.equal(Number(job.restarts ?? 0), 0, 'no restart');
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
