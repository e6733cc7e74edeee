// Keyed state as live objects (worker/state/live-cache.ts): decoded values cached per key, written
// back once per checkpoint; copies in and out of user code; undo, eviction and rollback.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listState, mapState, valueState, type StateDescriptor, type StateSerializer } from '../../sdk/index.ts';
import { KeyedContext } from '../../worker/task/keyed-context.ts';
import { StateBackend } from '../../worker/state/state-backend.ts';
import { featureStates } from '../../worker/state/index.ts';
import { readFeature } from '../../worker/state/feature-state.ts';
import { withBackends } from '../kit/state-backends.ts';
import type { StageSpec } from '../../core/manifest.ts';

const S = 'stage-live';

function context(backend: StateBackend, descriptors: StateDescriptor[], key: string, keyGroup = 1, services: ConstructorParameters<typeof KeyedContext>[6] = {}): KeyedContext {
  return new KeyedContext(S, backend, new Map(descriptors.map((d) => [d.name, d.kind])), key, keyGroup, () => undefined, services);
}

/** Numbers as decimal text, counting its encodes (`encodes`). */
function countingSerializer(): StateSerializer<number> & { encodes: number } {
  const serializer = {
    encodes: 0,
    encode: (v: number) => {
      serializer.encodes++;
      return Buffer.from(String(v));
    },
    decode: (bytes: Uint8Array) => Number(Buffer.from(bytes).toString()),
  };
  return serializer;
}

const profile = mapState<{ n: number; tags: string[] }>('profile');
const doc = valueState<{ n: number }>('doc');

test('live state - values are copied in and out: mutating what get() returned or what was put changes no state', () =>
  withBackends(1, async ([b]) => {
    const ctx = context(b!, [profile, doc], 'k');
    const written = { n: 1, tags: ['a'] };
    ctx.state(profile).put('x', written);
    written.n = 99;
    written.tags.push('b');
    const read = (await ctx.state(profile).get('x'))!;
    assert.deepEqual(read, { n: 1, tags: ['a'] });
    read.n = 42;
    read.tags.length = 0;
    assert.deepEqual(await ctx.state(profile).get('x'), { n: 1, tags: ['a'] });
    // The same after a checkpoint and a cold read from RocksDB.
    b!.freeze(1);
    await b!.commit(1);
    assert.deepEqual(await b!.getMapEntry(S, 1, 'profile', 'k', 'x'), { n: 1, tags: ['a'] });
    ctx.state(doc).update({ n: 5 });
    const d = (await ctx.state(doc).value())!;
    d.n = 6;
    assert.deepEqual(await ctx.state(doc).value(), { n: 5 });
  }));

test('live state - a value written many times between checkpoints is encoded once, at the freeze; byte readers see it before', () =>
  withBackends(1, async ([b]) => {
    const counting = countingSerializer();
    const count = valueState<number>('count', { serializer: counting });
    const ctx = context(b!, [count], 'k');
    for (let i = 0; i < 1000; i++) ctx.state(count).update(((await ctx.state(count).value()) ?? 0) + 1);
    // A user serializer's copy is its own round trip: one encode per write. The default serializer copies without encoding.
    const copies = counting.encodes;
    assert.equal(b!.activeOverlayBytes() > 0, true, 'dirty live values count against the overlay bound');
    b!.freeze(1);
    assert.equal(counting.encodes - copies, 1, 'the freeze encodes the dirty value once');
    const delta = b!.frozenDelta(1);
    assert.equal(delta.length, 1);
    assert.equal(delta[0]!.groups[0]!.entries.length, 1);
    assert.equal(Buffer.from(delta[0]!.groups[0]!.entries[0]![1]!).toString(), '1000');

    // Default serializer: no encode per write at all; the query path (bytes) sees the latest value.
    const plain = valueState<number>('plain');
    const p = context(b!, [plain], 'k');
    for (let i = 0; i < 100; i++) p.state(plain).update(i);
    assert.equal(await b!.getValue(S, 1, 'plain', 'k'), 99);
    p.state(plain).update(100);
    assert.equal(await b!.getValue(S, 1, 'plain', 'k'), 100);
    b!.freeze(2);
    assert.equal(await b!.getValue(S, 1, 'plain', 'k'), 100);
    await b!.commit(2);
    assert.equal(await b!.getValue(S, 1, 'plain', 'k', 'committed'), 100);
  }));

test('live state - a read of one map as bytes encodes that map\'s changes only; the other maps stay live until the freeze', () =>
  withBackends(1, async ([b]) => {
    const counting = countingSerializer();
    const m = mapState<number>('m', { serializer: counting });
    // The map as bytes (what a feature Get or a timer page reads), decoded by the test's serializer.
    const read = async (key: string, view: 'latest' | 'committed' = 'latest'): Promise<Array<[string, number]>> =>
      (await b!.mapRangeBytes(S, 1, 'm', key, {}, view)).map(([k, v]) => [k, counting.decode(v)]);
    const a = context(b!, [m], 'a');
    const other = context(b!, [m], 'b');
    for (let i = 0; i < 50; i++) {
      a.state(m).put(`x${i % 5}`, i);
      other.state(m).put(`y${i % 5}`, i);
    }
    let before = counting.encodes;
    assert.deepEqual(await read('a'), [['x0', 45], ['x1', 46], ['x2', 47], ['x3', 48], ['x4', 49]]);
    assert.equal(counting.encodes - before, 5, 'the map read encodes its own five changed entries, not the other map\'s');
    before = counting.encodes;
    assert.deepEqual(await read('a'), [['x0', 45], ['x1', 46], ['x2', 47], ['x3', 48], ['x4', 49]]);
    assert.equal(counting.encodes - before, 0, 'nothing changed since: nothing to encode');
    a.state(m).put('x0', 100);
    before = counting.encodes;
    assert.deepEqual((await read('a'))[0], ['x0', 100]);
    assert.equal(counting.encodes - before, 1, 'one entry changed since the last read');
    // The other map is still live: the freeze encodes it, once per entry.
    before = counting.encodes;
    b!.freeze(1);
    assert.equal(counting.encodes - before, 5);
    await b!.commit(1);
    assert.deepEqual(await read('b', 'committed'), [['y0', 45], ['y1', 46], ['y2', 47], ['y3', 48], ['y4', 49]]);
    assert.deepEqual((await read('a', 'committed'))[0], ['x0', 100]);
  }));

test('live state - a failed record is undone exactly (live values, new keys, feature event time), and not across a freeze', () =>
  withBackends(1, async ([b]) => {
    const counter = valueState<number>('counter');
    const stage = { features: [{ name: 'f', state: 'counter' }], states: [{ name: 'counter', kind: 'value' }] } as unknown as StageSpec;
    const features = featureStates(stage);
    const ctx = context(b!, [counter, profile], 'k', 1, { features });
    ctx.enableAtomicRecords();
    ctx.timestamp = 1000;
    ctx.state(counter).update(1);
    ctx.state(profile).put('x', { n: 1, tags: [] });
    ctx.endRecord();
    ctx.finishRecord();
    ctx.timestamp = 2000;
    ctx.state(counter).update(2);
    ctx.state(profile).put('y', { n: 2, tags: [] });
    ctx.state(profile).remove('x');
    ctx.undoRecord();
    assert.equal(await ctx.state(counter).value(), 1);
    assert.deepEqual(await ctx.state(profile).get('x'), { n: 1, tags: [] });
    assert.equal(await ctx.state(profile).get('y'), undefined);
    const read = await readFeature(b!, S, 1, features.get('counter')!, 'k', 'latest');
    assert.equal(read.value, 1);
    assert.equal(read.eventTimeMs, 1000);
    // A freeze between the write and the undo: the write is in the checkpoint, the undo refuses.
    ctx.state(counter).update(3);
    b!.freeze(1);
    assert.throws(() => ctx.undoRecord(), /cannot be undone/);
  }));

test('live state - a list add copies in only what it adds: no value handed in or out is shared with state, an undone add restores the list', () =>
  withBackends(1, async ([b]) => {
    const events = listState<{ n: number; tags: string[] }>('events');
    const ctx = context(b!, [events], 'k');
    ctx.enableAtomicRecords();
    const first = { n: 1, tags: ['a'] };
    await ctx.state(events).add(first);
    first.n = 99;
    first.tags.push('changed after add');
    const many = [{ n: 2, tags: [] }, { n: 3, tags: [] }];
    await ctx.state(events).addAll(many);
    many[0]!.n = 99;
    many.push({ n: 99, tags: [] });
    const read = await ctx.state(events).get();
    assert.deepEqual(read, [{ n: 1, tags: ['a'] }, { n: 2, tags: [] }, { n: 3, tags: [] }]);
    read[0]!.tags.push('changed after get');
    read.length = 0;
    ctx.endRecord();
    // A failed record's add is taken back, and the elements the lists share are untouched.
    await ctx.state(events).add({ n: 4, tags: [] });
    ctx.undoRecord();
    assert.deepEqual(await ctx.state(events).get(), [{ n: 1, tags: ['a'] }, { n: 2, tags: [] }, { n: 3, tags: [] }]);
    // Through a checkpoint and a cold read of the stored bytes.
    await ctx.state(events).add({ n: 5, tags: ['b'] });
    ctx.endRecord();
    b!.freeze(1);
    await b!.commit(1);
    const cold = context(b!, [events], 'k');
    assert.deepEqual(await cold.state(events).get(), [{ n: 1, tags: ['a'] }, { n: 2, tags: [] }, { n: 3, tags: [] }, { n: 5, tags: ['b'] }]);
    // A list with a serializer of its own is read, extended and written back whole.
    const json: StateSerializer<Array<{ n: number }>> = { encode: (v) => Buffer.from(JSON.stringify(v)), decode: (bytes) => JSON.parse(Buffer.from(bytes).toString()) as Array<{ n: number }> };
    const custom = listState<{ n: number }>('custom', { serializer: json });
    const c = context(b!, [custom], 'k');
    const item = { n: 1 };
    await c.state(custom).add(item);
    item.n = 2;
    await c.state(custom).addAll([{ n: 3 }]);
    assert.deepEqual(await c.state(custom).get(), [{ n: 1 }, { n: 3 }]);
  }));

test('live state - eviction takes only clean entries; a rollback forgets uncommitted values', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-live-'));
  const b = await StateBackend.open({ path: join(dir, 'db'), liveEntries: 10 });
  try {
    const n = valueState<number>('n');
    const keys = Array.from({ length: 100 }, (_, i) => `key-${i}`);
    for (const [i, key] of keys.entries()) context(b, [n], key).state(n).update(i);
    // 100 dirty entries: none evicted although the capacity is 10.
    assert.equal(b.liveEntries, 100);
    for (const [i, key] of keys.entries()) assert.equal(await context(b, [n], key).state(n).value(), i);
    b.freeze(1);
    await b.commit(1);
    // Reads after the flush evict clean entries down to the capacity and still read right.
    for (const [i, key] of keys.entries()) assert.equal(await context(b, [n], key).state(n).value(), i);
    assert.ok(b.liveEntries <= 10 + 1, `live entries ${b.liveEntries}`);
    for (const key of keys) context(b, [n], key).state(n).update(-1);
    b.rollback();
    for (const [i, key] of keys.entries()) assert.equal(await context(b, [n], key).state(n).value(), i);
  } finally {
    await b.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('live state - a pooled handle uses the entries it keeps only while the cache holds them: eviction, another writer, a rollback, byte-level writes, a dropped key group', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-live-'));
  const b = await StateBackend.open({ path: join(dir, 'db'), liveEntries: 4 });
  try {
    const n = valueState<number>('n');
    const m = mapState<number>('m');
    // The keyed task pools contexts per key (keyed-records.ts): one context, used all along.
    const pooled = context(b, [n, m], 'hot');
    pooled.state(n).update(1);
    pooled.state(m).put('a', 1);
    b.freeze(1);
    await b.commit(1);
    // 1. Evicted (clean, unused since the sweep passed), then written through another context of
    // the same key: the pooled handle reads the new values, not the entries it kept.
    for (let i = 0; i < 50; i++) await context(b, [n], `cold-${i}`).state(n).value();
    const other = context(b, [n, m], 'hot');
    other.state(n).update(2);
    other.state(m).put('a', 2);
    assert.equal(await pooled.state(n).value(), 2);
    assert.equal(await pooled.state(m).get('a'), 2);
    // Its writes go to the entry the cache holds: the other context sees them.
    pooled.state(n).update(3);
    pooled.state(m).put('a', 3);
    assert.equal(await other.state(n).value(), 3);
    assert.equal(await other.state(m).get('a'), 3);
    // 2. A rollback forgets uncommitted values, for the pooled handle too; a write after it is kept.
    b.rollback();
    assert.equal(await pooled.state(n).value(), 1);
    assert.equal(await pooled.state(m).get('a'), 1);
    pooled.state(n).update(4);
    assert.equal(await other.state(n).value(), 4);
    // 3. A byte-level write (a restore, an import) replaces the cached entry.
    b.putValue(S, 1, 'n', 'hot', 5);
    b.putMapEntry(S, 1, 'm', 'hot', 'a', 5);
    assert.equal(await pooled.state(n).value(), 5);
    assert.equal(await pooled.state(m).get('a'), 5);
    // 4. The key group dropped (it moved away) and imported back with other values.
    b.freeze(2);
    await b.commit(2);
    const exported = await b.exportKeyGroup(S, 1);
    pooled.state(n).update(6);
    await b.dropKeyGroup(S, 1);
    assert.equal(await pooled.state(n).value(), undefined);
    await b.importKeyGroup(S, exported);
    assert.equal(await pooled.state(n).value(), 5);
    assert.equal(await pooled.state(m).get('a'), 5);
    // 5. A failed record created a key and was undone: the next record's write is not lost in the entry the undo took out.
    const atomic = context(b, [n, m], 'new-key');
    atomic.enableAtomicRecords();
    atomic.state(m).put('z', 1);
    atomic.undoRecord();
    atomic.state(m).put('z', 2);
    atomic.endRecord();
    assert.equal(await context(b, [n, m], 'new-key').state(m).get('z'), 2);
  } finally {
    await b.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('live state - a feature read of a hot entity answers at once, not as a promise, and merges live changes, overlays and RocksDB', () =>
  withBackends(1, async ([b]) => {
    const counter = valueState<number>('counter');
    const stage = { features: [{ name: 'p', state: 'profile' }, { name: 'c', state: 'counter' }], states: [{ name: 'profile', kind: 'map' }, { name: 'counter', kind: 'value' }] } as unknown as StageSpec;
    const features = featureStates(stage);
    const ctx = context(b!, [profile, counter], 'k', 1, { features });
    ctx.timestamp = 1000;
    ctx.state(profile).put('a', { n: 1, tags: [] });
    ctx.state(profile).put('é', { n: 2, tags: ['x'] });
    ctx.state(counter).update(5);
    ctx.endRecord();
    ctx.finishRecord();
    b!.freeze(1);
    await b!.commit(1);
    const read = (name: string) => readFeature(b!, S, 1, features.get(name)!, 'k', 'latest');
    // The first read may go to RocksDB; it fills the caches.
    assert.deepEqual(await read('profile'), { found: true, value: { a: { n: 1, tags: [] }, é: { n: 2, tags: ['x'] } }, eventTimeMs: 1000, uncommitted: false, beyondRetention: false });
    await read('counter');
    const hot = read('profile');
    assert.ok(!(hot instanceof Promise), 'a hot map feature is read synchronously');
    assert.deepEqual(hot, { found: true, value: { a: { n: 1, tags: [] }, é: { n: 2, tags: ['x'] } }, eventTimeMs: 1000, uncommitted: false, beyondRetention: false });
    const hotCounter = read('counter');
    assert.ok(!(hotCounter instanceof Promise), 'a hot value feature is read synchronously');
    assert.equal(hotCounter.value, 5);
    // A record's changes, live and not yet checkpointed, are in the next read, still synchronous.
    ctx.timestamp = 2000;
    ctx.state(profile).put('b', { n: 3, tags: [] });
    ctx.state(profile).remove('a');
    ctx.state(counter).update(6);
    ctx.endRecord();
    ctx.finishRecord();
    const changed = read('profile');
    assert.ok(!(changed instanceof Promise));
    assert.deepEqual(changed, { found: true, value: { b: { n: 3, tags: [] }, é: { n: 2, tags: ['x'] } }, eventTimeMs: 2000, uncommitted: true, beyondRetention: false });
    assert.deepEqual(await read('counter'), { found: true, value: 6, eventTimeMs: 2000, uncommitted: true, beyondRetention: false });
    // The committed view still answers the checkpoint's values.
    assert.deepEqual((await readFeature(b!, S, 1, features.get('profile')!, 'k', 'committed')).value, { a: { n: 1, tags: [] }, é: { n: 2, tags: ['x'] } });
  }));
