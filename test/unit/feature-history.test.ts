// Feature metadata and history on a real RocksDB: the key layout of worker/state/feature-state.ts, as-of
// reads at version boundaries across overlay, frozen delta and RocksDB, and retention cleanup.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { keyGroupPrefix, StateBackend } from '../../worker/state/state-backend.ts';
import { KeyedContext } from '../../worker/task/keyed-context.ts';
import { decodeVersionTime, encodeVersionTime, readFeature, readFeatureAsOf, type FeatureStateSpec } from '../../worker/state/feature-state.ts';
import { HistoryCleaner, historyRangePrefix } from '../../worker/state/history-cleanup.ts';
import { mapState, valueState } from '../../sdk/index.ts';
import { silentLogger as logger } from '../../core/logger.ts';

const S = 'stage-a';
const KG = 3;
const latest = mapState<number>('latest');
const count = valueState<number>('count');

async function withBackend(run: (backend: StateBackend) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-history-'));
  const backend = await StateBackend.open({ path: join(dir, 'db') });
  try {
    await run(backend);
  } finally {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function specs(retentionMs: number | undefined): Map<string, FeatureStateSpec> {
  return new Map([
    ['latest', { state: 'latest', kind: 'map', historyRetentionMs: retentionMs }],
    ['count', { state: 'count', kind: 'value', historyRetentionMs: retentionMs }],
  ]);
}

const declared = new Map([
  ['latest', 'map' as const],
  ['count', 'value' as const],
]);

/** Processes one record the way a keyed task does: user code, then finishRecord. */
async function processRecord(backend: StateBackend, features: Map<string, FeatureStateSpec>, key: string, timestamp: number, fn: (ctx: KeyedContext) => Promise<void> | void): Promise<void> {
  const ctx = new KeyedContext(S, backend, declared, key, KG, () => {}, { features });
  ctx.timestamp = timestamp;
  await fn(ctx);
  await ctx.finishRecord();
}

test('feature history - version times sort like the numbers they encode, negatives first', () => {
  const times = [-5_000, -1, 0, 1, 255, 256, 1_700_000_000_000, Number.MAX_SAFE_INTEGER];
  const encoded = times.map((t) => encodeVersionTime(t));
  const sorted = [...encoded].sort(Buffer.compare);
  assert.deepEqual(sorted.map((b) => decodeVersionTime(b, 0)), times);
});

test('feature history - as-of returns the version current at each boundary, across overlay, delta and RocksDB', () =>
  withBackend(async (b) => {
    const features = specs(1_000_000);
    // An independent model: the map after each record, by time.
    const writes: Array<[number, string, number]> = [
      [100, 'a', 1],
      [200, 'b', 2],
      [300, 'a', 3],
      [400, 'c', 4],
    ];
    const model: Array<[number, Record<string, number>]> = [];
    let current: Record<string, number> = {};
    for (const [i, [t, k, v]] of writes.entries()) {
      await processRecord(b, features, 'e1', t, (ctx) => ctx.state(latest).put(k, v));
      current = { ...current, [k]: v };
      model.push([t, current]);
      // Spread the versions over RocksDB (1, 2), a frozen delta (3) and the active overlay (4).
      if (i === 0) b.freeze(1);
      if (i === 0) await b.commit(1);
      if (i === 1) b.freeze(2);
      if (i === 1) await b.commit(2);
      if (i === 2) b.freeze(3);
    }
    const expectAt = (t: number) => [...model].reverse().find(([vt]) => vt <= t);
    for (const t of [0, 99, 100, 101, 199, 200, 299, 300, 399, 400, 401, 10_000]) {
      const read = await readFeatureAsOf(b, S, KG, features.get('latest')!, 'e1', 'latest', t);
      const expected = expectAt(t);
      assert.equal(read.found, expected !== undefined, `found at ${t}`);
      if (expected) {
        assert.deepEqual(read.value, expected[1], `value at ${t}`);
        assert.equal(read.eventTimeMs, expected[0], `version time at ${t}`);
      }
      // The committed view sees only versions of checkpoints 1 and 2 (times 100, 200).
      const committed = await readFeatureAsOf(b, S, KG, features.get('latest')!, 'e1', 'committed', t);
      const expectedCommitted = [...model.slice(0, 2)].reverse().find(([vt]) => vt <= t);
      assert.deepEqual(committed.value, expectedCommitted?.[1], `committed value at ${t}`);
    }
    const now = await readFeature(b, S, KG, features.get('latest')!, 'e1', 'latest');
    assert.deepEqual(now.value, current);
    assert.equal(now.eventTimeMs, 400);
    assert.equal(now.uncommitted, true);
    const committedNow = await readFeature(b, S, KG, features.get('latest')!, 'e1', 'committed');
    assert.deepEqual(committedNow.value, { a: 1, b: 2 });
    assert.equal(committedNow.eventTimeMs, 200);
  }));

test('feature history - a cleared value is a version: as-of after the clear finds no entity', () =>
  withBackend(async (b) => {
    const features = specs(1_000_000);
    const spec = features.get('count')!;
    await processRecord(b, features, 'e2', 10, (ctx) => ctx.state(count).update(5));
    await processRecord(b, features, 'e2', 20, (ctx) => ctx.state(count).clear());
    await processRecord(b, features, 'e2', 30, (ctx) => ctx.state(count).update(0));
    const at = async (t: number) => (await readFeatureAsOf(b, S, KG, spec, 'e2', 'latest', t)).value;
    assert.equal(await at(9), undefined);
    assert.equal(await at(10), 5);
    assert.equal(await at(19), 5);
    assert.equal(await at(20), undefined);
    assert.equal((await readFeatureAsOf(b, S, KG, spec, 'e2', 'latest', 25)).found, false);
    const zero = await readFeatureAsOf(b, S, KG, spec, 'e2', 'latest', 30);
    assert.equal(zero.found, true, 'a value of 0 is found: distinct from no entity');
    assert.equal(zero.value, 0);
  }));

test('feature history - an out-of-order record is versioned at the newest time, never before it', () =>
  withBackend(async (b) => {
    const features = specs(1_000_000);
    const spec = features.get('count')!;
    await processRecord(b, features, 'e3', 100, (ctx) => ctx.state(count).update(1));
    await processRecord(b, features, 'e3', 50, (ctx) => ctx.state(count).update(2));
    assert.equal((await readFeatureAsOf(b, S, KG, spec, 'e3', 'latest', 99)).found, false);
    assert.equal((await readFeatureAsOf(b, S, KG, spec, 'e3', 'latest', 100)).value, 2);
  }));

test('feature history - cleanup deletes superseded versions past retention, keeps the one current at the cutoff, in bounded passes', () =>
  withBackend(async (b) => {
    const retentionMs = 100;
    const features = specs(retentionMs);
    const spec = features.get('count')!;
    const keys = ['k0', 'k1', 'k2', 'k3'];
    for (const key of keys) for (let t = 0; t <= 250; t += 50) await processRecord(b, features, key, t, (ctx) => ctx.state(count).update(t));
    b.freeze(1);
    await b.commit(1);
    const versions = async (key: string) => {
      const prefix = historyRangePrefix(S, KG, 'count');
      const out: number[] = [];
      for await (const { key: k } of b.scanCommitted(prefix, prefix)) if (k.includes(Buffer.from(key))) out.push(decodeVersionTime(k, k.length - 8));
      return out;
    };
    assert.deepEqual(await versions('k0'), [0, 50, 100, 150, 200, 250]);
    // 6 versions per key; a budget of 12 covers two keys per pass.
    const cleaner = new HistoryCleaner({ backend: b, targets: [{ stage: S, state: 'count', retentionMs }], keyGroups: [KG], logger, maxVersionsPerPass: 12 });
    assert.equal(await cleaner.pass(), 6, 'first pass: two keys, three versions each');
    assert.equal(await cleaner.pass(), 6, 'second pass: the other two keys');
    assert.equal(await cleaner.pass(), 0, 'nothing left to clean');
    b.freeze(2);
    await b.commit(2);
    // Newest 250, cutoff 150: the version at 150 answers as-of 150..199 and stays.
    for (const key of keys) assert.deepEqual(await versions(key), [150, 200, 250], key);
    assert.equal((await readFeatureAsOf(b, S, KG, spec, 'k1', 'latest', 150)).value, 150);
    assert.equal((await readFeatureAsOf(b, S, KG, spec, 'k1', 'committed', 199)).value, 150);
    const beyond = await readFeatureAsOf(b, S, KG, spec, 'k1', 'latest', 149);
    assert.equal(beyond.found, false);
    assert.equal(beyond.beyondRetention, true, 'older than the retention: said so, not "no entity"');
  }));

test('feature history - tombstones from cleanup in the overlay hide their committed versions', () =>
  withBackend(async (b) => {
    const features = specs(100);
    const spec = features.get('count')!;
    for (const t of [0, 50, 100, 150, 200]) await processRecord(b, features, 'k', t, (ctx) => ctx.state(count).update(t));
    b.freeze(1);
    await b.commit(1);
    const cleaner = new HistoryCleaner({ backend: b, targets: [{ stage: S, state: 'count', retentionMs: 100 }], keyGroups: [KG], logger });
    assert.equal(await cleaner.pass(), 2, 'versions 0 and 50 go; 100 is current at the cutoff');
    // Not yet committed: the latest view already hides them, the committed view still has them.
    assert.equal((await readFeatureAsOf(b, S, KG, spec, 'k', 'latest', 100)).value, 100);
    assert.equal((await readFeatureAsOf(b, S, KG, spec, 'k', 'committed', 100)).value, 100);
    // Below the cutoff the answer is "beyond retention" in both views, whether cleaned or not.
    for (const view of ['latest', 'committed'] as const) assert.equal((await readFeatureAsOf(b, S, KG, spec, 'k', view, 60)).beyondRetention, true);
    // The seek itself skips a tombstoned committed version and finds nothing older.
    const prefix = b.stateKeyString(S, KG, '\u0000h:count', 'k');
    assert.equal(await b.latestAtOrBefore(prefix, prefix + encodeVersionTime(60).toString('latin1'), 'latest'), undefined);
    const committed = await b.latestAtOrBefore(prefix, prefix + encodeVersionTime(60).toString('latin1'), 'committed');
    assert.equal(committed === undefined ? undefined : decodeVersionTime(Buffer.from(committed.key, 'latin1'), committed.key.length - 8), 50);
  }));

test('feature metadata - the event time of the last update, and no metadata for states that are not features', () =>
  withBackend(async (b) => {
    const features = new Map<string, FeatureStateSpec>([['count', { state: 'count', kind: 'value', historyRetentionMs: undefined }]]);
    await processRecord(b, features, 'm', 1234, (ctx) => {
      ctx.state(count).update(7);
      ctx.state(latest).put('x', 1);
    });
    const read = await readFeature(b, S, KG, features.get('count')!, 'm', 'latest');
    assert.deepEqual([read.found, read.value, read.eventTimeMs, read.uncommitted], [true, 7, 1234, true]);
    b.freeze(1);
    await b.commit(1);
    const committed = await readFeature(b, S, KG, features.get('count')!, 'm', 'committed');
    assert.deepEqual([committed.value, committed.eventTimeMs, committed.uncommitted], [7, 1234, false]);
    assert.equal((await readFeature(b, S, KG, features.get('count')!, 'm', 'latest')).uncommitted, false, 'committed: nothing newer in an overlay');
    assert.equal(b.activeOverlaySize(), 0);
    // Only count's metadata was written besides the two states: 3 keys in all.
    let keysInGroup = 0;
    const range = keyGroupPrefix(S, KG);
    for await (const _ of b.scanCommitted(range, range)) keysInGroup++;
    assert.equal(keysInGroup, 3);
  }));
