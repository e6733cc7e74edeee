// The filter of keys RocksDB may hold (worker/state/key-filter.ts, committed-store.ts): a read of a
// key never written is answered without RocksDB, and no key RocksDB holds is ever answered absent,
// whatever was written, deleted, imported or dropped, and while the filter is rebuilt. Against a
// real RocksDB and a model of what each key holds.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KeyFilter } from '../../worker/state/key-filter.ts';
import { StateBackend } from '../../worker/state/state-backend.ts';
import { withBackends } from '../kit/state-backends.ts';

const S = 'stage-f';

test('key filter - every key added is there as a string and as bytes; few keys not added seem to be', () => {
  const filter = new KeyFilter(50_000);
  const key = (i: number) => `\u0007stage\u0000${String.fromCharCode(i % 256)}\u0005state\u0000\u0008user-${i}-\u00e9\u00ff`;
  for (let i = 0; i < 50_000; i++) (i % 2 === 0 ? filter.addString(key(i)) : filter.addBytes(Buffer.from(key(i), 'latin1')));
  for (let i = 0; i < 50_000; i++) {
    assert.equal(filter.mayContainString(key(i)), true, `key ${i} as a string`);
    assert.equal(filter.mayContainBytes(Buffer.from(key(i), 'latin1')), true, `key ${i} as bytes`);
  }
  let falsePositives = 0;
  for (let i = 50_000; i < 150_000; i++) if (filter.mayContainString(key(i))) falsePositives++;
  assert.ok(falsePositives < 2_000, `${falsePositives} false positives in 100,000 (expected ~1 %)`);
  assert.throws(() => new KeyFilter(0), /positive integer/);
});

test('key filter - a key never written is read as absent without a RocksDB read; written and imported keys are read from RocksDB', () =>
  withBackends(2, async ([a, b]) => {
    assert.equal(a!.storeStats.keyFilterOn, true);
    const batches = a!.storeStats.readBatches;
    for (let i = 0; i < 100; i++) assert.equal(await a!.getValue(S, 1, 'v', `never-${i}`, 'committed'), undefined);
    assert.equal(a!.storeStats.readBatches - batches, 0, 'no RocksDB read for keys never written');
    assert.equal(a!.storeStats.filteredReads, 100);
    for (let i = 0; i < 100; i++) a!.putValue(S, 1, 'v', `k${i}`, i);
    a!.freeze(1);
    const delta = a!.frozenDelta(1);
    await a!.commit(1);
    for (let i = 0; i < 100; i++) assert.equal(await a!.getValue(S, 1, 'v', `k${i}`, 'committed'), i);
    assert.ok(a!.storeStats.readBatches - batches > 0, 'committed keys are read from RocksDB');
    // Imported (a restore or a move): the filter learns the keys of the entries written.
    for (const { stage, groups } of delta) for (const group of groups) await b!.importKeyGroup(stage, group, { replace: true });
    for (let i = 0; i < 100; i++) assert.equal(await b!.getValue(S, 1, 'v', `k${i}`, 'committed'), i);
    assert.equal(await b!.getValue(S, 1, 'v', 'k100', 'committed'), undefined);
  }, { readCacheEntries: 0 }));

test('key filter - off when RocksDB was not empty when opened: its keys were not written here', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-key-filter-'));
  try {
    const path = join(dir, 'db');
    const first = await StateBackend.open({ path, readCacheEntries: 0 });
    first.putValue(S, 1, 'v', 'kept', 'from before');
    first.freeze(1);
    await first.commit(1);
    await first.close();
    const reopened = await StateBackend.open({ path, readCacheEntries: 0 });
    try {
      assert.equal(reopened.storeStats.keyFilterOn, false);
      assert.equal(await reopened.getValue(S, 1, 'v', 'kept', 'committed'), 'from before');
    } finally {
      await reopened.close();
    }
    // A directory that exists but holds nothing is empty RocksDB: the filter is on.
    await mkdir(join(dir, 'empty'));
    const empty = await StateBackend.open({ path: join(dir, 'empty') });
    assert.equal(empty.storeStats.keyFilterOn, true);
    await empty.close();
    // Anything in the directory turns it off.
    await mkdir(join(dir, 'other'));
    await writeFile(join(dir, 'other', 'LOCK'), '');
    const other = await StateBackend.open({ path: join(dir, 'other') });
    assert.equal(other.storeStats.keyFilterOn, false);
    await other.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('key filter - random puts, deletes, imports and drops over many rebuilds: every read equals the model', () =>
  withBackends(2, async ([a, b]) => {
    // A filter of 16 keys is rebuilt after every few commits, so reads, commits and imports
    // overlap its scans.
    let seed = 12345;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const model = new Map<string, number>(); // "<keyGroup>|<key>" → value, in a's committed state
    const keys = Array.from({ length: 300 }, (_, i) => `key-${i}`);
    let checkpoint = 0;
    const check = async (backend: StateBackend, want: Map<string, number>, what: string) => {
      const reads = [];
      for (const kg of [0, 1, 2]) for (const key of keys) reads.push(backend.getValue(S, kg, 'v', key, 'committed').then((got) => assert.equal(got, want.get(`${kg}|${key}`), `${what}: key group ${kg} ${key}`)));
      await Promise.all(reads);
    };
    for (let round = 0; round < 40; round++) {
      const before = new Map(model);
      for (let op = 0; op < 60; op++) {
        const kg = random(3);
        const key = keys[random(keys.length)]!;
        if (random(3) === 0) {
          a!.deleteValue(S, kg, 'v', key);
          model.delete(`${kg}|${key}`);
        } else {
          const value = random(1_000_000);
          a!.putValue(S, kg, 'v', key, value);
          model.set(`${kg}|${key}`, value);
        }
      }
      a!.freeze(++checkpoint);
      const delta = a!.frozenDelta(checkpoint);
      // Reads while the commit (and the rebuild it may start) runs see the state before it or after it.
      const during: Array<Promise<void>> = [];
      for (const kg of [0, 1, 2]) {
        for (const key of keys) {
          const id = `${kg}|${key}`;
          during.push(a!.getValue(S, kg, 'v', key, 'committed').then((got) => assert.ok(got === before.get(id) || got === model.get(id), `round ${round}, during the commit: key group ${kg} ${key} read ${String(got)}`)));
        }
      }
      await a!.commit(checkpoint);
      await Promise.all(during);
      await check(a!, model, `round ${round}`);
      // b follows by importing a's deltas; now and then a key group is dropped and imported whole.
      for (const { stage, groups } of delta) for (const group of groups) await b!.importKeyGroup(stage, group);
      if (round % 7 === 6) {
        const kg = random(3);
        const whole = await a!.exportKeyGroup(S, kg);
        await b!.dropKeyGroup(S, kg);
        await b!.importKeyGroup(S, whole, { replace: true });
      }
      await check(b!, model, `round ${round}, the importing backend`);
    }
    assert.ok(a!.storeStats.filterRebuilds >= 5, `${a!.storeStats.filterRebuilds} rebuilds of the writing backend's filter`);
    assert.ok(b!.storeStats.filterRebuilds >= 5, `${b!.storeStats.filterRebuilds} rebuilds of the importing backend's filter`);
    assert.ok(a!.storeStats.filteredReads > 0, 'some reads were answered by the filter');
  }, { readCacheEntries: 0, keyFilterKeys: 16 }));

/**
 * A thread as loaded as a job's under a backlog: every turn of the event loop runs 25 ms of other
 * work (each key group's drain runs its stretch in one turn), until stopped. Counts the turns.
 */
function loadedLoop(turnMs: number): { turns: () => number; stop: () => void } {
  let turns = 0;
  let stopped = false;
  const turn = (): void => {
    if (stopped) return;
    turns++;
    const until = performance.now() + turnMs;
    while (performance.now() < until);
    setImmediate(turn);
  };
  setImmediate(turn);
  return { turns: () => turns, stop: () => void (stopped = true) };
}

test('committed store - a commit or an import of many entries lets other work run while its batch is built, ends within a few turns of a loaded loop, and leaves every entry readable', () =>
  withBackends(2, async ([a, b]) => {
    const entries = 60_000;
    for (let i = 0; i < entries; i++) a!.putValue(S, i % 4, 'v', `k${i}`, i);
    a!.freeze(1);
    const delta = a!.frozenDelta(1);
    // With a slice of 2,048 entries per turn these took ~29 turns each, 25 ms of others' work apiece.
    let load = loadedLoop(25);
    await a!.commit(1);
    load.stop();
    const commitTurns = a!.storeStats.writeYields;
    assert.ok(load.turns() >= 1 && commitTurns >= 1, `other work ran while the commit was built (${load.turns()} turns, ${commitTurns} yields)`);
    assert.ok(commitTurns <= 12, `the commit of ${entries} entries took ${commitTurns} turns of a loaded loop`);
    load = loadedLoop(25);
    for (const { stage, groups } of delta) for (const group of groups) await b!.importKeyGroup(stage, group, { replace: true });
    load.stop();
    const importTurns = b!.storeStats.writeYields;
    assert.ok(importTurns >= 1, 'other work ran while the key groups were imported');
    assert.ok(importTurns <= 4 * 12, `the import of ${entries} entries in 4 key groups took ${importTurns} turns of a loaded loop`);
    for (let i = 0; i < entries; i += 97) {
      assert.equal(await a!.getValue(S, i % 4, 'v', `k${i}`, 'committed'), i);
      assert.equal(await b!.getValue(S, i % 4, 'v', `k${i}`, 'committed'), i);
    }
  }, { readCacheEntries: 0 }));
