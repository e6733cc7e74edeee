// Broadcast state and the broadcast context (worker/task/broadcast-context.ts) over a real RocksDB:
// per key group copies, read-only in keyed contexts, forEachKey over the live keys of a state.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { mapState, valueState, type MapState } from '../../sdk/index.ts';
import { StateBackend } from '../../worker/state/state-backend.ts';
import { KeyedContext } from '../../worker/task/keyed-context.ts';
import { BroadcastContextImpl } from '../../worker/task/broadcast-context.ts';

const STAGE = 'alerts';
const rules = mapState<{ min: number }>('rules');
const volume = valueState<number>('volume');
const declared = new Map([['rules', 'map'], ['volume', 'value']] as const);
const broadcastStates = new Set(['rules']);

test('broadcast state - one copy per key group, read-write in processBroadcastElement, read-only for keys; forEachKey visits live keys', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bcast-'));
  const backend = await StateBackend.open({ path: join(dir, 'db') });
  try {
    const out: Array<[unknown, number]> = [];
    const emit = (v: unknown, ts: number) => out.push([v, ts]);
    const keyed = (key: string, kg: number) => new KeyedContext(STAGE, backend, declared, key, kg, emit, { broadcastStates });
    for (const [key, v] of [['a', 5], ['b', 50], ['gone', 500]] as const) keyed(key, 2).state(volume).update(v);
    keyed('c', 3).state(volume).update(70);
    backend.freeze(1);
    await backend.commit(1);
    keyed('gone', 2).state(volume).clear();
    keyed('d', 2).state(volume).update(90); // only in the overlay

    const bctx = new BroadcastContextImpl(STAGE, backend, declared, broadcastStates, 2, emit, { broadcastStates }, 1234);
    bctx.broadcastState(rules).put('r1', { min: 10 });
    assert.deepEqual(await keyed('a', 2).broadcastState(rules).get('r1'), { min: 10 }, 'a key of the key group reads it');
    assert.equal(await keyed('c', 3).broadcastState(rules).get('r1'), undefined, 'another key group has its own copy');
    const readOnly = keyed('a', 2).broadcastState(rules) as unknown as MapState<{ min: number }>;
    assert.throws(() => readOnly.put('r2', { min: 1 }), /broadcast state rules is read-only in processElement/);
    assert.throws(() => keyed('a', 2).state(rules as never), /is broadcast state: read it with ctx\.broadcastState/);
    assert.throws(() => keyed('a', 2).broadcastState(mapState('other')), /is not a broadcast state of stage alerts/);

    const visited: string[] = [];
    await bctx.forEachKey(volume, async (key, ctx) => {
      visited.push(key);
      const v = (await ctx.state(volume).value())!;
      if (v >= 10) ctx.emit({ key, v });
      ctx.state(volume).update(v + 1);
    });
    assert.deepEqual(visited.sort(), ['a', 'b', 'd'], 'live keys of key group 2 only: not the cleared one, not key group 3');
    assert.deepEqual(out.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))), [[{ key: 'b', v: 50 }, 1234], [{ key: 'd', v: 90 }, 1234]]);
    assert.equal(await keyed('a', 2).state(volume).value(), 6, 'state written through the keyed context');
    await assert.rejects(() => bctx.forEachKey(rules, () => {}), /not keyed state of stage alerts/);
  } finally {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  }
});
