// Balanced assignment with the fewest moves (core/assignment.ts), checked against its
// definition: every item owned once, counts within one of each other, and exactly the surplus
// of over-full workers (plus what departed workers held) moves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { rebalance, toRanges } from '../../core/assignment.ts';

function owners(assignment: Map<string, number[]>): Map<number, string> {
  const out = new Map<number, string>();
  for (const [w, items] of assignment) for (const i of items) {
    assert.ok(!out.has(i), `item ${i} assigned twice`);
    out.set(i, w);
  }
  return out;
}

test('assignment - a join moves only the new worker\'s share, and only from over-full workers', () => {
  const current = new Map([['a', Array.from({ length: 128 }, (_, i) => i)]]);
  const { assignment, moves } = rebalance(current, ['a', 'b', 'c'], 128);
  assert.deepEqual([...assignment.values()].map((x) => x.length).sort(), [42, 43, 43]);
  assert.equal(moves.length, 128 - 43, 'a keeps its quota; the rest moves');
  assert.ok(moves.every((m) => m.from === 'a'));
  // Contiguous runs: b and c each take one range.
  assert.equal(toRanges(assignment.get('b')!).length, 1);
  assert.equal(toRanges(assignment.get('c')!).length, 1);
});

test('assignment - a leaving worker\'s items spread over the rest; maxMoves caps a step', () => {
  const first = rebalance(new Map<string, number[]>(), ['a', 'b', 'c'], 128).assignment;
  const step = rebalance(first, ['a', 'b'], 128, 10);
  assert.equal(step.moves.length, 10);
  assert.ok(step.moves.every((m) => m.from === 'c'));
  // Not yet moved: still with c, so every item keeps an owner.
  assert.equal(owners(step.assignment).size, 128);
  assert.equal(step.assignment.get('c')!.length, first.get('c')!.length - 10);
});

test('assignment - balanced, complete and minimal for any current assignment and worker set', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 64 }),
      fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { minLength: 1, maxLength: 6 }),
      fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'x'), { maxLength: 64 }),
      (total, listed: string[], owner) => {
        const workers: string[] = listed;
        const current = new Map<string, number[]>();
        owner.slice(0, total).forEach((w, item) => current.set(w, [...(current.get(w) ?? []), item]));
        workers.sort();
        const { assignment, moves } = rebalance(current, workers, total);
        const owned = owners(assignment);
        assert.equal(owned.size, total);
        const counts = workers.map((w) => assignment.get(w)?.length ?? 0);
        assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `balanced: ${counts}`);
        assert.ok([...assignment.keys()].every((w) => workers.includes(w)), 'only listed workers own items after a full rebalance');
        // Minimal: an item moves only if its owner left or is over its quota.
        const base = Math.floor(total / workers.length);
        let mustMove = 0;
        for (let item = 0; item < total; item++) if (!workers.includes(owner[item] ?? '')) mustMove++;
        for (const w of workers) mustMove += Math.max(0, (current.get(w)?.length ?? 0) - (base + 1));
        assert.ok(moves.length <= mustMove + workers.length, `moves ${moves.length} vs surplus ${mustMove}`);
        for (const m of moves) assert.equal(owned.get(m.item), m.to);
      },
    ),
    { numRuns: 300 },
  );
});
