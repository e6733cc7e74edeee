// Key-group math. The key group is the unit of state, addressing, checkpoint files and
// migration (docs/ARCHITECTURE.md, "Key groups"). Formulas follow Flink's KeyGroupRangeAssignment so
// that ranges are contiguous and balanced by count.
import murmur from 'murmurhash3js-revisited';
import { MAX_KEY_GROUPS } from './manifest.ts';

export { MAX_KEY_GROUPS };

/** Default number of key groups of a keyed stage; fixed for the job's life. */
export const DEFAULT_MAX_PARALLELISM = 128;

const encoder = new TextEncoder();

/** A key group range, both ends inclusive. */
export interface KeyGroupRange {
  readonly start: number;
  readonly end: number;
}

/** murmur3_32 (seed 0) of the key's UTF-8 bytes. Shared by senders, query routers and producers. */
export function hashKey(key: string): number {
  return murmur.x86.hash32(encoder.encode(key), 0) >>> 0;
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
