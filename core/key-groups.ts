// Key-group math. The key group is the unit of state, addressing, checkpoint files and
// migration (docs/ARCHITECTURE.md, "Key groups"). Formulas follow Flink's KeyGroupRangeAssignment so
// that ranges are contiguous and balanced by count.
import { MAX_KEY_GROUPS } from './manifest.ts';

export { MAX_KEY_GROUPS };

/** Default number of key groups of a keyed stage; fixed for the job's life. */
export const DEFAULT_MAX_PARALLELISM = 128;


/** A key group range, both ends inclusive. */
export interface KeyGroupRange {
  readonly start: number;
  readonly end: number;
}

/**
 * murmur3_32 (seed 0) of the key's UTF-8 bytes. Shared by senders, query routers and producers.
 * The bytes are produced from the UTF-16 code units as they are hashed (a lone surrogate as
 * U+FFFD, like TextEncoder): no buffer per key. test/unit/key-groups.test.ts checks it against
 * murmurhash3js-revisited over TextEncoder's bytes.
 */
export function hashKey(key: string): number {
  let h = 0;
  let block = 0;
  let filled = 0;
  let length = 0;
  for (let i = 0; i < key.length; i++) {
    let c = key.charCodeAt(i);
    let bytes: number;
    let n: number;
    if (c < 0x80) {
      bytes = c;
      n = 1;
    } else if (c < 0x800) {
      bytes = (0xc0 | (c >> 6)) | ((0x80 | (c & 0x3f)) << 8);
      n = 2;
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < key.length ? key.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
        } else c = 0xfffd;
      }
      if (c < 0x10000) {
        bytes = (0xe0 | (c >> 12)) | ((0x80 | ((c >> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
        n = 3;
      } else {
        bytes = (0xf0 | (c >> 18)) | ((0x80 | ((c >> 12) & 0x3f)) << 8) | ((0x80 | ((c >> 6) & 0x3f)) << 16) | ((0x80 | (c & 0x3f)) << 24);
        n = 4;
      }
    }
    for (let j = 0; j < n; j++) {
      block |= ((bytes >>> (8 * j)) & 0xff) << (8 * filled);
      length++;
      if (++filled === 4) {
        h ^= scramble(block);
        h = (h << 13) | (h >>> 19);
        h = (Math.imul(h, 5) + 0xe6546b64) | 0;
        block = 0;
        filled = 0;
      }
    }
  }
  if (filled > 0) h ^= scramble(block);
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function scramble(k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, 0x1b873593);
}

export function keyGroupForKey(key: string, maxParallelism: number = DEFAULT_MAX_PARALLELISM): number {
  if (!(maxParallelism >= 1)) throw new RangeError(`maxParallelism ${maxParallelism} must be at least 1`);
  return hashKey(key) % maxParallelism;
}

/** Flink: computeKeyGroupRangeForOperatorIndex. */
export function keyGroupRangeForIndex(maxParallelism: number, parallelism: number, index: number): KeyGroupRange {
  checkParallelism(maxParallelism, parallelism);
  if (!Number.isInteger(index) || index < 0 || index >= parallelism) throw new RangeError(`index ${index} outside 0..${parallelism - 1}`);
  const start = Math.floor((index * maxParallelism + parallelism - 1) / parallelism);
  const end = Math.floor(((index + 1) * maxParallelism - 1) / parallelism);
  return { start, end };
}

/** Flink: computeOperatorIndexForKeyGroup. */
export function indexForKeyGroup(maxParallelism: number, parallelism: number, keyGroup: number): number {
  checkParallelism(maxParallelism, parallelism);
  if (!Number.isInteger(keyGroup) || keyGroup < 0 || keyGroup >= maxParallelism) throw new RangeError(`key group ${keyGroup} outside 0..${maxParallelism - 1}`);
  return Math.floor((keyGroup * parallelism) / maxParallelism);
}

export function rangeSize(range: KeyGroupRange): number {
  return range.end - range.start + 1;
}

export function rangeContains(range: KeyGroupRange, keyGroup: number): boolean {
  return keyGroup >= range.start && keyGroup <= range.end;
}

export function* keyGroupsOf(ranges: readonly KeyGroupRange[]): Generator<number> {
  for (const r of ranges) for (let kg = r.start; kg <= r.end; kg++) yield kg;
}

/**
 * Assigns contiguous, count-balanced key-group ranges to workers, in the order given
 * (callers sort worker ids so that every process computes the same assignment).
 */
export function assignKeyGroups<W extends string>(workers: readonly W[], maxParallelism: number): Map<W, KeyGroupRange> {
  const out = new Map<W, KeyGroupRange>();
  workers.forEach((w, i) => out.set(w, keyGroupRangeForIndex(maxParallelism, workers.length, i)));
  return out;
}

/** Source splits (subject partitions) are spread round-robin over the workers. */
export function assignSplits<W extends string>(workers: readonly W[], partitions: number): Map<W, number[]> {
  if (workers.length === 0) throw new RangeError('no workers to assign splits to');
  const out = new Map<W, number[]>(workers.map((w) => [w, []]));
  for (let p = 0; p < partitions; p++) out.get(workers[p % workers.length]!)!.push(p);
  return out;
}

/** The subject partition a producer publishes a keyed event to, so one key stays in order. */
export function partitionForKey(key: string, partitions: number): number {
  return hashKey(key) % partitions;
}

function checkParallelism(maxParallelism: number, parallelism: number): void {
  if (!Number.isInteger(maxParallelism) || maxParallelism < 1 || maxParallelism > MAX_KEY_GROUPS) {
    throw new RangeError(`maxParallelism ${maxParallelism} outside 1..${MAX_KEY_GROUPS}`);
  }
  if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > maxParallelism) {
    throw new RangeError(`parallelism ${parallelism} outside 1..${maxParallelism}`);
  }
}
