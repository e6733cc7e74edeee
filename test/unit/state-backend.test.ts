import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { unpack } from 'msgpackr';
import { decodeCheckpointObject, encodeCheckpointObject, type KeyGroupEntries } from '../../core/checkpoint-format.ts';
import { decodeKeyGroupPrefix, encodeStateKey, keyGroupPrefix, StateBackend } from '../../worker/state/state-backend.ts';
import type { StateBackendOptions } from '../../worker/state/state-backend.ts';
import { ReadCache } from '../../worker/state/read-cache.ts';
import { SMALL_MAP_ENTRIES } from '../../worker/state/merged-reads.ts';

// Each test gets a real RocksDB in a fresh directory, removed afterwards.
async function withBackend(
  run: (backend: StateBackend, dir: string) => Promise<void>,
  options: Omit<StateBackendOptions, 'path'> = {},
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-state-'));
  const backend = await StateBackend.open({ ...options, path: join(dir, 'db') });
  try {
    await run(backend, join(dir, 'db'));
  } finally {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const S = 'stage-a';

/** Puts (or, for undefined, deletes) an entry of map `key` of state 'm', in the backend and in a model of that map. */
function writeMapEntry(b: StateBackend, keyGroup: number, key: string, mapKey: string, value: number | undefined, model: Map<string, number>): void {
  if (value === undefined) {
    b.deleteMapEntry(S, keyGroup, 'm', key, mapKey);
    model.delete(mapKey);
  } else {
    b.putMapEntry(S, keyGroup, 'm', key, mapKey, value);
    model.set(mapKey, value);
  }
}

/** A deterministic random integer in [0, n): the high bits of a linear congruential generator (its low bits repeat with a short period). */
function seeded(seed: number): (n: number) => number {
  return (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 16) % n;
  };
}

test('state backend - a put is visible in the latest view at once and in the committed view only after commit', () =>
  withBackend(async (b) => {
    b.putValue(S, 1, 'count', 'k', 41);
    assert.equal(await b.getValue(S, 1, 'count', 'k'), 41);
    assert.equal(await b.getValue(S, 1, 'count', 'k', 'committed'), undefined);
    b.freeze(1);
    assert.equal(await b.getValue(S, 1, 'count', 'k'), 41, 'the latest view reads a frozen delta');
    assert.equal(await b.getValue(S, 1, 'count', 'k', 'committed'), undefined, 'a frozen delta is invisible to the committed view');
    await b.commit(1);
    assert.equal(await b.getValue(S, 1, 'count', 'k', 'committed'), 41);
    assert.equal(await b.getValue(S, 1, 'count', 'k'), 41);
    assert.equal(await b.getValue(S, 1, 'count', 'other'), undefined);
  }));

test('state backend - a delete hides the committed value in the latest view and removes it on commit', () =>
  withBackend(async (b) => {
    b.putValue(S, 1, 'v', 'k', { a: 1 });
    b.freeze(1);
    await b.commit(1);
    b.deleteValue(S, 1, 'v', 'k');
    assert.equal(await b.getValue(S, 1, 'v', 'k'), undefined);
    assert.deepEqual(await b.getValue(S, 1, 'v', 'k', 'committed'), { a: 1 });
    b.freeze(2);
    assert.equal(await b.getValue(S, 1, 'v', 'k'), undefined, 'a frozen tombstone hides the committed value');
    await b.commit(2);
    assert.equal(await b.getValue(S, 1, 'v', 'k', 'committed'), undefined);
    assert.equal(await b.getValue(S, 1, 'v', 'k'), undefined);
  }));

test('state backend - the newest overlay wins: active over newer frozen over older frozen over RocksDB', () =>
  withBackend(async (b) => {
    b.putValue(S, 0, 'v', 'k', 'committed');
    b.freeze(1);
    await b.commit(1);
    b.putValue(S, 0, 'v', 'k', 'delta-2');
    b.freeze(2);
    b.putValue(S, 0, 'v', 'k', 'delta-3');
    b.freeze(3);
    assert.equal(await b.getValue(S, 0, 'v', 'k'), 'delta-3');
    b.putValue(S, 0, 'v', 'k', 'active');
    assert.equal(await b.getValue(S, 0, 'v', 'k'), 'active');
    assert.equal(await b.getValue(S, 0, 'v', 'k', 'committed'), 'committed');
  }));

test('state backend - commit of N writes the deltas up to N only, older first', () =>
  withBackend(async (b) => {
    b.putValue(S, 0, 'v', 'x', 1);
    b.putValue(S, 0, 'v', 'only-2', 'two');
    b.freeze(2);
    b.putValue(S, 0, 'v', 'x', 2);
    b.freeze(4);
    b.putValue(S, 0, 'v', 'x', 3);
    b.putValue(S, 0, 'v', 'only-6', 'six');
    b.freeze(6);
    await b.commit(4);
    assert.equal(await b.getValue(S, 0, 'v', 'x', 'committed'), 2, 'delta 4 overwrote delta 2 in the same batch');
    assert.equal(await b.getValue(S, 0, 'v', 'only-2', 'committed'), 'two');
    assert.equal(await b.getValue(S, 0, 'v', 'only-6', 'committed'), undefined);
    assert.equal(await b.getValue(S, 0, 'v', 'x'), 3);
    await b.commit(6);
    assert.equal(await b.getValue(S, 0, 'v', 'x', 'committed'), 3);
    assert.equal(await b.getValue(S, 0, 'v', 'only-6', 'committed'), 'six');
  }));

test('state backend - rollback restores the last committed state of values and maps', () =>
  withBackend(async (b) => {
    b.putValue(S, 0, 'v', 'k', 'committed');
    b.putMapEntry(S, 0, 'm', 'k', 'a', 1);
    b.freeze(1);
    await b.commit(1);
    b.putValue(S, 0, 'v', 'k', 'frozen');
    b.putMapEntry(S, 0, 'm', 'k', 'b', 2);
    b.freeze(2);
    b.deleteValue(S, 0, 'v', 'k');
    b.deleteMapEntry(S, 0, 'm', 'k', 'a');
    b.putValue(S, 0, 'v', 'new', 'active');
    b.rollback();
    assert.equal(await b.getValue(S, 0, 'v', 'k'), 'committed');
    assert.equal(await b.getValue(S, 0, 'v', 'new'), undefined);
    assert.deepEqual(await b.mapEntries(S, 0, 'm', 'k'), [['a', 1]]);
    assert.equal(b.activeOverlaySize(), 0);
    b.putValue(S, 0, 'v', 'k', 'retry');
    b.freeze(2);
    await b.commit(2);
    assert.equal(await b.getValue(S, 0, 'v', 'k', 'committed'), 'retry', 'a checkpoint id dropped by rollback can be frozen again');
    assert.deepEqual(await b.mapEntries(S, 0, 'm', 'k', 'committed'), [['a', 1]], 'a rolled-back delta is never committed');
    assert.equal(await b.getValue(S, 0, 'v', 'new', 'committed'), undefined);
  }));

test('state backend - freeze refuses a checkpoint id not after the last frozen or committed one', () =>
  withBackend(async (b) => {
    b.freeze(3);
    assert.throws(() => b.freeze(3), { code: 'FAILED_PRECONDITION' });
    assert.throws(() => b.freeze(2), { code: 'FAILED_PRECONDITION' });
    assert.throws(() => b.freeze(-1), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => b.freeze(1.5), { code: 'INVALID_ARGUMENT' });
    b.freeze(4);
    await b.commit(4);
    b.rollback();
    assert.throws(() => b.freeze(4), { code: 'FAILED_PRECONDITION' });
    b.freeze(5);
  }));

test('state backend - map entries are ordered by the UTF-8 bytes of mapKey', () =>
  withBackend(async (b) => {
    const mapKeys = ['b', 'a', 'Z', 'é', 'ä', '😀', '', 'aa', 'a\u0000', '\uffff', '中'];
    for (const [i, mapKey] of mapKeys.entries()) b.putMapEntry(S, 0, 'm', 'k', mapKey, i);
    const expected = [...mapKeys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    assert.deepEqual((await b.mapEntries(S, 0, 'm', 'k')).map(([k]) => k), expected, 'from the overlay');
    b.freeze(1);
    await b.commit(1);
    const fromRocks = await b.mapEntries(S, 0, 'm', 'k', 'committed');
    assert.deepEqual(fromRocks.map(([k]) => k), expected, 'from RocksDB');
    assert.deepEqual(fromRocks.map(([, v]) => v), expected.map((k) => mapKeys.indexOf(k)));
  }));

test('state backend - map reads merge the active overlay and frozen deltas over RocksDB, hiding tombstones', () =>
  withBackend(async (b) => {
    for (const k of ['a', 'c', 'e', 'g']) b.putMapEntry(S, 0, 'm', 'k', k, `committed-${k}`);
    b.freeze(1);
    await b.commit(1);
    b.putMapEntry(S, 0, 'm', 'k', 'b', 'frozen-b');
    b.putMapEntry(S, 0, 'm', 'k', 'c', 'frozen-c');
    b.deleteMapEntry(S, 0, 'm', 'k', 'e');
    b.freeze(2);
    b.putMapEntry(S, 0, 'm', 'k', 'e', 'active-e');
    b.deleteMapEntry(S, 0, 'm', 'k', 'g');
    b.putMapEntry(S, 0, 'm', 'k', 'h', 'active-h');
    b.deleteMapEntry(S, 0, 'm', 'k', 'zz-never-existed');
    const latest = [['a', 'committed-a'], ['b', 'frozen-b'], ['c', 'frozen-c'], ['e', 'active-e'], ['h', 'active-h']];
    assert.deepEqual(await b.mapEntries(S, 0, 'm', 'k'), latest);
    assert.deepEqual(await b.mapEntries(S, 0, 'm', 'k', 'committed'), ['a', 'c', 'e', 'g'].map((k) => [k, `committed-${k}`]));
    assert.equal(await b.getMapEntry(S, 0, 'm', 'k', 'g'), undefined);
    assert.equal(await b.getMapEntry(S, 0, 'm', 'k', 'g', 'committed'), 'committed-g');
    assert.equal(await b.getMapEntry(S, 0, 'm', 'k', 'b'), 'frozen-b');
    b.freeze(3);
    await b.commit(3);
    assert.deepEqual(await b.mapEntries(S, 0, 'm', 'k', 'committed'), latest);
    assert.deepEqual(await b.mapEntries(S, 0, 'm', 'k'), latest);
    assert.deepEqual(await b.mapEntries(S, 0, 'm', 'empty'), []);
  }));

test('state backend - clearMap tombstones committed and overlay entries, and a later put survives', () =>
  withBackend(async (b) => {
    b.putMapEntry(S, 0, 'm', 'k', 'a', 1);
    b.putMapEntry(S, 0, 'm', 'k', 'b', 2);
    b.putMapEntry(S, 0, 'm', 'other', 'a', 9);
    b.freeze(1);
    await b.commit(1);
    b.putMapEntry(S, 0, 'm', 'k', 'c', 3);
    b.freeze(2);
    b.putMapEntry(S, 0, 'm', 'k', 'd', 4);
    assert.equal(await b.hasMap(S, 0, 'm', 'k'), true);
    await b.clearMap(S, 0, 'm', 'k');
    assert.deepEqual(await b.mapEntries(S, 0, 'm', 'k'), []);
    assert.equal(await b.hasMap(S, 0, 'm', 'k'), false);
    assert.equal(await b.hasMap(S, 0, 'm', 'k', 'committed'), true);
    assert.deepEqual(await b.mapEntries(S, 0, 'm', 'other'), [['a', 9]]);
    b.putMapEntry(S, 0, 'm', 'k', 'b', 'again');
    assert.equal(await b.hasMap(S, 0, 'm', 'k'), true);
    b.freeze(3);
    await b.commit(3);
    assert.deepEqual(await b.mapEntries(S, 0, 'm', 'k', 'committed'), [['b', 'again']]);
    assert.equal(await b.hasMap(S, 0, 'm', 'nothing'), false);
  }));

test('state backend - only committed state survives close and reopen', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-state-'));
  try {
    const first = await StateBackend.open({ path: join(dir, 'db') });
    first.putValue(S, 5, 'v', 'kept', 'yes');
    first.putMapEntry(S, 5, 'm', 'k', 'x', [1, 2]);
    first.freeze(1);
    await first.commit(1);
    first.putValue(S, 5, 'v', 'frozen', 'lost');
    first.freeze(2);
    first.putValue(S, 5, 'v', 'active', 'lost');
    await first.close();
    await assert.rejects(first.getValue(S, 5, 'v', 'kept'), { code: 'FAILED_PRECONDITION' });

    const second = await StateBackend.open({ path: join(dir, 'db') });
    try {
      assert.equal(await second.getValue(S, 5, 'v', 'kept'), 'yes');
      assert.deepEqual(await second.mapEntries(S, 5, 'm', 'k'), [['x', [1, 2]]]);
      assert.equal(await second.getValue(S, 5, 'v', 'frozen'), undefined);
      assert.equal(await second.getValue(S, 5, 'v', 'active'), undefined);
      assert.ok((await second.diskBytes()) > 0);
    } finally {
      await second.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('state backend - dropKeyGroup removes that key group only, committed and in overlays', () =>
  withBackend(async (b) => {
    const stages = ['s', 's1', 't'];
    for (const stage of stages) {
      for (const keyGroup of [6, 7, 8, 255, 256]) {
        b.putValue(stage, keyGroup, 'v', 'k', `${stage}/${keyGroup}`);
        b.putMapEntry(stage, keyGroup, 'm', 'k', 'e', `${stage}/${keyGroup}`);
      }
    }
    b.freeze(1);
    await b.commit(1);
    b.putValue('s', 7, 'v', 'frozen', 1);
    b.freeze(2);
    b.putValue('s', 7, 'v', 'active', 1);
    b.putMapEntry('s', 7, 'm', 'active', 'e', 1);
    b.putValue('s', 8, 'v', 'active', 'neighbour');
    assert.equal(await b.getValue('s', 7, 'v', 'k', 'committed'), 's/7', 'cached before the drop');
    await b.dropKeyGroup('s', 7);
    for (const view of ['latest', 'committed'] as const) {
      assert.equal(await b.getValue('s', 7, 'v', 'k', view), undefined);
      assert.deepEqual(await b.mapEntries('s', 7, 'm', 'k', view), []);
    }
    assert.equal(await b.getValue('s', 7, 'v', 'frozen'), undefined);
    assert.equal(await b.getValue('s', 7, 'v', 'active'), undefined);
    assert.equal(await b.hasMap('s', 7, 'm', 'active'), false);
    assert.equal(await b.getValue('s', 8, 'v', 'active'), 'neighbour');
    for (const stage of stages) {
      for (const keyGroup of [6, 7, 8, 255, 256]) {
        if (stage === 's' && keyGroup === 7) continue;
        assert.equal(await b.getValue(stage, keyGroup, 'v', 'k', 'committed'), `${stage}/${keyGroup}`);
        assert.deepEqual(await b.mapEntries(stage, keyGroup, 'm', 'k'), [['e', `${stage}/${keyGroup}`]]);
      }
    }
    await b.commit(2);
    assert.equal(await b.getValue('s', 7, 'v', 'frozen', 'committed'), undefined);
  }));

test('state backend - keys of different stages, key groups, states, keys and map keys never collide', () =>
  withBackend(async (b) => {
    const tuples: Array<[string, number, string, string, string | undefined]> = [
      ['s', 0, 'st', 'a', 'bc'],
      ['s', 0, 'st', 'ab', 'c'],
      // A map entry with mapKey '' has its value key's bytes: value and map state of one name
      // never coexist in a stage, so this pair is deliberately not in the list.
      ['s', 0, 'st', 'abc', undefined],
      ['s', 0, 'sta', 'bc', undefined],
      ['s', 0, 'st', '', 'abc'],
      ['ss', 0, 't', 'abc', undefined],
      ['s', 1, 'st', 'abc', undefined],
      ['s', 256, 'st', 'abc', undefined],
      ['', 0, '', '', undefined],
      ['', 0, '', 'a', undefined],
      ['é', 0, 'st', 'abc', undefined],
    ];
    const encoded = new Set(tuples.map(([stage, kg, state, key, mapKey]) => encodeStateKey(stage, kg, state, key, mapKey).toString('hex')));
    assert.equal(encoded.size, tuples.length);
    assert.deepEqual(
      encodeStateKey('s', 258, 'st', 'ab', 'c'),
      Buffer.from([1, 0x73, 1, 2, 2, 0x73, 0x74, 0, 2, 0x61, 0x62, 0x63]),
      'the documented layout',
    );
    assert.deepEqual(keyGroupPrefix('s', 258), Buffer.from([1, 0x73, 1, 2]));

    b.putMapEntry('s', 0, 'st', 'a', 'bc', 'map a/bc');
    b.putMapEntry('s', 0, 'st', 'ab', 'c', 'map ab/c');
    b.putValue('s', 0, 'st2', 'abc', 'value abc');
    b.freeze(1);
    await b.commit(1);
    assert.deepEqual(await b.mapEntries('s', 0, 'st', 'a'), [['bc', 'map a/bc']]);
    assert.deepEqual(await b.mapEntries('s', 0, 'st', 'ab'), [['c', 'map ab/c']]);
    assert.equal(await b.hasMap('s', 0, 'st', 'abc'), false);
    assert.equal(await b.getMapEntry('s', 0, 'st', 'ab', 'c'), 'map ab/c');
    assert.equal(await b.getMapEntry('s', 0, 'st', 'a', 'b'), undefined);
  }));

test('state backend - names longer than the layout allows are refused, long keys are not', () =>
  withBackend(async (b) => {
    assert.throws(() => b.putValue('x'.repeat(256), 0, 'v', 'k', 1), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => b.putValue(S, 0, 'é'.repeat(128), 'k', 1), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => b.putValue(S, 65536, 'v', 'k', 1), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => b.putValue(S, -1, 'v', 'k', 1), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => b.putValue(S, 0, 'v', 'k'.repeat(65536), 1), { code: 'INVALID_ARGUMENT' });
    const longKey = '長'.repeat(5000);
    b.putValue(S, 0, 'v', longKey, 'long');
    b.putMapEntry(S, 0, 'm', longKey, 'x'.repeat(3000), 'long map');
    b.freeze(1);
    await b.commit(1);
    assert.equal(await b.getValue(S, 0, 'v', longKey, 'committed'), 'long');
    assert.deepEqual(await b.mapEntries(S, 0, 'm', longKey), [['x'.repeat(3000), 'long map']]);
  }));

test('state backend - the read cache stays coherent across commit and rollback', () =>
  withBackend(
    async (b) => {
      b.putValue(S, 0, 'v', 'k', 'one');
      b.freeze(1);
      await b.commit(1);
      assert.deepEqual(await Promise.all([b.getValue(S, 0, 'v', 'k', 'committed'), b.getValue(S, 0, 'v', 'k', 'committed')]), ['one', 'one']);
      assert.equal(await b.getValue(S, 0, 'v', 'absent', 'committed'), undefined, 'an absent result is cached too');
      b.putValue(S, 0, 'v', 'k', 'two');
      b.putValue(S, 0, 'v', 'absent', 'now present');
      b.freeze(2);
      assert.equal(await b.getValue(S, 0, 'v', 'k', 'committed'), 'one');
      await b.commit(2);
      assert.equal(await b.getValue(S, 0, 'v', 'k', 'committed'), 'two');
      assert.equal(await b.getValue(S, 0, 'v', 'absent', 'committed'), 'now present');
      b.deleteValue(S, 0, 'v', 'k');
      b.freeze(3);
      await b.commit(3);
      assert.equal(await b.getValue(S, 0, 'v', 'k', 'committed'), undefined);
      b.putValue(S, 0, 'v', 'k', 'rolled back');
      assert.equal(await b.getValue(S, 0, 'v', 'k'), 'rolled back');
      b.rollback();
      assert.equal(await b.getValue(S, 0, 'v', 'k'), undefined);
      // More keys than the cache holds: evicted entries are read again from RocksDB.
      for (let i = 0; i < 10; i++) b.putValue(S, 0, 'v', `e${i}`, i);
      b.freeze(4);
      await b.commit(4);
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 10; i++) assert.equal(await b.getValue(S, 0, 'v', `e${i}`, 'committed'), i);
      }
    },
    { readCacheEntries: 3 },
  ));

test('state backend - a read that races with a commit never leaves a stale value in the cache', () =>
  withBackend(async (b) => {
    b.putValue(S, 0, 'v', 'k', 'old');
    b.freeze(1);
    await b.commit(1);
    b.putValue(S, 0, 'v', 'k', 'new');
    b.freeze(2);
    const racing = b.getValue(S, 0, 'v', 'k', 'committed');
    const committed = b.commit(2);
    assert.ok(['old', 'new'].includes((await racing) as string));
    await committed;
    assert.equal(await b.getValue(S, 0, 'v', 'k', 'committed'), 'new');
    assert.equal(await b.getValue(S, 0, 'v', 'k'), 'new');
  }));

test('state backend - without a read cache every read goes to RocksDB and stays correct', () =>
  withBackend(
    async (b) => {
      b.putValue(S, 0, 'v', 'k', 1);
      b.freeze(1);
      await b.commit(1);
      assert.equal(await b.getValue(S, 0, 'v', 'k', 'committed'), 1);
      b.putValue(S, 0, 'v', 'k', 2);
      b.freeze(2);
      await b.commit(2);
      assert.equal(await b.getValue(S, 0, 'v', 'k', 'committed'), 2);
    },
    { readCacheEntries: 0 },
  ));

test('state backend - mutating a value after put or a returned object does not change stored state', () =>
  withBackend(async (b) => {
    const value = { n: 1, list: [1, 2] };
    b.putValue(S, 0, 'v', 'k', value);
    b.putMapEntry(S, 0, 'm', 'k', 'e', value);
    value.n = 99;
    value.list.push(3);
    const read = (await b.getValue(S, 0, 'v', 'k')) as { n: number; list: number[] };
    assert.deepEqual(read, { n: 1, list: [1, 2] });
    read.n = 7;
    read.list.length = 0;
    assert.deepEqual(await b.getValue(S, 0, 'v', 'k'), { n: 1, list: [1, 2] });
    const entry = (await b.mapEntries(S, 0, 'm', 'k'))[0]?.[1] as { n: number };
    entry.n = 5;
    assert.deepEqual(await b.getMapEntry(S, 0, 'm', 'k', 'e'), { n: 1, list: [1, 2] });
    b.freeze(1);
    await b.commit(1);
    const committed = (await b.getValue(S, 0, 'v', 'k', 'committed')) as { n: number };
    committed.n = 42;
    assert.deepEqual(await b.getValue(S, 0, 'v', 'k', 'committed'), { n: 1, list: [1, 2] }, 'the read cache holds bytes, not objects');
  }));

test('state backend - the active overlay reports its size and bytes, and freeze starts a new one', () =>
  withBackend(async (b) => {
    assert.equal(b.activeOverlaySize(), 0);
    assert.equal(b.activeOverlayBytes(), 0);
    b.putValue(S, 0, 'v', 'k', 'x'.repeat(100));
    const afterOne = b.activeOverlayBytes();
    assert.ok(afterOne > 100);
    b.putValue(S, 0, 'v', 'k', 'y'.repeat(100));
    assert.equal(b.activeOverlayBytes(), afterOne, 'an overwrite replaces the old bytes');
    b.deleteValue(S, 0, 'v', 'k');
    assert.ok(b.activeOverlayBytes() < 100);
    b.putMapEntry(S, 0, 'm', 'k', 'e', 1);
    assert.equal(b.activeOverlaySize(), 2);
    b.freeze(1);
    assert.equal(b.activeOverlaySize(), 0);
    assert.equal(b.activeOverlayBytes(), 0);
  }));

test('state backend - 100,000 keys committed in one batch read back exactly', () =>
  withBackend(async (b) => {
    const n = 100_000;
    for (let i = 0; i < n; i++) b.putValue(S, i % 4096, 'v', `key-${i}`, { i, s: `value-${i}` });
    for (let i = 0; i < 1000; i++) b.putMapEntry(S, 9, 'm', 'big', `e-${String(i).padStart(4, '0')}`, i);
    b.freeze(1);
    await b.commit(1);
    const reads: Array<Promise<unknown>> = [];
    for (let i = 0; i < n; i++) reads.push(b.getValue(S, i % 4096, 'v', `key-${i}`, 'committed'));
    const values = await Promise.all(reads);
    for (let i = 0; i < n; i++) assert.deepEqual(values[i], { i, s: `value-${i}` });
    const entries = await b.mapEntries(S, 9, 'm', 'big', 'committed');
    assert.equal(entries.length, 1000);
    assert.deepEqual(entries.map(([, v]) => v), Array.from({ length: 1000 }, (_, i) => i));
  }));

// --- checkpoint upload and restore

/** A delta or export as sorted [hex key, decoded value or null] pairs, to compare regardless of order. */
function readable(group: KeyGroupEntries): Array<[string, unknown]> {
  return group.entries
    .map(([key, value]): [string, unknown] => [Buffer.from(key).toString('hex'), value === null ? null : unpack(value)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

const hexKey = (stage: string, keyGroup: number, state: string, key: string, mapKey?: string): string =>
  encodeStateKey(stage, keyGroup, state, key, mapKey).toString('hex');

test('state backend - frozenDelta returns exactly the frozen changes, tombstones included, per stage and key group', () =>
  withBackend(async (b) => {
    b.putValue('s', 3, 'v', 'gone', 1);
    b.freeze(1);
    await b.commit(1);
    b.putValue('s', 7, 'v', 'a', 'first');
    b.putValue('s', 3, 'v', 'b', 2);
    b.deleteValue('s', 3, 'v', 'gone');
    b.putMapEntry('t', 300, 'm', 'k', 'x', [1]);
    b.deleteMapEntry('t', 300, 'm', 'k', 'y');
    b.putValue('s', 7, 'v', 'a', 'second');
    b.putValue('é', 0, 'v', 'k', true);
    // Back to a stage seen before: the delta groups by stage whatever the order of writes.
    b.putValue('s', 3, 'v', 'c', 3);
    b.freeze(2);
    b.putValue('s', 7, 'v', 'later', 'not in delta 2');
    b.freeze(3);
    const delta = b.frozenDelta(2);
    assert.deepEqual(delta.map((d) => [d.stage, d.groups.map((g) => g.keyGroup)]), [['s', [3, 7]], ['t', [300]], ['é', [0]]]);
    const [s, t, e] = delta;
    assert.deepEqual(readable(s!.groups[0]!), [[hexKey('s', 3, 'v', 'b'), 2], [hexKey('s', 3, 'v', 'gone'), null], [hexKey('s', 3, 'v', 'c'), 3]].sort());
    assert.deepEqual(readable(s!.groups[1]!), [[hexKey('s', 7, 'v', 'a'), 'second']], 'an overwritten key appears once, with its last value');
    assert.deepEqual(readable(t!.groups[0]!), [[hexKey('t', 300, 'm', 'k', 'x'), [1]], [hexKey('t', 300, 'm', 'k', 'y'), null]]);
    assert.deepEqual(readable(e!.groups[0]!), [[hexKey('é', 0, 'v', 'k'), true]]);
    assert.deepEqual(b.frozenDelta(3).map((d) => d.groups.map(readable)), [[[[hexKey('s', 7, 'v', 'later'), 'not in delta 2']]]]);
    for (const { stage, groups } of delta) {
      for (const group of groups) for (const [key] of group.entries) assert.deepEqual(decodeKeyGroupPrefix(key), { stage, keyGroup: group.keyGroup, prefixLength: keyGroupPrefix(stage, group.keyGroup).length });
      // What the uploader does with it: one object per stage, decoded back unchanged.
      const decoded = decodeCheckpointObject(encodeCheckpointObject(stage, groups), `jobs/j/state/${stage}/w-1-2.delta`);
      assert.deepEqual(decoded.groups.map(readable), groups.map(readable));
    }
    // The uploader encodes the overlay's own keys (latin1 strings): the same bytes.
    const columns = b.frozenColumns(2);
    assert.deepEqual(columns.map((d) => [d.stage, d.groups.map((g) => g.keyGroup)]), delta.map((d) => [d.stage, d.groups.map((g) => g.keyGroup)]));
    for (const [i, { stage, groups }] of columns.entries()) assert.deepEqual(encodeCheckpointObject(stage, groups), encodeCheckpointObject(stage, delta[i]!.groups));
    b.freeze(4);
    assert.deepEqual(b.frozenDelta(4), [], 'freezing an empty overlay made no delta');
    assert.throws(() => b.frozenDelta(5), { code: 'FAILED_PRECONDITION' }, 'not frozen yet');
    await b.commit(3);
    assert.throws(() => b.frozenDelta(2), { code: 'FAILED_PRECONDITION' }, 'committed and dropped');
    b.putValue('s', 1, 'v', 'k', 1);
    b.freeze(5);
    b.rollback();
    assert.throws(() => b.frozenDelta(5), { code: 'FAILED_PRECONDITION' }, 'dropped by rollback');
  }));

/** Every read of the given keys of stage s, both views, as comparable data. */
async function readAll(b: StateBackend, keyGroups: number[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const stage of ['s', 'other']) {
    for (const keyGroup of keyGroups) {
      for (const view of ['latest', 'committed'] as const) {
        for (const key of ['a', 'b', 'c', 'stale']) out.push([stage, keyGroup, view, key, await b.getValue(stage, keyGroup, 'v', key, view)]);
        for (const key of ['m1', 'm2', 'stale']) out.push([stage, keyGroup, view, key, await b.mapEntries(stage, keyGroup, 'm', key, view)]);
      }
    }
  }
  return out;
}

test('state backend - a key group exported from one backend and imported into a fresh one reads the same, and nothing else', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-state-'));
  const source = await StateBackend.open({ path: join(dir, 'source') });
  const target = await StateBackend.open({ path: join(dir, 'target') });
  try {
    for (const stage of ['s', 'other']) {
      for (const keyGroup of [4, 5, 6]) {
        source.putValue(stage, keyGroup, 'v', 'a', { stage, keyGroup, n: [1, 2] });
        source.putValue(stage, keyGroup, 'v', 'b', `${stage}/${keyGroup}`);
        source.putMapEntry(stage, keyGroup, 'm', 'm1', 'x', 1);
        source.putMapEntry(stage, keyGroup, 'm', 'm1', 'é', 'two');
        source.putMapEntry(stage, keyGroup, 'm', 'm2', '', null);
      }
    }
    source.freeze(1);
    await source.commit(1);
    source.putValue('s', 5, 'v', 'c', 'uncommitted: not exported');

    const base = await source.exportKeyGroup('s', 5);
    assert.equal(base.keyGroup, 5);
    assert.equal(base.entries.length, 5);
    // The restore path: a snapshot object in the store, decoded and imported.
    const snapshot = decodeCheckpointObject(encodeCheckpointObject('s', [base], { snapshot: true }), 'jobs/j/state/s/base-5-1.snap');
    await target.importKeyGroup('s', snapshot.groups[0]!, { replace: true });

    source.rollback();
    assert.deepEqual(await readAll(target, [5]).then((reads) => reads.filter((r) => (r as unknown[])[0] === 's')), await readAll(source, [5]).then((reads) => reads.filter((r) => (r as unknown[])[0] === 's')));
    for (const read of await readAll(target, [4, 5, 6])) {
      const [stage, keyGroup, , , value] = read as [string, number, string, string, unknown];
      if (stage === 's' && keyGroup === 5) continue;
      assert.ok(value === undefined || (Array.isArray(value) && value.length === 0), `nothing of ${stage}/${keyGroup} is imported`);
    }
    assert.deepEqual(readable(await target.exportKeyGroup('s', 5)), readable(base));

    // Then a delta on top of the base, as after a later checkpoint: tombstones delete.
    source.putValue('s', 5, 'v', 'a', 'changed');
    source.deleteValue('s', 5, 'v', 'b');
    source.deleteMapEntry('s', 5, 'm', 'm1', 'x');
    source.putMapEntry('s', 5, 'm', 'm2', 'new', 3);
    source.putValue('s', 6, 'v', 'a', 'another key group');
    source.freeze(2);
    const delta = source.frozenDelta(2).find((d) => d.stage === 's')!.groups.find((g) => g.keyGroup === 5)!;
    await source.commit(2);
    await target.importKeyGroup('s', delta);
    assert.deepEqual(readable(await target.exportKeyGroup('s', 5)), readable(await source.exportKeyGroup('s', 5)));
    assert.equal(await target.getValue('s', 5, 'v', 'a', 'committed'), 'changed');
    assert.equal(await target.getValue('s', 5, 'v', 'b'), undefined);
    assert.deepEqual(await target.mapEntries('s', 5, 'm', 'm1'), [['é', 'two']]);
    assert.deepEqual(await target.mapEntries('s', 5, 'm', 'm2'), [['', null], ['new', 3]]);
    assert.equal(await target.getValue('s', 6, 'v', 'a'), undefined);
  } finally {
    await source.close();
    await target.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('state backend - importKeyGroup with replace removes stale keys, cached and in overlays; without it they stay', () =>
  withBackend(async (b) => {
    for (const keyGroup of [4, 5]) {
      b.putValue(S, keyGroup, 'v', 'stale', 'old');
      b.putValue(S, keyGroup, 'v', 'a', 'old');
      b.putMapEntry(S, keyGroup, 'm', 'stale', 'e', 'old');
    }
    b.freeze(1);
    await b.commit(1);
    assert.equal(await b.getValue(S, 5, 'v', 'stale', 'committed'), 'old', 'cached before the import');
    assert.equal(await b.getValue(S, 5, 'v', 'a', 'committed'), 'old');
    b.putValue(S, 5, 'v', 'overlay', 'stale too');

    const fresh: KeyGroupEntries = { keyGroup: 5, entries: [[encodeStateKey(S, 5, 'v', 'a'), Buffer.from([0xa3, 0x6e, 0x65, 0x77])]] };
    await b.importKeyGroup(S, { keyGroup: 5, entries: [[encodeStateKey(S, 5, 'v', 'extra'), Buffer.from([0x01])]] });
    assert.equal(await b.getValue(S, 5, 'v', 'stale', 'committed'), 'old', 'without replace, other keys stay');
    assert.equal(await b.getValue(S, 5, 'v', 'extra', 'committed'), 1);

    await b.importKeyGroup(S, fresh, { replace: true });
    for (const view of ['latest', 'committed'] as const) {
      assert.equal(await b.getValue(S, 5, 'v', 'a', view), 'new');
      assert.equal(await b.getValue(S, 5, 'v', 'stale', view), undefined);
      assert.equal(await b.getValue(S, 5, 'v', 'extra', view), undefined);
      assert.equal(await b.hasMap(S, 5, 'm', 'stale', view), false);
      assert.equal(await b.getValue(S, 4, 'v', 'stale', view), 'old', 'the neighbouring key group is untouched');
      assert.deepEqual(await b.mapEntries(S, 4, 'm', 'stale', view), [['e', 'old']]);
    }
    assert.equal(await b.getValue(S, 5, 'v', 'overlay'), undefined, 'replace drops the key group from the overlays');
    assert.deepEqual(readable(await b.exportKeyGroup(S, 5)), readable(fresh));

    await assert.rejects(b.importKeyGroup(S, { keyGroup: 5, entries: [[encodeStateKey(S, 4, 'v', 'a'), Buffer.from([1])]] }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(b.importKeyGroup('other', fresh), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(b.importKeyGroup(S, { keyGroup: 5, entries: [[keyGroupPrefix(S, 5), Buffer.from([1])]] }), { code: 'INVALID_ARGUMENT' });
  }));

test('state backend - snapshotKeyGroup at N is RocksDB overlaid with the deltas up to N: no tombstones, in key order, nothing later', () =>
  withBackend(async (b) => {
    b.putValue(S, 4, 'v', 'kept', 'committed');
    b.putValue(S, 4, 'v', 'replaced', 'old');
    b.putValue(S, 4, 'v', 'deleted', 'old');
    b.putMapEntry(S, 4, 'm', 'k', 'a', 1);
    b.putValue(S, 5, 'v', 'neighbour', 'other key group');
    b.putValue('other-stage', 4, 'v', 'kept', 'other stage');
    b.freeze(1);
    await b.commit(1);
    b.putValue(S, 4, 'v', 'replaced', 'delta 2');
    b.deleteValue(S, 4, 'v', 'deleted');
    b.putMapEntry(S, 4, 'm', 'k', 'b', 2);
    b.deleteValue(S, 4, 'v', 'never-existed');
    b.freeze(2);
    b.putValue(S, 4, 'v', 'replaced', 'delta 3');
    b.putValue(S, 4, 'v', 'added', 'delta 3');
    b.deleteMapEntry(S, 4, 'm', 'k', 'a');
    b.freeze(3);
    b.putValue(S, 4, 'v', 'active', 'not frozen');
    b.deleteValue(S, 4, 'v', 'kept');
    b.freeze(4);
    b.putValue(S, 4, 'v', 'replaced', 'active overlay');

    const at1 = await b.snapshotKeyGroup(S, 4, 1);
    assert.deepEqual(readable(at1), [
      [hexKey(S, 4, 'v', 'deleted'), 'old'],
      [hexKey(S, 4, 'v', 'kept'), 'committed'],
      [hexKey(S, 4, 'v', 'replaced'), 'old'],
      [hexKey(S, 4, 'm', 'k', 'a'), 1],
    ].sort(([x], [y]) => (x! < y! ? -1 : 1)), 'at the committed checkpoint: RocksDB alone');
    const at3 = await b.snapshotKeyGroup(S, 4, 3);
    assert.equal(at3.keyGroup, 4);
    assert.deepEqual(readable(at3), [
      [hexKey(S, 4, 'v', 'added'), 'delta 3'],
      [hexKey(S, 4, 'v', 'kept'), 'committed'],
      [hexKey(S, 4, 'v', 'replaced'), 'delta 3'],
      [hexKey(S, 4, 'm', 'k', 'b'), 2],
    ].sort(([x], [y]) => (x! < y! ? -1 : 1)), 'deltas 2 and 3 applied in order; delta 4 and the active overlay unseen');
    for (const [i, [key, value]] of at3.entries.entries()) {
      assert.notEqual(value, null, 'no tombstone');
      if (i > 0) assert.ok(Buffer.compare(at3.entries[i - 1]![0], key) < 0, 'ascending by key bytes');
    }
    assert.deepEqual((await b.snapshotKeyGroup(S, 9, 3)).entries, [], 'an empty key group is an empty snapshot');

    // A snapshot is a base: encoded with the snapshot flag and restored into a fresh backend, it
    // reads exactly as the source read at checkpoint 3.
    const decoded = decodeCheckpointObject(encodeCheckpointObject(S, [at3], { snapshot: true }), `jobs/j/state/${S}/w-3.snap`);
    assert.equal(decoded.index.snapshot, true);
    const dir = await mkdtemp(join(tmpdir(), 'eddy-state-'));
    const fresh = await StateBackend.open({ path: join(dir, 'db') });
    try {
      await fresh.importKeyGroup(S, decoded.groups[0]!, { replace: true });
      assert.deepEqual(readable(await fresh.exportKeyGroup(S, 4)), readable(at3));
      assert.equal(await fresh.getValue(S, 4, 'v', 'replaced', 'committed'), 'delta 3');
      assert.deepEqual(await fresh.mapEntries(S, 4, 'm', 'k', 'committed'), [['b', 2]]);
    } finally {
      await fresh.close();
      await rm(dir, { recursive: true, force: true });
    }
  }));

test('state backend - snapshotKeyGroup agrees with a commit queued before it, and refuses checkpoints it cannot show', () =>
  withBackend(async (b) => {
    b.putValue(S, 2, 'v', 'a', 1);
    b.freeze(1);
    b.putValue(S, 2, 'v', 'a', 2);
    b.putValue(S, 2, 'v', 'b', 2);
    b.freeze(2);
    b.deleteValue(S, 2, 'v', 'b');
    b.freeze(3);
    const expected = [[hexKey(S, 2, 'v', 'a'), 2]];
    // Not awaited: the commit moves deltas 1 and 2 into RocksDB while the snapshot waits its turn.
    const committing = b.commit(2);
    assert.deepEqual(readable(await b.snapshotKeyGroup(S, 2, 3)), expected);
    await committing;
    assert.equal(b.committedCheckpointId, 2);
    assert.deepEqual(readable(await b.snapshotKeyGroup(S, 2, 2)), [[hexKey(S, 2, 'v', 'a'), 2], [hexKey(S, 2, 'v', 'b'), 2]]);
    assert.deepEqual(readable(await b.snapshotKeyGroup(S, 2, 3)), expected);
    await assert.rejects(b.snapshotKeyGroup(S, 2, 1), { code: 'FAILED_PRECONDITION' }, 'RocksDB is past checkpoint 1');
    await assert.rejects(b.snapshotKeyGroup(S, 2, 4), { code: 'FAILED_PRECONDITION' }, 'checkpoint 4 is not frozen');
    b.putValue(S, 2, 'v', 'c', 'active');
    assert.deepEqual(readable(await b.snapshotKeyGroup(S, 2, 3)), expected, 'the active overlay is never seen');
  }));

test('state backend - the committed map cache follows commits, rollbacks, drops and imports', () =>
  withBackend(async (b) => {
    b.putMapEntry(S, 4, 'm', 'k', 'a', 1);
    b.freeze(1);
    await b.commit(1);
    assert.deepEqual(await b.mapEntries(S, 4, 'm', 'k', 'committed'), [['a', 1]], 'first read fills the cache');
    b.putMapEntry(S, 4, 'm', 'k', 'b', 2);
    assert.deepEqual(await b.mapEntries(S, 4, 'm', 'k', 'committed'), [['a', 1]], 'an uncommitted put is not committed');
    assert.deepEqual(await b.mapEntries(S, 4, 'm', 'k'), [['a', 1], ['b', 2]]);
    b.freeze(2);
    await b.commit(2);
    assert.deepEqual(await b.mapEntries(S, 4, 'm', 'k', 'committed'), [['a', 1], ['b', 2]], 'a commit invalidates the cached map');
    b.deleteMapEntry(S, 4, 'm', 'k', 'a');
    b.freeze(3);
    await b.commit(3);
    assert.deepEqual(await b.mapEntries(S, 4, 'm', 'k', 'committed'), [['b', 2]], 'a committed delete too');
    const exported = await b.exportKeyGroup(S, 4);
    await b.dropKeyGroup(S, 4);
    assert.deepEqual(await b.mapEntries(S, 4, 'm', 'k', 'committed'), [], 'a dropped key group');
    await b.importKeyGroup(S, exported, { replace: true });
    assert.deepEqual(await b.mapEntries(S, 4, 'm', 'k', 'committed'), [['b', 2]], 'an imported key group');
  }));

test('state backend - stateKeyCandidates lists the keys of one state in one key group from RocksDB and every overlay', () =>
  withBackend(async (b) => {
    b.putValue(S, 3, 'volume', 'committed', 1);
    b.putValue(S, 3, 'volume', 'deleted-later', 2);
    b.putMapEntry(S, 3, 'seen', 'map-key', 'x', true);
    b.putValue(S, 4, 'volume', 'other-key-group', 3);
    b.putValue(S, 3, 'volumes', 'other-state', 4);
    b.freeze(1);
    await b.commit(1);
    b.putValue(S, 3, 'volume', 'frozen', 5);
    b.freeze(2);
    b.putValue(S, 3, 'volume', 'active', 6);
    b.deleteValue(S, 3, 'volume', 'deleted-later');
    b.putValue(S, 3, 'volume', 'ünïcode key', 7);
    const keys = await b.stateKeyCandidates(S, 3, 'volume');
    // A tombstoned key is still a candidate (the caller asks its handle); nothing of another
    // state, key group or stage is.
    assert.deepEqual(keys.sort(), ['active', 'committed', 'deleted-later', 'frozen', 'ünïcode key']);
    assert.deepEqual(await b.stateKeyCandidates(S, 3, 'seen'), ['map-key']);
    assert.deepEqual(await b.stateKeyCandidates('stage-b', 3, 'volume'), []);
  }));

test('state backend - a cached map takes each commit\'s puts, deletes and clears: read from memory, equal to a model of every write', () =>
  withBackend(async (b) => {
    // Map keys in several scripts: the cached map must keep RocksDB's order (UTF-8 bytes).
    const mapKeys = ['a', 'b', 'ab', 'z', 'é', 'ü1', '日本', '\u{1F600}', 'A', '0'];
    const maps = ['m1', 'm2', 'm3'];
    const model = new Map<string, Map<string, number>>(maps.map((k) => [k, new Map()]));
    let seed = 7;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const expected = (key: string): Array<[string, number]> =>
      [...model.get(key)!].sort(([x], [y]) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    for (let checkpoint = 1; checkpoint <= 40; checkpoint++) {
      for (let op = 0; op < 12; op++) {
        const key = maps[random(maps.length)]!;
        const mapKey = mapKeys[random(mapKeys.length)]!;
        const roll = random(20);
        if (roll === 0) {
          await b.clearMap(S, 2, 'm', key);
          model.get(key)!.clear();
        } else if (roll < 6) {
          b.deleteMapEntry(S, 2, 'm', key, mapKey);
          model.get(key)!.delete(mapKey);
        } else {
          const value = checkpoint * 100 + op;
          b.putMapEntry(S, 2, 'm', key, mapKey, value);
          model.get(key)!.set(mapKey, value);
        }
      }
      b.freeze(checkpoint);
      await b.commit(checkpoint);
      for (const key of maps) {
        const read = b.mapEntriesNow(S, 2, 'm', key, 'committed');
        // Every map was read after the first commit, so each later read is from memory.
        if (checkpoint > 1) assert.ok(!(read instanceof Promise), `map ${key} after checkpoint ${checkpoint}: not in the cache`);
        assert.deepEqual(await read, expected(key), `map ${key} after checkpoint ${checkpoint}`);
      }
    }
  }));

test('state backend - map reads between writes to the same overlays see every entry written so far (the overlays index maps when read)', () =>
  withBackend(async (b) => {
    const maps = ['n1', 'n2'];
    const model = new Map<string, Map<string, number>>(maps.map((k) => [k, new Map()]));
    const random = seeded(11);
    const expected = (key: string): Array<[string, number]> => [...model.get(key)!].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    let checkpoint = 0;
    for (let op = 0; op < 600; op++) {
      const key = maps[random(maps.length)]!;
      const mapKey = `k${random(30)}`;
      writeMapEntry(b, 3, key, mapKey, random(5) === 0 ? undefined : op, model.get(key)!);
      // Reads of one map between writes to it and to the other, in the active overlay and across frozen ones.
      if (random(4) === 0) assert.deepEqual(await b.mapEntries(S, 3, 'm', key), expected(key), `map ${key} after op ${op}`);
      if (random(40) === 0) b.freeze(++checkpoint);
      if (random(120) === 0 && checkpoint > 0) await b.commit(checkpoint);
    }
    for (const key of maps) assert.deepEqual(await b.mapEntries(S, 3, 'm', key), expected(key));
    b.freeze(++checkpoint);
    await b.commit(checkpoint);
    for (const key of maps) assert.deepEqual(await b.mapEntries(S, 3, 'm', key, 'committed'), expected(key));
  }));

test('state backend - bounded map ranges read from the map cache (small maps cached whole by their first range read) equal a model, through commits and rollbacks', () =>
  withBackend(async (b) => {
    const maps = { small: 40, big: SMALL_MAP_ENTRIES + 60, other: 25 };
    const mapKey = (i: number): string => `k${String(i).padStart(5, '0')}`;
    type Model = Map<string, Map<string, number>>;
    const copy = (m: Model): Model => new Map([...m].map(([k, v]) => [k, new Map(v)]));
    let latest: Model = new Map(Object.keys(maps).map((k) => [k, new Map()]));
    // The big map starts committed, past what a range read caches whole.
    for (let i = 0; i < maps.big; i++) {
      b.putMapEntry(S, 4, 'm', 'big', mapKey(i), i);
      latest.get('big')!.set(mapKey(i), i);
    }
    b.freeze(1);
    await b.commit(1);
    let committed = copy(latest);
    const frozen = new Map<number, Model>();
    let checkpoint = 1;
    // Range reads with cacheSmall per small map since it was last dropped from the cache (a rollback drops every cached map).
    const rangeReads = new Map<string, number>();
    const random = seeded(5);
    const expected = (model: Model, key: string, from: string | undefined, to: string | undefined, limit: number): Array<[string, number]> =>
      [...model.get(key)!].filter(([k]) => (from === undefined || k >= from) && (to === undefined || k < to)).sort(([x], [y]) => (x < y ? -1 : 1)).slice(0, limit);
    for (let op = 0; op < 1500; op++) {
      const key = Object.keys(maps)[random(3)]!;
      const size = maps[key as keyof typeof maps];
      const roll = random(100);
      if (roll < 45) {
        writeMapEntry(b, 4, key, mapKey(random(size)), random(4) === 0 ? undefined : op, latest.get(key)!);
      } else if (roll < 85) {
        const from = random(3) === 0 ? undefined : mapKey(random(size));
        const to = random(3) === 0 ? undefined : mapKey(random(size + 10));
        const limit = random(2) === 0 ? Number.POSITIVE_INFINITY : 1 + random(20);
        const view = random(4) === 0 ? 'committed' : 'latest';
        const want = expected(view === 'latest' ? latest : committed, key, from, to, limit);
        for (const cacheSmall of [true, false]) {
          const iterators = b.storeStats.iterators;
          const got = (await b.mapRangeBytes(S, 4, 'm', key, { ...(from !== undefined && { from }), ...(to !== undefined && { to }), limit, cacheSmall }, view)).map(([k, v]) => [k, unpack(v)]);
          assert.deepEqual(got, want, `op ${op}: ${view} ${key} [${from}, ${to}) limit ${limit}, cacheSmall ${cacheSmall}`);
          // A small map is read whole by its second range read, then from memory; the big one, always from RocksDB.
          const empty = from !== undefined && to !== undefined && from >= to;
          if (cacheSmall && key !== 'big' && !empty) rangeReads.set(key, (rangeReads.get(key) ?? 0) + 1);
          const opened = b.storeStats.iterators - iterators;
          if (key === 'big' && !empty) assert.ok(opened >= 1, `op ${op}: the big map is read from RocksDB`);
          else if (cacheSmall && (rangeReads.get(key) ?? 0) > 2) assert.equal(opened, 0, `op ${op}: ${key} is read from the map cache`);
        }
      } else if (roll < 93) {
        b.freeze(++checkpoint);
        frozen.set(checkpoint, copy(latest));
      } else if (roll < 98) {
        const done = [...frozen.keys()].pop();
        if (done !== undefined) {
          await b.commit(done);
          committed = frozen.get(done)!;
          for (const id of [...frozen.keys()]) if (id <= done) frozen.delete(id);
        }
      } else {
        b.rollback();
        latest = copy(committed);
        frozen.clear();
        rangeReads.clear();
      }
    }
  }));

test('state backend - a hot map is decoded once: reads share each entry\'s value until it changes; the map cache keeps maps read since the last eviction', () =>
  withBackend(async (b) => {
    b.putMapEntry(S, 3, 'm', 'k', 'a', { n: 1 });
    b.putMapEntry(S, 3, 'm', 'k', 'b', { n: 2 });
    b.freeze(1);
    await b.commit(1);
    const first = await b.mapEntriesNow(S, 3, 'm', 'k', 'latest');
    const second = b.mapEntriesNow(S, 3, 'm', 'k', 'latest');
    assert.ok(!(second instanceof Promise), 'a hot map is answered from memory');
    assert.deepEqual(first, [['a', { n: 1 }], ['b', { n: 2 }]]);
    // The same objects: the second read decoded nothing.
    assert.equal(second[0]![1], first[0]![1]);
    assert.equal(second[1]![1], first[1]![1]);
    // A change is seen at once (the overlay), then after the commit (the cached map), each a new value.
    b.putMapEntry(S, 3, 'm', 'k', 'a', { n: 10 });
    const changed = b.mapEntriesNow(S, 3, 'm', 'k', 'latest') as Array<[string, unknown]>;
    assert.deepEqual(changed, [['a', { n: 10 }], ['b', { n: 2 }]]);
    assert.equal(changed[1]![1], first[1]![1], 'the unchanged entry is still shared');
    b.freeze(2);
    await b.commit(2);
    assert.deepEqual(b.mapEntriesNow(S, 3, 'm', 'k', 'committed'), [['a', { n: 10 }], ['b', { n: 2 }]]);
  }));

test('read cache - a full map cache evicts the eldest map not read since the sweep last passed it', () => {
  const cache = new ReadCache(20); // room for 2 maps
  const entries = (v: number): Array<[string, Buffer]> => [[`k${v}`, Buffer.from([v])]];
  cache.setMap('a', entries(1), cache.epoch);
  cache.setMap('b', entries(2), cache.epoch);
  assert.deepEqual(cache.getMap('a'), entries(1));
  cache.setMap('c', entries(3), cache.epoch);
  assert.equal(cache.getMap('b'), undefined, 'b, not read, went; a, read, stayed');
  assert.deepEqual(cache.getMap('a'), entries(1));
  cache.setMap('d', entries(4), cache.epoch);
  assert.equal(cache.getMap('c'), undefined, 'c, never read, went');
  assert.deepEqual(cache.getMap('a'), entries(1), 'a, read again, stayed');
  assert.deepEqual(cache.getMap('d'), entries(4));
});

test('read cache - values go least recently used first, through many evictions and drops (a reference LRU, random reads and fills)', () => {
  const capacity = 50;
  const cache = new ReadCache(capacity);
  // The reference: an array in recency order, the eldest first.
  let model: string[] = [];
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let op = 0; op < 20_000; op++) {
    if (op % 5000 === 4999) {
      // A key group dropped: values go from anywhere in the recency order.
      cache.dropPrefix('key-1');
      model = model.filter((k) => !k.startsWith('key-1'));
    }
    const key = `key-${random(200)}`;
    if (random(2) === 0) {
      const hit = cache.getValue(key);
      assert.equal(hit !== undefined, model.includes(key), `op ${op}: ${key} cached or not as the reference says`);
      if (hit !== undefined) model = [...model.filter((k) => k !== key), key];
    } else {
      cache.setValue(key, Buffer.from(key));
      if (!model.includes(key) && model.length >= capacity) model = model.slice(1);
      model = [...model.filter((k) => k !== key), key];
    }
  }
  for (const key of model) assert.deepEqual(cache.getValue(key), Buffer.from(key));
});
