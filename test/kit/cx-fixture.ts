// The customer-experience job as a test fixture: generated indicator events, the expectation
// computed independently of the job (its rules restated here), a steady producer, and the
// record-for-record comparison of the job's features and triggers with the expectation.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { keyGroupsOf, partitionForKey } from '../../core/key-groups.ts';
import { buildBundle } from '../../core/bundle.ts';
import type { EddyClient } from '../../cli/client.ts';
import { REPO_ROOT } from './eddy.ts';
import { readStream } from './streams.ts';
import { waitFor } from './wait-for.ts';
import { readPartFiles } from './part-files.ts';
import { publishMessagesSteadily, type SteadyPublisher, type SteadyPublisherOptions } from './steady-publisher.ts';
import type { ObjectStore } from '../../core/object-store.ts';

export const CX_JOB = 'customer-experience';

export interface Indicator { entityId: string; type: string; value: number; ts: number }

// Independent of the job: packet errors above 100 and uptime below 99 % are RED.
const isRed = (e: Indicator) => (e.type === 'packetErrors' ? e.value > 100 : e.value < 99);

/** Deterministic events over `entities` entities and two data-point types. */
export function cxEvents(count: number, entities: number, seed = 7): Indicator[] {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  return Array.from({ length: count }, (_, i) => {
    const type = rand() < 0.5 ? 'packetErrors' : 'uptimePercent';
    return { entityId: `e${Math.floor(rand() * entities)}`, type, value: type === 'packetErrors' ? Math.floor(rand() * 120) : 95 + Math.floor(rand() * 6), ts: i };
  });
}

export interface CxExpectation {
  latest: Map<string, Record<string, { value: number; ts: number; colour: string }>>;
  received: Map<string, number>;
  /** "<entity>/<type>/<ts>" of every GREEN→RED transition. */
  triggers: Set<string>;
  /** "<entity>/<type>/<value>/<ts>/<colour>" of every event: the feature-history files' lines. */
  history: string[];
}

export function cxExpectation(events: readonly Indicator[]): CxExpectation {
  const latest: CxExpectation['latest'] = new Map();
  const received = new Map<string, number>();
  const colour = new Map<string, boolean>();
  const triggers = new Set<string>();
  const history: string[] = [];
  for (const e of events) {
    history.push(`${e.entityId}/${e.type}/${e.value}/${e.ts}/${isRed(e) ? 'RED' : 'GREEN'}`);
    received.set(e.entityId, (received.get(e.entityId) ?? 0) + 1);
    const red = isRed(e);
    const f = latest.get(e.entityId) ?? {};
    f[e.type] = { value: e.value, ts: e.ts, colour: red ? 'RED' : 'GREEN' };
    latest.set(e.entityId, f);
    const k = `${e.entityId}/${e.type}`;
    if (!colour.get(k) && red) triggers.add(`${k}/${e.ts}`);
    colour.set(k, red);
  }
  return { latest, received, triggers, history };
}

/** Key groups per worker in the job's current assignment (dead workers left out). */
export async function cxKeyGroupsByWorker(client: EddyClient): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const w of await client.listWorkers()) {
    const a = w.assignments.find((x) => x.jobId === CX_JOB);
    if (a && w.state !== 'DEAD') out.set(w.workerId, [...keyGroupsOf(a.keyGroups.map((r) => ({ start: r.start, end: r.end })))]);
  }
  return out;
}

/** True when the job's 128 key groups are spread over exactly `workers`, at most one apart. */
export async function cxBalancedOver(client: EddyClient, workers: readonly string[]): Promise<boolean> {
  const byWorker = await cxKeyGroupsByWorker(client);
  const counts = workers.map((w) => byWorker.get(w)?.length ?? 0);
  const others = [...byWorker].filter(([w, kgs]) => !workers.includes(w) && kgs.length > 0);
  return others.length === 0 && counts.reduce((a, b) => a + b, 0) === 128 && Math.max(...counts) - Math.min(...counts) <= 1;
}

/** Builds and submits the job; `entry` picks a variant (e.g. test/fixtures/cx-history.ts). */
export async function submitCx(client: EddyClient, cacheDir: string, entry = 'jobs/customer-experience/job.ts'): Promise<void> {
  const bundle = await buildBundle(join(REPO_ROOT, entry), cacheDir);
  await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
}

/**
 * Publishes events at a steady rate (`perTick` every 100 ms) so that faults land while records
 * flow. Resolves once every event is acknowledged by the stream; `stop()` ends it early; a
 * held-back tail (options.heldBack) trickles until `release()`.
 */
export function publishSteadily(nc: NatsConnection, events: readonly Indicator[], perTick = 2_000, options: SteadyPublisherOptions = {}): SteadyPublisher {
  return publishMessagesSteadily(nc, events.map((e) => [`indicators.${partitionForKey(e.entityId, 4)}`, JSON.stringify(e)] as const), perTick, options);
}

/**
 * The events in the order the `indicators` stream holds them, once all `count` have arrived:
 * what the job processes (each entity's events are in one partition, read in stream order).
 * Asserts that each event is there exactly once (a producer's retries are deduplicated by
 * message id; cxEvents numbers events by `ts`).
 */
export async function storedCxEvents(nc: NatsConnection, count: number, timeoutMs = 60_000): Promise<Indicator[]> {
  // A read through a replica still catching up ends early: read again until all are there.
  const stored = await waitFor(async () => {
    const all = (await readStream(nc, 'indicators')).map((m) => JSON.parse(m.data) as Indicator);
    return all.length >= count ? all : undefined;
  }, { timeoutMs, what: `${count} events in the source stream` });
  assert.equal(stored.length, count, 'the source stream holds no event twice');
  assert.equal(new Set(stored.map((e) => e.ts)).size, count, 'the source stream holds every event once');
  return stored;
}

async function features(client: EddyClient, feature: string, ids: string[]) {
  const out = [];
  for (let i = 0; i < ids.length; i += 1000) {
    // UNAVAILABLE (a key group between owners, or a worker busy restoring) says "retry", and a
    // client does; waitFor retries any error and reports the last one at its deadline.
    const batch = await waitFor(() => client.batchGet(CX_JOB, feature, ids.slice(i, i + 1000), 'committed'), { timeoutMs: 30_000, what: `batchGet of ${feature}` });
    out.push(...batch);
  }
  return out;
}

/**
 * Waits until the committed state of every entity equals the expectation, then asserts it
 * record for record: latest values, per-entity counts (a replayed or lost record shows here),
 * and the exactly-once triggers (no gap, no duplicate).
 */
export async function assertCxExactlyOnce(client: EddyClient, nc: NatsConnection, expected: CxExpectation, timeoutMs = 120_000, store?: ObjectStore): Promise<void> {
  const ids = [...expected.received.keys()];
  // What the last complete check saw, for the time-out message: counts below the expectation
  // mean records not yet (or never) counted, above it records counted twice.
  let lastSeen = 'no check completed';
  const expectedTotal = [...expected.received.values()].reduce((a, b) => a + b, 0);
  await waitFor(
    async () => {
      const got = await features(client, 'received', ids);
      const count = (v: (typeof got)[number]) => (v.found ? (JSON.parse(v.valueJson) as number) : 0);
      const below = got.filter((v) => count(v) < expected.received.get(v.entityId)!);
      const above = got.filter((v) => count(v) > expected.received.get(v.entityId)!);
      const total = got.reduce((sum, v) => sum + count(v), 0);
      lastSeen = `last check: ${below.length} of ${ids.length} entities below their count, ${above.length} above; ${total} of ${expectedTotal} records counted`;
      return below.length === 0 && above.length === 0;
    },
    { timeoutMs, what: 'every entity count to equal the expectation' },
  ).catch((e: Error) => {
    throw new Error(`${e.message}; ${lastSeen}`, { cause: e });
  });
  for (const v of await features(client, 'received', ids)) {
    assert.ok(v.found, `a count for ${v.entityId}, read a second time`);
    assert.equal(JSON.parse(v.valueJson), expected.received.get(v.entityId), `records counted for ${v.entityId}`);
  }
  for (const v of await features(client, 'indicators', ids)) {
    assert.ok(v.found, `indicators for ${v.entityId}`);
    assert.deepEqual(JSON.parse(v.valueJson), expected.latest.get(v.entityId), v.entityId);
  }
  const triggers = await waitFor(async () => {
    const t = await readStream(nc, 'CX_TRIGGERS');
    return t.length >= expected.triggers.size ? t : undefined;
  }, { timeoutMs: 60_000, what: `${expected.triggers.size} triggers` });
  const got = triggers.map((m) => JSON.parse(m.data) as Indicator).map((t) => `${t.entityId}/${t.type}/${t.ts}`);
  assert.equal(new Set(got).size, got.length, 'no trigger is duplicated');
  // Named one by one: a diff of two sets of ~4 000 strings hides the one that differs.
  const missing = [...expected.triggers].filter((k) => !got.includes(k));
  const unexpected = got.filter((k) => !expected.triggers.has(k));
  assert.deepEqual({ missing, unexpected }, { missing: [], unexpected: [] }, 'triggers: every expected one, and no other');
  if (store === undefined) return;
  // The feature-history files (store given): every event once, none lost, none twice.
  const lines = await waitFor(async () => {
    const l = (await readPartFiles(store, 'history/customer-experience')).flatMap((p) => p.lines);
    return l.length >= expected.history.length ? l : undefined;
  }, { timeoutMs: 60_000, what: `${expected.history.length} history records in part files` });
  const history = lines.map((line) => {
    const u = JSON.parse(line) as Indicator & { colour: string };
    return `${u.entityId}/${u.type}/${u.value}/${u.ts}/${u.colour}`;
  });
  assert.equal(history.length, expected.history.length, 'no history record is duplicated');
  assert.deepEqual(history.sort(), [...expected.history].sort());
}
