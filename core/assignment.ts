// Balanced assignment that moves the fewest items (key groups or source splits) when workers
// join or leave (docs/ARCHITECTURE.md, "Key groups": "balanced by count, moving as few as possible").
//
// Every worker gets floor(total / n) or one more; the workers that already hold the most get the
// extra ones. A worker keeps its lowest items up to its quota (a contiguous range stays
// contiguous); what is left over, and what belongs to no listed worker, goes in order to the
// workers below their quota, each taking a contiguous run of the pool.
import type { KeyGroupRange } from './key-groups.ts';

export interface Move<W extends string> {
  item: number;
  /** Undefined: the item had no owner among the current assignment. */
  from: W | undefined;
  to: W;
}

/**
 * The next assignment of `total` items (0..total-1) over `workers`, given the current one.
 * At most `maxMoves` items change owner (items without a current owner count too); call again
 * after the moves are carried out to continue. Workers are taken in the order given: sort ids
 * so that every process computes the same result.
 */
export function rebalance<W extends string>(
  current: ReadonlyMap<W, readonly number[]>,
  workers: readonly W[],
  total: number,
  maxMoves = Number.POSITIVE_INFINITY,
): { assignment: Map<W, number[]>; moves: Move<W>[] } {
  if (workers.length === 0) throw new RangeError('no workers to assign to');
  const owner = new Map<number, W>();
  for (const [w, items] of current) for (const item of items) if (item >= 0 && item < total) owner.set(item, w);
  const listed = new Set(workers);
  const held = new Map<W, number[]>(workers.map((w) => [w, [...(current.get(w) ?? [])].filter((i) => owner.get(i) === w).sort((a, b) => a - b)]));
  // The extra items go to those that already hold the most, so that fewer items move.
  const base = Math.floor(total / workers.length);
  const extra = total % workers.length;
  const byHolding = [...workers].sort((a, b) => held.get(b)!.length - held.get(a)!.length || workers.indexOf(a) - workers.indexOf(b));
  const quota = new Map<W, number>(byHolding.map((w, i) => [w, base + (i < extra ? 1 : 0)]));

  const assignment = new Map<W, number[]>();
  const pool: number[] = [];
  for (const w of workers) {
    const items = held.get(w)!;
    assignment.set(w, items.slice(0, quota.get(w)));
    pool.push(...items.slice(quota.get(w)));
  }
  for (let item = 0; item < total; item++) {
    const o = owner.get(item);
    if (o === undefined || !listed.has(o)) pool.push(item);
  }
  pool.sort((a, b) => a - b);

  const moves: Move<W>[] = [];
  let next = 0;
  for (const w of workers) {
    const items = assignment.get(w)!;
    while (items.length < quota.get(w)! && next < pool.length && moves.length < maxMoves) {
      const item = pool[next++]!;
      items.push(item);
      moves.push({ item, from: owner.get(item), to: w });
    }
  }
  // Items not moved in this step stay with their current owner.
  for (; next < pool.length; next++) {
    const item = pool[next]!;
    const o = owner.get(item);
    if (o !== undefined) {
      const list = assignment.get(o) ?? [];
      assignment.set(o, list);
      list.push(item);
    }
  }
  for (const items of assignment.values()) items.sort((a, b) => a - b);
  return { assignment, moves };
}

/** Key groups as the fewest inclusive ranges. */
export function toRanges(items: readonly number[]): KeyGroupRange[] {
  const sorted = [...items].sort((a, b) => a - b);
  const out: Array<{ start: number; end: number }> = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && last.end + 1 === i) last.end = i;
    else out.push({ start: i, end: i });
  }
  return out;
}
