// Key-group math (core/key-groups.ts): the unit of state, addressing and migration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import murmur from 'murmurhash3js-revisited';
import {
  DEFAULT_MAX_PARALLELISM,
  MAX_KEY_GROUPS,
  assignKeyGroups,
  assignSplits,
  hashKey,
  indexForKeyGroup,
  keyGroupForKey,
  keyGroupRangeForIndex,
  keyGroupsOf,
  partitionForKey,
  rangeContains,
  rangeSize,
  type KeyGroupRange,
} from '../../core/key-groups.ts';

function rangesFor(maxParallelism: number, parallelism: number): KeyGroupRange[] {
  return Array.from({ length: parallelism }, (_, i) => keyGroupRangeForIndex(maxParallelism, parallelism, i));
}

/** Ranges tile 0..maxParallelism-1 in order, sizes differ by at most 1, and indexForKeyGroup inverts them. */
function checkPartition(maxParallelism: number, parallelism: number): void {
  const ranges = rangesFor(maxParallelism, parallelism);
  const where = `maxParallelism ${maxParallelism}, parallelism ${parallelism}`;
  let next = 0;
  let smallest = Infinity;
  let largest = 0;
  for (const [index, range] of ranges.entries()) {
    if (range.start !== next) assert.fail(`${where}: range ${index} starts at ${range.start}, expected ${next}`);
    if (range.end < range.start) assert.fail(`${where}: range ${index} is empty (${range.start}..${range.end})`);
    smallest = Math.min(smallest, rangeSize(range));
    largest = Math.max(largest, rangeSize(range));
    for (let kg = range.start; kg <= range.end; kg++) {
      const owner = indexForKeyGroup(maxParallelism, parallelism, kg);
      if (owner !== index) assert.fail(`${where}: key group ${kg} is in range ${index} but indexForKeyGroup says ${owner}`);
    }
    next = range.end + 1;
  }
  if (next !== maxParallelism) assert.fail(`${where}: ranges end at ${next - 1}, expected ${maxParallelism - 1}`);
  if (largest - smallest > 1) assert.fail(`${where}: range sizes ${smallest}..${largest} differ by more than 1`);
}

test('key groups - ranges tile 0..maxParallelism-1 contiguously and balanced for every parallelism', () => {
  for (const maxParallelism of [1, 2, 3, 7, 100, DEFAULT_MAX_PARALLELISM, 1000]) {
    for (let parallelism = 1; parallelism <= maxParallelism; parallelism++) checkPartition(maxParallelism, parallelism);
  }
});

test('key groups - ranges tile the largest key-group space for sampled parallelisms', () => {
  for (const parallelism of [1, 2, 3, 7, 128, 1000, 4097, MAX_KEY_GROUPS - 1, MAX_KEY_GROUPS]) checkPartition(MAX_KEY_GROUPS, parallelism);
});

test('key groups - indexForKeyGroup agrees with keyGroupRangeForIndex for every key group', () => {
  for (const parallelism of [1, 2, 3, 5, 7, 64, 127, 128]) {
    const ranges = rangesFor(DEFAULT_MAX_PARALLELISM, parallelism);
    for (let kg = 0; kg < DEFAULT_MAX_PARALLELISM; kg++) {
      const index = indexForKeyGroup(DEFAULT_MAX_PARALLELISM, parallelism, kg);
      assert.ok(rangeContains(ranges[index]!, kg), `parallelism ${parallelism}: key group ${kg} not in range ${index}`);
      assert.equal(ranges.filter((r) => rangeContains(r, kg)).length, 1, `key group ${kg} is in exactly one range`);
    }
  }
});

test('key groups - 100,000 keys spread over 1, 2, 3 and 7 workers within 10% of each worker\'s share', () => {
  const keyCount = 100_000;
  const perKeyGroup = new Array<number>(DEFAULT_MAX_PARALLELISM).fill(0);
  for (let i = 0; i < keyCount; i++) {
    const kg = keyGroupForKey(`user-${i}`);
    perKeyGroup[kg] = perKeyGroup[kg]! + 1;
  }
  for (const parallelism of [1, 2, 3, 7]) {
    for (const [index, range] of rangesFor(DEFAULT_MAX_PARALLELISM, parallelism).entries()) {
      let count = 0;
      for (const kg of keyGroupsOf([range])) count += perKeyGroup[kg]!;
      const share = (keyCount * rangeSize(range)) / DEFAULT_MAX_PARALLELISM;
      const deviation = Math.abs(count - share) / share;
      assert.ok(deviation <= 0.1, `parallelism ${parallelism}, worker ${index}: ${count} keys, share ${share.toFixed(0)} (${(deviation * 100).toFixed(1)}% off)`);
    }
  }
});

test('key groups - keyGroupForKey is deterministic and within 0..maxParallelism-1', () => {
  for (const maxParallelism of [1, 7, 128, MAX_KEY_GROUPS]) {
    for (const key of ['', 'a', 'user-42', 'ünïcödé-🔑', 'x'.repeat(10_000)]) {
      const kg = keyGroupForKey(key, maxParallelism);
      assert.ok(Number.isInteger(kg) && kg >= 0 && kg < maxParallelism, `${key.slice(0, 20)} → ${kg} with maxParallelism ${maxParallelism}`);
      assert.equal(keyGroupForKey(key, maxParallelism), kg);
      assert.equal(kg, hashKey(key) % maxParallelism);
    }
  }
  assert.equal(keyGroupForKey('user-42'), keyGroupForKey('user-42', DEFAULT_MAX_PARALLELISM));
});

test('key groups - hashKey is murmur3 x86_32 with seed 0 over UTF-8, as an unsigned 32-bit integer', () => {
  // The known vector, checked against the library itself before asserting our wrapper.
  assert.equal(murmur.x86.hash32(new TextEncoder().encode('hello'), 0) >>> 0, 0x248bfa47);
  assert.equal(hashKey('hello'), 0x248bfa47);
  assert.equal(hashKey(''), 0);
  for (const key of ['user-1', 'ünïcödé', '🔑']) {
    const h = hashKey(key);
    assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
    assert.equal(h, murmur.x86.hash32(new TextEncoder().encode(key), 0) >>> 0);
  }
});

test('key groups - hashKey agrees with the library over TextEncoder bytes for every length and every UTF-16 shape', () => {
  // Lengths 0..40 cover every tail length; code units from each UTF-8 width, pairs and lone surrogates.
  const units = [0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xfffd, 0xffff, 0xd83d, 0xde00, 0xdbff, 0xdc00];
  let seed = 7;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  for (let n = 0; n < 2000; n++) {
    const length = n % 41;
    let key = '';
    for (let i = 0; i < length; i++) key += String.fromCharCode(next() % 3 === 0 ? units[next() % units.length]! : 0x20 + (next() % 0x5f));
    assert.equal(hashKey(key), murmur.x86.hash32(new TextEncoder().encode(key), 0) >>> 0, JSON.stringify(key));
  }
});

test('key groups - partitionForKey keeps a key on one partition within range', () => {
  for (let i = 0; i < 1000; i++) {
    const p = partitionForKey(`order-${i}`, 12);
    assert.ok(p >= 0 && p < 12);
    assert.equal(partitionForKey(`order-${i}`, 12), p);
  }
});

test('key groups - assignKeyGroups gives workers, in the order given, the ranges by index', () => {
  const workers = ['w1', 'w2', 'w3'];
  const assignment = assignKeyGroups(workers, DEFAULT_MAX_PARALLELISM);
  assert.deepEqual([...assignment.keys()], workers);
  assert.deepEqual([...assignment.values()], rangesFor(DEFAULT_MAX_PARALLELISM, 3));
  assert.deepEqual(assignment.get('w1'), { start: 0, end: 42 });
  assert.deepEqual(assignment.get('w3'), { start: 86, end: 127 });
});

test('key groups - assignSplits deals partitions round-robin', () => {
  assert.deepEqual(Object.fromEntries(assignSplits(['a', 'b', 'c'], 8)), { a: [0, 3, 6], b: [1, 4, 7], c: [2, 5] });
  assert.deepEqual(Object.fromEntries(assignSplits(['a', 'b', 'c'], 2)), { a: [0], b: [1], c: [] });
  assert.deepEqual(Object.fromEntries(assignSplits(['only'], 3)), { only: [0, 1, 2] });
});

test('key groups - keyGroupsOf and rangeContains walk ranges inclusively', () => {
  assert.deepEqual([...keyGroupsOf([{ start: 3, end: 5 }, { start: 9, end: 9 }])], [3, 4, 5, 9]);
  assert.ok(rangeContains({ start: 3, end: 5 }, 3) && rangeContains({ start: 3, end: 5 }, 5));
  assert.ok(!rangeContains({ start: 3, end: 5 }, 2) && !rangeContains({ start: 3, end: 5 }, 6));
  assert.equal(rangeSize({ start: 7, end: 7 }), 1);
});

test('key groups - invalid maxParallelism, parallelism or index throw RangeError', () => {
  const invalid: Array<[string, () => unknown]> = [
    ['maxParallelism 0', () => keyGroupRangeForIndex(0, 1, 0)],
    ['maxParallelism above 32768', () => keyGroupRangeForIndex(MAX_KEY_GROUPS + 1, 1, 0)],
    ['fractional maxParallelism', () => keyGroupRangeForIndex(12.5, 1, 0)],
    ['NaN maxParallelism', () => keyGroupRangeForIndex(Number.NaN, 1, 0)],
    ['parallelism 0', () => keyGroupRangeForIndex(128, 0, 0)],
    ['parallelism above maxParallelism', () => keyGroupRangeForIndex(128, 129, 0)],
    ['fractional parallelism', () => keyGroupRangeForIndex(128, 2.5, 0)],
    ['negative index', () => keyGroupRangeForIndex(128, 4, -1)],
    ['index equal to parallelism', () => keyGroupRangeForIndex(128, 4, 4)],
    ['fractional index', () => keyGroupRangeForIndex(128, 4, 1.5)],
    ['indexForKeyGroup with maxParallelism 0', () => indexForKeyGroup(0, 1, 0)],
    ['indexForKeyGroup with parallelism above maxParallelism', () => indexForKeyGroup(8, 9, 0)],
    ['assignKeyGroups with more workers than key groups', () => assignKeyGroups(['a', 'b', 'c'], 2)],
  ];
  for (const [what, call] of invalid) assert.throws(call, RangeError, what);
});
