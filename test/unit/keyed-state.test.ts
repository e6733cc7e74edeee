// Keyed state kinds, TTL and serializers (sdk/state.ts, worker/state/state-handles.ts) against a real
// RocksDB, through the state backend's overlay → delta → RocksDB path and its checkpoint format.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCheckpointObject, encodeCheckpointObject } from '../../core/checkpoint-format.ts';
import { aggregatingState, listState, mapState, reducingState, valueState, type StateDescriptor, type StateSerializer } from '../../sdk/index.ts';
import type { ListState, MapState, ProcessContext, ReducingState, ValueState } from '../../sdk/index.ts';
import { KeyedContext } from '../../worker/task/keyed-context.ts';
import { StateBackend } from '../../worker/state/state-backend.ts';
import { TtlSweeper } from '../../worker/state/state-ttl-sweeper.ts';
import { KeyedTime } from '../../worker/task/keyed-time.ts';
import { withBackends } from '../kit/state-backends.ts';

const S = 'stage-k';


/** A manual clock: tests move time explicitly. */
function manualClock(startMs = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function context(backend: StateBackend, descriptors: StateDescriptor[], key: string, keyGroup: number, clock: () => number = Date.now): ProcessContext<unknown> {
  return new KeyedContext(S, backend, new Map(descriptors.map((d) => [d.name, d.kind])), key, keyGroup, () => undefined, { clock });
}

/** Checkpoint N of `from` (freeze, its delta through the checkpoint file codec, commit) restored into `to`. */
async function checkpointInto(from: StateBackend, to: StateBackend, checkpointId: number): Promise<void> {
  from.freeze(checkpointId);
  for (const { stage, groups } of from.frozenDelta(checkpointId)) {
    const decoded = decodeCheckpointObject(encodeCheckpointObject(stage, groups), `jobs/j/state/${stage}/w-${checkpointId}.delta`);
    for (const group of decoded.groups) await to.importKeyGroup(stage, group);
  }
  await from.commit(checkpointId);
}

const counter = valueState<number>('counter');
const profile = mapState<{ n: number }>('profile');
const events = listState<string>('events');
const maxSeen = reducingState<number>('max', (a, b) => Math.max(a, b));
const average = aggregatingState<number, { sum: number; count: number }, number>('avg', {
  createAccumulator: () => ({ sum: 0, count: 0 }),
  add: (v, acc) => ({ sum: acc.sum + v, count: acc.count + 1 }),
  getResult: (acc) => acc.sum / acc.count,
});
const ALL: StateDescriptor[] = [counter, profile, events, maxSeen, average];

test('keyed state - every kind reads back what was written, per key', () =>
  withBackends(1, async ([b]) => {
    const a = context(b!, ALL, 'alice', 3);
    const z = context(b!, ALL, 'zoe', 3);
    a.state(counter).update(7);
    a.state(profile).put('x', { n: 1 });
    await a.state(events).add('e1');
    await a.state(events).addAll(['e2', 'e3']);
    for (const v of [4, 9, 2]) await a.state(maxSeen).add(v);
    for (const v of [1, 2, 6]) await a.state(average).add(v);
    assert.equal(await a.state(counter).value(), 7);
    assert.deepEqual(await a.state(profile).get('x'), { n: 1 });
    assert.deepEqual(await a.state(events).get(), ['e1', 'e2', 'e3']);
    assert.equal(await a.state(maxSeen).get(), 9);
    assert.equal(await a.state(average).get(), 3);
    // Another key of the same key group sees none of it.
    assert.equal(await z.state(counter).value(), undefined);
    assert.equal(await z.state(profile).get('x'), undefined);
    assert.deepEqual(await z.state(events).get(), []);
    assert.equal(await z.state(maxSeen).get(), undefined);
    assert.equal(await z.state(average).get(), undefined);
    a.state(events).update(['only']);
    assert.deepEqual(await a.state(events).get(), ['only']);
    a.state(counter).clear();
    a.state(events).clear();
    a.state(maxSeen).clear();
    a.state(average).clear();
    assert.equal(await a.state(counter).value(), undefined);
    assert.deepEqual(await a.state(events).get(), []);
    assert.equal(await a.state(maxSeen).get(), undefined);
    assert.equal(await a.state(average).get(), undefined);
  }));

test('keyed state - an undeclared or mismatched descriptor is refused with the fix in the message', () =>
  withBackends(1, async ([b]) => {
    const ctx = context(b!, [counter], 'k', 0);
    assert.throws(() => ctx.state(events), /not declared in the options of stage stage-k/);
    assert.throws(() => ctx.state(valueState('events')), /not declared/);
    assert.throws(() => valueState('\u0001timer-event'), /reserved for the runtime/);
    assert.throws(() => valueState('t', { ttlMs: 0 }), /ttlMs must be a positive integer/);
  }));

test('keyed state - map state iterates in key order over overlay and RocksDB, with ranges and limits', () =>
  withBackends(1, async ([b]) => {
    const m = context(b!, [profile], 'k', 9).state(profile) as MapState<{ n: number }>;
    // Committed: a, c, e, g; then in the overlay: b, f added, c removed, e rewritten.
    for (const k of ['a', 'c', 'e', 'g']) m.put(k, { n: k.charCodeAt(0) });
    b!.freeze(1);
    await b!.commit(1);
    m.put('b', { n: 2 });
    m.put('f', { n: 6 });
    m.remove('c');
    m.put('e', { n: 55 });
    const expected: Array<[string, { n: number }]> = [
      ['a', { n: 97 }],
      ['b', { n: 2 }],
      ['e', { n: 55 }],
      ['f', { n: 6 }],
      ['g', { n: 103 }],
    ];
    assert.deepEqual(await m.entries(), expected);
    assert.deepEqual(await m.keys({ from: 'b', to: 'f' }), ['b', 'e']);
    assert.deepEqual(await m.keys({ from: 'c' }), ['e', 'f', 'g']);
    assert.deepEqual(await m.keys({ to: 'b' }), ['a']);
    assert.deepEqual(await m.keys({ from: 'b', limit: 2 }), ['b', 'e']);
    assert.deepEqual(await m.keys({ limit: 0 }), []);
    assert.deepEqual(await m.keys({ from: 'x' }), []);
    assert.equal(await m.contains('c'), false);
    assert.equal(await m.contains('g'), true);
    // Multi-byte keys sort by UTF-8 bytes, as RocksDB does.
    m.put('é', { n: 1 });
    m.put('z', { n: 1 });
    assert.deepEqual((await m.keys({ from: 'g' })), ['g', 'z', 'é']);
    assert.equal(await m.isEmpty(), false);
    await m.clear();
    assert.equal(await m.isEmpty(), true);
    assert.deepEqual(await m.entries(), []);
  }));

test('keyed state - a checkpoint restores every kind into another backend, and a rollback forgets what came after it', () =>
  withBackends(2, async ([source, target]) => {
    const write = async (b: StateBackend, key: string, base: number): Promise<void> => {
      const ctx = context(b, ALL, key, 17);
      ctx.state(counter).update(base);
      ctx.state(profile).put('p', { n: base });
      ctx.state(profile).put('q', { n: base + 1 });
      await ctx.state(events).addAll([`${key}-1`, `${key}-2`]);
      await ctx.state(maxSeen).add(base);
      await ctx.state(maxSeen).add(base + 5);
      await ctx.state(average).add(base);
      await ctx.state(average).add(base + 2);
    };
    await write(source!, 'u1', 10);
    await write(source!, 'u2', 20);
    await checkpointInto(source!, target!, 1);
    // After the checkpoint: more changes in the source, then a rollback drops them.
    const u1 = context(source!, ALL, 'u1', 17);
    u1.state(counter).update(999);
    await u1.state(events).add('lost');
    source!.rollback();
    for (const b of [source!, target!]) {
      for (const [key, base] of [['u1', 10], ['u2', 20]] as const) {
        const ctx = context(b, ALL, key, 17);
        assert.equal(await ctx.state(counter).value(), base);
        assert.deepEqual(await ctx.state(profile).entries(), [['p', { n: base }], ['q', { n: base + 1 }]]);
        assert.deepEqual(await ctx.state(events).get(), [`${key}-1`, `${key}-2`]);
        assert.equal(await ctx.state(maxSeen).get(), base + 5);
        assert.equal(await ctx.state(average).get(), base + 1);
      }
    }
    // The default encoding is the query path's: getValue and mapEntries decode handle-written values.
    assert.equal(await target!.getValue(S, 17, 'counter', 'u2'), 20);
    assert.deepEqual(await target!.mapEntries(S, 17, 'profile', 'u2'), [['p', { n: 20 }], ['q', { n: 21 }]]);
  }));

test('keyed state - a descriptor serializer encodes the stored bytes', () =>
  withBackends(1, async ([b]) => {
    // Stores a number as 8 bytes of big-endian float, so the stored bytes are predictable.
    const float: StateSerializer<number> = {
      encode: (v) => {
        const out = Buffer.alloc(8);
        out.writeDoubleBE(v);
        return out;
      },
      decode: (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readDoubleBE(0),
    };
    const d = valueState<number>('f', { serializer: float });
    const s = context(b!, [d], 'k', 1).state(d) as ValueState<number>;
    s.update(2.5);
    const stored = await b!.readBytes(S, 1, 'f', 'k', undefined);
    assert.deepEqual(stored, float.encode(2.5));
    assert.equal(await s.value(), 2.5);
  }));

test('keyed state - TTL: an expired value is never returned, a write restarts its clock, a read does not', () =>
  withBackends(1, async ([b]) => {
    const clock = manualClock();
    const v = valueState<string>('session', { ttlMs: 1000 });
    const m = mapState<number>('seen', { ttlMs: 1000 });
    const l = listState<number>('recent', { ttlMs: 1000 });
    const r = reducingState<number>('sum', (x, y) => x + y, { ttlMs: 1000 });
    const ctx = context(b!, [v, m, l, r], 'k', 2, clock.now);
    const value = ctx.state(v) as ValueState<string>;
    const map = ctx.state(m) as MapState<number>;
    const list = ctx.state(l) as ListState<number>;
    const sum = ctx.state(r) as ReducingState<number>;
    value.update('s1');
    map.put('a', 1);
    map.put('b', 2);
    await list.add(1);
    await sum.add(5);
    clock.advance(600);
    map.put('b', 20); // restarts b's clock only
    await sum.add(1); // a write: restarts the sum's clock
    assert.equal(await value.value(), 's1', 'a read does not restart the clock');
    clock.advance(399);
    assert.equal(await value.value(), 's1', '999 ms after the write');
    clock.advance(1);
    assert.equal(await value.value(), undefined, '1000 ms after the write: expired');
    assert.deepEqual(await map.entries(), [['b', 20]]);
    assert.equal(await map.get('a'), undefined);
    assert.deepEqual(await list.get(), []);
    assert.equal(await sum.get(), 6);
    // Expired entries were deleted when read, so the next checkpoint removes them from RocksDB.
    b!.freeze(1);
    await b!.commit(1);
    assert.equal(await b!.readBytes(S, 2, 'session', 'k', undefined, 'committed'), null);
    assert.equal(await b!.readBytes(S, 2, 'seen', 'k', 'a', 'committed'), null);
    assert.notEqual(await b!.readBytes(S, 2, 'seen', 'k', 'b', 'committed'), null);
    // A map range with a limit counts live entries only.
    map.put('c', 3);
    map.put('d', 4);
    clock.advance(500); // b (written at +600) expires at +1600: now +1500
    map.put('e', 5);
    clock.advance(100); // +1600: b expired; c, d, e live
    assert.deepEqual(await map.entries({ limit: 2 }), [['c', 3], ['d', 4]]);
    assert.deepEqual(await map.keys(), ['c', 'd', 'e']);
  }));

test('keyed state - TTL: the background sweep deletes expired committed values in bounded steps, and spares rewritten ones', () =>
  withBackends(1, async ([b]) => {
    const clock = manualClock();
    const v = valueState<number>('v', { ttlMs: 1000 });
    const m = mapState<number>('m', { ttlMs: 1000 });
    const keep = valueState<number>('keep');
    const descriptors = [v, m, keep];
    for (let i = 0; i < 50; i++) {
      const ctx = context(b!, descriptors, `k${i}`, 4, clock.now);
      ctx.state(v).update(i);
      ctx.state(m).put('x', i);
      ctx.state(m).put('y', i);
      ctx.state(keep).update(i);
    }
    b!.freeze(1);
    await b!.commit(1);
    clock.advance(1000);
    // Rewritten after the checkpoint: must survive the sweep.
    context(b!, descriptors, 'k7', 4, clock.now).state(v).update(70);
    const specs = descriptors.map((d) => ({ name: d.name, kind: d.kind, ...(d.ttlMs !== undefined && { ttlMs: d.ttlMs }) }));
    const sweeper = new TtlSweeper(b!, S, specs, clock.now);
    let calls = 0;
    let expired = 0;
    let scanned = 0;
    for (;;) {
      const result = await sweeper.sweep(4, 40);
      calls++;
      expired += result.expired;
      scanned += result.scanned;
      assert.ok(result.scanned <= 40, 'bounded work per call');
      if (result.finished) break;
    }
    assert.equal(scanned, 200, 'every committed entry looked at once');
    assert.equal(calls, 6, 'five full pages, then one that finds the end');
    assert.equal(expired, 149, '50 values + 100 map entries, minus the rewritten one');
    b!.freeze(2);
    await b!.commit(2);
    const committed = await b!.exportKeyGroup(S, 4);
    assert.equal(committed.entries.length, 51, 'the 50 "keep" values and the rewritten one remain');
    assert.equal(await context(b!, descriptors, 'k7', 4, clock.now).state(v).value(), 70);
  }));

test('keyed state - TTL: the task clock sweeps expired state in the background, one key group at a time', () =>
  withBackends(1, async ([b]) => {
    const clock = manualClock();
    const v = valueState<number>('v', { ttlMs: 1000 });
    for (const kg of [1, 2]) for (let i = 0; i < 30; i++) context(b!, [v], `k${i}`, kg, clock.now).state(v).update(i);
    b!.freeze(1);
    await b!.commit(1);
    clock.advance(1000);
    const time = new KeyedTime({
      stage: S,
      backend: b!,
      declared: new Map([['v', 'value']]),
      states: [{ name: 'v', kind: 'value', ttlMs: 1000 }],
      upstreamSenders: [],
      keyGroups: [1, 2],
      onTimer: undefined,
      runUser: async (_kg, run) => run(),
      emit: () => undefined,
      emitSide: () => undefined,
      forwardWatermark: () => undefined,
      clock: clock.now,
      sweepEntriesPerTick: 20,
    });
    // What the task's queue does with ticks: here, called in turn for each key group.
    // Round 1: key group 1 sweeps 20 (key group 2 waits its turn); round 2: key group 1 sweeps the
    // last 10 and is done, so key group 2's tick sweeps its first 20.
    for (let round = 0; round < 2; round++) for (const kg of [1, 2]) await time.onTick(kg);
    b!.freeze(2);
    await b!.commit(2);
    assert.deepEqual((await b!.exportKeyGroup(S, 1)).entries, [], 'key group 1 swept');
    assert.equal((await b!.exportKeyGroup(S, 2)).entries.length, 10, 'key group 2: 20 per tick, one tick so far');
    for (const kg of [1, 2]) await time.onTick(kg);
    b!.freeze(3);
    await b!.commit(3);
    assert.deepEqual((await b!.exportKeyGroup(S, 2)).entries, []);
  }));
