// End to end with real processes: nats-server, a coordinator and two workers, the
// customer-experience job built from source, submitted over gRPC, fed through `eddy publish`,
// and checked record for record against an expectation computed here, independently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, runCli, readStream, REPO_ROOT, clusterStore, readPartFiles } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';

const EVENTS = 10_000;
const ENTITIES = 500;
const MALFORMED_EVERY = 250;

// The job's rules, restated: packet errors above 100 and uptime below 99 % are RED.
const isRed = (type: string, value: number) => (type === 'packetErrors' ? value > 100 : value < 99);

interface Event { entityId: string; type: string; value: number; ts: number }

function generate(): { lines: string[]; valid: Event[]; malformed: number } {
  let seed = 42;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const lines: string[] = [];
  const valid: Event[] = [];
  let malformed = 0;
  for (let i = 0; i < EVENTS; i++) {
    if (i % MALFORMED_EVERY === MALFORMED_EVERY - 1) {
      malformed++;
      lines.push(i % 2 === 0 ? `{"entityId": "cust-1", broken` : JSON.stringify({ type: 'packetErrors', value: 1, ts: i }));
      continue;
    }
    const type = rand() < 0.5 ? 'packetErrors' : 'uptimePercent';
    const value = type === 'packetErrors' ? Math.floor(rand() * 130) : 95 + Math.floor(rand() * 6);
    const e = { entityId: `cust-${String(Math.floor(rand() * ENTITIES)).padStart(4, '0')}`, type, value, ts: 1_700_000_000_000 + i };
    valid.push(e);
    lines.push(JSON.stringify(e));
  }
  return { lines, valid, malformed };
}

function expectation(events: Event[]) {
  const latest = new Map<string, Record<string, { value: number; ts: number; colour: string }>>();
  const colour = new Map<string, string>();
  const triggers: string[] = [];
  for (const e of events) {
    const c = isRed(e.type, e.value) ? 'RED' : 'GREEN';
    const features = latest.get(e.entityId) ?? {};
    features[e.type] = { value: e.value, ts: e.ts, colour: c };
    latest.set(e.entityId, features);
    const k = `${e.entityId}/${e.type}`;
    if ((colour.get(k) ?? 'GREEN') === 'GREEN' && c === 'RED') triggers.push(`${e.entityId}/${e.type}/${e.ts}`);
    colour.set(k, c);
  }
  return { latest, triggers };
}

test('customer-experience - two workers compute every entity feature, trigger and dead letter exactly (NATS with authentication and per-role permissions)', { timeout: 180_000 }, async () => {
  // Every process logs in to NATS as its role; this test reads results as a client and
  // publishes as a producer, as a deployment following the README would.
  const cluster = await startCluster({ workers: 2, natsAuth: true });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-e2e-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url, ...cluster.nats.login('client') });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'jobs/customer-experience/job.ts'), join(dir, 'cache'));
    const submitted = await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    assert.equal(submitted.jobId, 'customer-experience');

    const { lines, valid, malformed } = generate();
    const file = join(dir, 'events.ndjson');
    await writeFile(file, lines.join('\n') + '\n');
    const pub = await runCli(['publish', 'indicators', file, '--nats', cluster.nats.url], { timeoutMs: 60_000, env: cluster.nats.loginEnv('producer') });
    assert.equal(pub.code, 0, pub.stderr);

    const expected = expectation(valid);
    const entityIds = [...expected.latest.keys()].sort();
    assert.ok(entityIds.length > ENTITIES * 0.95, 'the generator covers the entities');

    // Every entity's feature, through the gRPC FeatureService, equals the expectation.
    await waitFor(
      async () => {
        const values = await client.batchGet('customer-experience', 'indicators', entityIds, 'latest');
        return values.every((v) => v.found && JSON.stringify(JSON.parse(v.valueJson)) === JSON.stringify(sortKeys(expected.latest.get(v.entityId)!)));
      },
      { timeoutMs: 90_000, what: 'every entity feature to equal the expectation' },
    );
    const values = await client.batchGet('customer-experience', 'indicators', entityIds, 'latest');
    for (const v of values) assert.deepEqual(JSON.parse(v.valueJson), expected.latest.get(v.entityId), v.entityId);

    // Triggers: exactly the GREEN→RED transitions, once each.
    const triggers = await waitFor(
      async () => {
        const t = await readStream(nc, 'CX_TRIGGERS');
        return t.length >= expected.triggers.length ? t : undefined;
      },
      { timeoutMs: 30_000, what: `${expected.triggers.length} triggers` },
    );
    const got = triggers.map((m) => JSON.parse(m.data) as Event).map((t) => `${t.entityId}/${t.type}/${t.ts}`).sort();
    assert.deepEqual(got, [...expected.triggers].sort());

    // Malformed events: each in the dead-letter subject with a reason.
    const dead = await waitFor(
      async () => {
        const d = await readStream(nc, 'EDDY_DLQ', 'eddy.dlq.customer-experience');
        return d.length >= malformed ? d : undefined;
      },
      { timeoutMs: 30_000, what: `${malformed} dead letters` },
    );
    assert.equal(dead.length, malformed);
    for (const m of dead) {
      const letter = JSON.parse(m.data) as { reason: string; stageId: string };
      assert.match(letter.reason, /^(invalid JSON|missing key)/);
      assert.equal(letter.stageId, 'source-indicators');
    }

    // The feature history: every valid event once in the part files, with its colour, in the
    // directory of its event-time day; only parts of completed checkpoints are there.
    const store = clusterStore(cluster);
    const parts = await waitFor(async () => {
      const p = await readPartFiles(store, 'history/customer-experience');
      return p.reduce((n, f) => n + f.lines.length, 0) >= valid.length ? p : undefined;
    }, { timeoutMs: 30_000, what: `${valid.length} history records in part files` });
    const latestCheckpoint = Number((await client.getJob('customer-experience')).checkpoints!.latestId);
    const historyLines: string[] = [];
    for (const part of parts) {
      assert.ok(part.checkpointId <= latestCheckpoint, `${part.key} belongs to a completed checkpoint`);
      for (const line of part.lines) {
        const u = JSON.parse(line) as Event & { colour: string };
        assert.ok(part.key.startsWith(`history/customer-experience/dt=${new Date(u.ts).toISOString().slice(0, 10)}/`), `${part.key} holds an update of ${u.ts}`);
        historyLines.push(JSON.stringify([u.entityId, u.type, u.value, u.ts, u.colour]));
      }
    }
    const expectedHistory = valid.map((e) => JSON.stringify([e.entityId, e.type, e.value, e.ts, isRed(e.type, e.value) ? 'RED' : 'GREEN']));
    assert.equal(historyLines.length, expectedHistory.length, 'no duplicate history record');
    assert.deepEqual(historyLines.sort(), expectedHistory.sort());

    // An entity without state is "not found", distinct from an empty value.
    const [none] = await client.batchGet('customer-experience', 'indicators', ['no-such-entity'], 'latest');
    assert.equal(none!.found, false);

    const job = await client.getJob('customer-experience');
    assert.equal(job.state, 'RUNNING');
    assert.equal(Number(job.stages[0]!.recordsIn), EVENTS);
    assert.equal(Number(job.stages[0]!.deadLetters), malformed);
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

function sortKeys<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))) as T;
}
