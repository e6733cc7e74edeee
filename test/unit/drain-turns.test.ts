// The thread's record loops share each turn of the event loop (worker/task/drain-turns.ts): with a
// backlog in many loops a turn stays near YIELD_EVERY_MS, and no loop is kept waiting by the others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrainTurns, YIELD_EVERY_MS } from '../../worker/task/drain-turns.ts';

/** Busy for `ms` of the thread, as a batch of records whose state is in memory. */
function work(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/**
 * `loops` loops of `items` items each, 1 ms an item, then a microtask (a state read that hits
 * memory) and the turn when due, as a keyed task's drain runs its batches. Meanwhile a probe
 * measures the turns of the event loop (a setImmediate chain); each loop notes the most items the
 * others did between two of its own.
 */
async function run(turns: DrainTurns, loops: number, items: number): Promise<{ gaps: number[]; done: number[]; longestWait: number }> {
  const done = Array.from({ length: loops }, () => 0);
  let finished = false;
  const gaps: number[] = [];
  let last = performance.now();
  const probe = (): void => {
    if (finished) return;
    const now = performance.now();
    gaps.push(now - last);
    last = now;
    setImmediate(probe);
  };
  setImmediate(probe);
  let longestWait = 0;
  let itemsDone = 0;
  await Promise.all(
    done.map(async (_, i) => {
      let before = 0;
      for (let n = 0; n < items; n++) {
        work(1);
        done[i]!++;
        longestWait = Math.max(longestWait, itemsDone - before);
        before = ++itemsDone;
        await Promise.resolve();
        if (turns.due) {
          await turns.next();
          while (turns.due) await turns.again();
        }
      }
    }),
  );
  finished = true;
  return { gaps, done, longestWait };
}

test('drain turns - loops with a backlog share each turn: turns stay near the stretch, every loop progresses and finishes', async () => {
  const loops = 40;
  const { gaps, done, longestWait } = await run(new DrainTurns(), loops, 30);
  assert.deepEqual(done, Array.from({ length: loops }, () => 30));
  const sorted = [...gaps].sort((a, b) => a - b);
  const p90 = sorted[Math.floor(sorted.length * 0.9)]!;
  // A stretch per loop and turn would make turns of loops * YIELD_EVERY_MS (800 ms here).
  assert.ok(p90 <= 3 * YIELD_EVERY_MS, `turns of ${p90.toFixed(1)} ms (90th percentile of ${gaps.length})`);
  // ~20 items a turn for 40 loops: each loop gets one every second turn or so, while the others do
  // about one each. Were the loops that ran resumed first, the same half would run every turn until
  // done (600 items), the other half waiting.
  assert.ok(longestWait <= 3 * loops, `a loop waited while the others did ${longestWait} items`);
});

test('drain turns - a lone loop yields once its stretch is used and goes on in the next turn', async () => {
  const turns = new DrainTurns();
  const { gaps, done } = await run(turns, 1, 100);
  assert.deepEqual(done, [100]);
  assert.ok(gaps.length >= 3, `${gaps.length} turns of the event loop in 100 ms of work`);
  assert.ok(Math.max(...gaps) <= 3 * YIELD_EVERY_MS, `longest turn ${Math.max(...gaps).toFixed(1)} ms`);
});
