// Exactly-once state under failure: three worker processes, 200,000 events, and a random
// worker killed with SIGKILL (and a fresh one started) again and again while the job runs.
// Afterwards every key's state equals an expectation computed here, and the exactly-once
// sink holds every expected trigger once: no gap, no duplicate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, readStream, REPO_ROOT, type ChildHandle } from './kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { buildBundle } from '../core/bundle.ts';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { partitionForKey } from '../core/key-groups.ts';

const EVENTS = 200_000;
const ENTITIES = 2_000;
const KILLS = 4;

interface Event { entityId: string; type: string; value: number; ts: number }

// Independent of the job: packet errors above 100 and uptime below 99 % are RED.
const isRed = (e: Event) => (e.type === 'packetErrors' ? e.value > 100 : e.value < 99);

function events(): Event[] {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  return Array.from({ length: EVENTS }, (_, i) => {
    const type = rand() < 0.5 ? 'packetErrors' : 'uptimePercent';
    return { entityId: `e${Math.floor(rand() * ENTITIES)}`, type, value: type === 'packetErrors' ? Math.floor(rand() * 120) : 95 + Math.floor(rand() * 6), ts: i };
  });
}

function expectation(all: Event[]) {
  const latest = new Map<string, Record<string, { value: number; ts: number; colour: string }>>();
  const colour = new Map<string, boolean>();
  const triggers = new Set<string>();
  const received = new Map<string, number>();
  for (const e of all) {
    received.set(e.entityId, (received.get(e.entityId) ?? 0) + 1);
    const red = isRed(e);
    const f = latest.get(e.entityId) ?? {};
    f[e.type] = { value: e.value, ts: e.ts, colour: red ? 'RED' : 'GREEN' };
    latest.set(e.entityId, f);
    const k = `${e.entityId}/${e.type}`;
    if (!colour.get(k) && red) triggers.add(`${k}/${e.ts}`);
    colour.set(k, red);
  }
  return { latest, triggers, received };
}

test('checkpoint - SIGKILLed workers, replaced while the job runs, lose and duplicate nothing', { timeout: 300_000 }, async () => {
  const cluster = await startCluster({ workers: 3, workerTimeoutMs: 2000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-eo-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const all = events();
  const expected = expectation(all);
  let publishing: NodeJS.Timeout | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 3, { timeoutMs: 15_000, what: 'three live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'jobs/customer-experience/job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });

    // A steady producer (~20,000 events/s) so that kills land while records flow.
    const publisher = new BulkPublisher(nc);
    let sent = 0;
    const published = new Promise<void>((resolve, reject) => {
      publishing = setInterval(() => {
        try {
          for (const end = Math.min(sent + 2_000, EVENTS); sent < end; sent++) {
            const e = all[sent]!;
            publisher.publishNow(`indicators.${partitionForKey(e.entityId, 4)}`, new TextEncoder().encode(JSON.stringify(e)));
          }
          if (sent === EVENTS) {
            clearInterval(publishing);
            publisher.flush().then(resolve, reject);
          }
        } catch (e) {
          reject(e);
        }
      }, 100);
    });

    // Kill a random worker, start a new one, and wait until the job has recovered and
    // completed a checkpoint after the recovery before the next kill.
    const handles = new Map<string, ChildHandle>(cluster.workers.map((w) => [w.name.replace(/^worker /, ''), w]));
    for (let k = 0; k < KILLS; k++) {
      const before = await client.getJob('customer-experience');
      await waitFor(async () => {
        const j = await client.getJob('customer-experience');
        return j.state === 'RUNNING' && Number(j.checkpoints!.latestId) > Number(before.checkpoints!.latestId) + 1;
      }, { timeoutMs: 60_000, what: `checkpoints to progress before kill ${k + 1}` });
      // A worker that runs part of the job (one that joined after the last recovery is idle).
      const running = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((a) => a.jobId === 'customer-experience'));
      const victim = running[Math.floor(Math.random() * running.length)]!.workerId;
      handles.get(victim)!.kill('SIGKILL');
      handles.delete(victim);
      const id = `replacement-${k + 1}`;
      handles.set(id, await cluster.addWorker(id));
      await waitFor(async () => (await client.getJob('customer-experience')).restarts > before.restarts, { timeoutMs: 30_000, what: `the job to restart after kill ${k + 1}` });
    }
    await published;

    const ids = [...expected.latest.keys()];
    await waitFor(
      async () => {
        const values = await client.batchGet('customer-experience', 'indicators', ids.slice(0, 1000), 'committed');
        const more = await client.batchGet('customer-experience', 'indicators', ids.slice(1000), 'committed');
        return [...values, ...more].every((v) => v.found && deepEqualJson(JSON.parse(v.valueJson), expected.latest.get(v.entityId)));
      },
      { timeoutMs: 120_000, what: 'every entity state to equal the expectation' },
    );
    for (const slice of [ids.slice(0, 1000), ids.slice(1000)]) {
      for (const v of await client.batchGet('customer-experience', 'indicators', slice, 'committed')) {
        assert.deepEqual(JSON.parse(v.valueJson), expected.latest.get(v.entityId), v.entityId);
      }
    }
    // A count per entity: a replayed or lost record would show here.
    for (const slice of [ids.slice(0, 1000), ids.slice(1000)]) {
      for (const v of await client.batchGet('customer-experience', 'received', slice, 'committed')) {
        assert.equal(JSON.parse(v.valueJson), expected.received.get(v.entityId), `records counted for ${v.entityId}`);
      }
    }
    const triggers = await waitFor(async () => {
      const t = await readStream(nc, 'CX_TRIGGERS');
      return t.length >= expected.triggers.size ? t : undefined;
    }, { timeoutMs: 60_000, what: `${expected.triggers.size} triggers` });
    const got = triggers.map((m) => JSON.parse(m.data) as Event).map((t) => `${t.entityId}/${t.type}/${t.ts}`);
    assert.equal(new Set(got).size, got.length, 'no trigger is duplicated');
    assert.deepEqual(new Set(got), expected.triggers);
    const job = await client.getJob('customer-experience');
    assert.ok(job.restarts >= KILLS, `the job restarted after each kill (${job.restarts})`);
  } finally {
    clearInterval(publishing);
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

function deepEqualJson(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}
