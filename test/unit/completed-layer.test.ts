// The completed layer (worker/state/delta-chain.ts): completed checkpoints' changes stay in memory,
// merged, until RocksDB takes them in one batch. Every view must read as if each commit had gone to
// RocksDB at once; RocksDB must take a key changed at every checkpoint once per write of the layer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keyGroupPrefix, type StateBackend } from '../../worker/state/state-backend.ts';
import { withBackends } from '../kit/state-backends.ts';

const S = 'stage-a';

/** Keys RocksDB itself holds in one key group (what a scan of committed state sees). */
async function rocksKeys(b: StateBackend, keyGroup: number): Promise<number> {
  let count = 0;
  const prefix = keyGroupPrefix(S, keyGroup);
  for await (const _ of b.scanCommitted(prefix, prefix)) count++;
  return count;
}

test('completed layer - commits stay in memory until written: both views read them, RocksDB takes each key once per write', () =>
  withBackends(1, async ([b]) => {
    for (let round = 1; round <= 5; round++) {
      for (let i = 0; i < 100; i++) b!.putValue(S, 1, 'v', `k${i}`, round * 1000 + i);
      b!.putMapEntry(S, 1, 'm', 'map', `e${round}`, round);
      b!.freeze(round);
      await b!.commit(round);
      assert.equal(await b!.getValue(S, 1, 'v', 'k7', 'committed'), round * 1000 + 7, `round ${round}: the committed view reads the completed layer`);
      assert.equal(b!.overlayHas(b!.stateKeyString(S, 1, 'v', 'k7')), false, 'a completed change is not reported uncommitted');
      assert.equal(b!.unwritten(b!.stateKeyString(S, 1, 'v', 'k7')), true, 'but it is not in RocksDB yet');
    }
    assert.equal(b!.storeStats.writtenEntries, 0, 'nothing written to RocksDB within completedMs');
    assert.equal(await rocksKeys(b!, 1), 0);
    assert.deepEqual(await b!.mapEntries(S, 1, 'm', 'map', 'committed'), [1, 2, 3, 4, 5].map((r) => [`e${r}`, r]));

    await b!.writeCompleted();
    assert.equal(b!.storeStats.writtenEntries, 105, '100 values written once each, not 5 times, and the 5 map entries');
    assert.equal(await rocksKeys(b!, 1), 105);
    assert.equal(await b!.getValue(S, 1, 'v', 'k99', 'committed'), 5099);

    // A tombstone in the layer hides what RocksDB still holds, in both views.
    b!.deleteValue(S, 1, 'v', 'k0');
    b!.deleteMapEntry(S, 1, 'm', 'map', 'e1');
    b!.freeze(6);
    await b!.commit(6);
    assert.equal(await rocksKeys(b!, 1), 105, 'RocksDB still holds k0 and e1');
    for (const view of ['latest', 'committed'] as const) {
      assert.equal(await b!.getValue(S, 1, 'v', 'k0', view), undefined, `${view}: k0 deleted`);
      assert.deepEqual((await b!.mapEntries(S, 1, 'm', 'map', view)).map(([k]) => k), ['e2', 'e3', 'e4', 'e5'], `${view}: e1 deleted`);
      assert.equal(await b!.hasMap(S, 1, 'm', 'map', view), true);
    }
    await b!.writeCompleted();
    assert.equal(await rocksKeys(b!, 1), 103);
  }));

test('completed layer - written once it holds completedBytes, or at every commit with completedMs 0', async () => {
  await withBackends(1, async ([b]) => {
    const value = 'x'.repeat(200);
    b!.putValue(S, 2, 'v', 'a', value);
    b!.freeze(1);
    await b!.commit(1);
    assert.equal(b!.storeStats.writtenEntries, 0, 'one entry of ~250 bytes stays in memory');
    for (let i = 0; i < 20; i++) b!.putValue(S, 2, 'v', `b${i}`, value);
    b!.freeze(2);
    await b!.commit(2);
    assert.equal(b!.storeStats.writtenEntries, 21, 'past 4,096 bytes the layer goes to RocksDB');
    assert.equal(b!.unwritten(b!.stateKeyString(S, 2, 'v', 'a')), false);
  }, { completedBytes: 4096 });
  await withBackends(1, async ([b]) => {
    b!.putValue(S, 2, 'v', 'a', 1);
    b!.freeze(1);
    await b!.commit(1);
    assert.equal(b!.storeStats.writtenEntries, 1);
  }, { completedMs: 0 });
});

test('completed layer - a rollback keeps it; a dropped key group leaves it; an export, a snapshot and close see it', () =>
  withBackends(1, async ([b]) => {
    b!.putValue(S, 3, 'v', 'a', 'one');
    b!.putValue(S, 4, 'v', 'b', 'one');
    b!.freeze(1);
    await b!.commit(1);
    b!.putValue(S, 3, 'v', 'a', 'two');
    b!.freeze(2);
    b!.putValue(S, 3, 'v', 'a', 'three');
    b!.rollback();
    assert.equal(await b!.getValue(S, 3, 'v', 'a'), 'one', 'back to checkpoint 1, which only the layer holds');
    assert.equal(b!.committedCheckpointId, 1);
    const snapshot = await b!.snapshotKeyGroup(S, 3, 1);
    assert.deepEqual(snapshot.entries.map(([k]) => Buffer.from(k).toString('latin1')), [b!.stateKeyString(S, 3, 'v', 'a')], 'a snapshot at 1 holds the layer\'s entry');

    await b!.dropKeyGroup(S, 3);
    for (const view of ['latest', 'committed'] as const) assert.equal(await b!.getValue(S, 3, 'v', 'a', view), undefined, `${view}: dropped`);
    const exported = await b!.exportKeyGroup(S, 4);
    assert.equal(exported.entries.length, 1, 'an export writes the layer first');
    assert.equal(await rocksKeys(b!, 3), 0, 'the dropped key group never reached RocksDB');

    b!.putValue(S, 4, 'v', 'c', 'kept');
    b!.freeze(3);
    await b!.commit(3);
    assert.equal(await rocksKeys(b!, 4), 1);
  }));

test('completed layer - random writes, checkpoints, rollbacks, drops and layer writes: every read in both views equals a model', () =>
  withBackends(1, async ([b]) => {
    let seed = 2026;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    type Model = Map<string, number>; // "<keyGroup>|v|<key>" or "<keyGroup>|m|<key>|<mapKey>" → value
    let latest: Model = new Map();
    let committed: Model = new Map();
    /** Frozen, not completed: checkpoint id → the state it froze. */
    const frozen = new Map<number, Model>();
    let checkpoint = 0;
    const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`);
    const mapKeys = ['a', 'b', 'c'];
    const check = async (what: string) => {
      for (const kg of [0, 1, 2]) {
        for (const key of keys) {
          for (const [view, model] of [['latest', latest], ['committed', committed]] as const) {
            assert.equal(await b!.getValue(S, kg, 'v', key, view), model.get(`${kg}|v|${key}`), `${what}: ${view} value ${kg}/${key}`);
            const want = mapKeys.filter((m) => model.has(`${kg}|m|${key}|${m}`)).map((m) => [m, model.get(`${kg}|m|${key}|${m}`)]);
            assert.deepEqual(await b!.mapEntries(S, kg, 'm', key, view), want, `${what}: ${view} map ${kg}/${key}`);
          }
        }
      }
    };
    for (let round = 0; round < 150; round++) {
      for (let op = 0; op < 15; op++) {
        const kg = random(3);
        const key = keys[random(keys.length)]!;
        const value = random(1000);
        if (random(2) === 0) {
          const id = `${kg}|v|${key}`;
          if (random(4) === 0) {
            b!.deleteValue(S, kg, 'v', key);
            latest.delete(id);
          } else {
            b!.putValue(S, kg, 'v', key, value);
            latest.set(id, value);
          }
        } else {
          const mapKey = mapKeys[random(mapKeys.length)]!;
          const id = `${kg}|m|${key}|${mapKey}`;
          if (random(4) === 0) {
            b!.deleteMapEntry(S, kg, 'm', key, mapKey);
            latest.delete(id);
          } else {
            b!.putMapEntry(S, kg, 'm', key, mapKey, value);
            latest.set(id, value);
          }
        }
      }
      const action = random(10);
      if (action < 6) {
        b!.freeze(++checkpoint);
        frozen.set(checkpoint, new Map(latest));
        // Usually completed at once; sometimes later, with the next one.
        if (random(3) > 0) {
          await b!.commit(checkpoint);
          committed = frozen.get(checkpoint)!;
          frozen.clear();
        }
      } else if (action === 6) {
        b!.rollback();
        latest = new Map(committed);
        frozen.clear();
        checkpoint = b!.frozenCheckpointId;
      } else if (action === 7) {
        const kg = random(3);
        await b!.dropKeyGroup(S, kg);
        for (const model of [latest, committed, ...frozen.values()]) for (const id of [...model.keys()]) if (id.startsWith(`${kg}|`)) model.delete(id);
      } else if (action === 8) {
        await b!.writeCompleted();
      }
      await check(`round ${round}`);
    }
    assert.ok(b!.storeStats.writtenEntries > 0, 'the layer was written by size and on demand');
    // In the end RocksDB alone holds exactly the committed model.
    b!.rollback();
    await b!.writeCompleted();
    latest = new Map(committed);
    for (const kg of [0, 1, 2]) {
      const rocks = (await b!.exportKeyGroup(S, kg)).entries.length;
      assert.equal(rocks, [...committed.keys()].filter((id) => id.startsWith(`${kg}|`)).length, `RocksDB holds key group ${kg} as committed`);
    }
    await check('after the last write');
  }, { completedBytes: 3000 }));
