// The overlay's memory bound (worker/checkpoint/overlay-bound.ts): past it a worker asks for an
// early checkpoint at most every ASK_EVERY_MS, and keeps asking while the overlay stays past it,
// also when no batch comes to look (the input ended right after an ask).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OverlayBound } from '../../worker/checkpoint/overlay-bound.ts';
import { waitFor } from '../kit/index.ts';

test('overlay bound - an ask held back by the pause is made once the pause is over, with no batch to look again; none once a checkpoint froze the overlay', { timeout: 10_000 }, async () => {
  let bytes = 0;
  const asks: number[] = [];
  const bound = new OverlayBound({ bytes: () => bytes, maxBytes: 1000, ask: (b) => void asks.push(b), askEveryMs: 100 });
  try {
    bound.check();
    assert.deepEqual(asks, [], 'within the bound: no ask');
    bytes = 1500;
    bound.check();
    assert.deepEqual(asks, [1500]);
    // The last batch of the input: the overlay grew, but the ask before is too recent.
    bytes = 2500;
    bound.check();
    assert.deepEqual(asks, [1500], 'at most one ask per pause');
    // No more batches come; the bound asks again by itself.
    await waitFor(() => asks.length === 2, { timeoutMs: 2_000, what: 'the held-back ask' });
    assert.deepEqual(asks, [1500, 2500]);
    // A checkpoint froze the overlay: below the bound, the next look asks nothing and schedules none.
    bytes = 10;
    await waitFor(() => !bound.watching, { timeoutMs: 2_000, what: 'the bound to stop looking' });
    assert.equal(asks.length, 2, 'no ask once within the bound');
    assert.equal(bound.asks, 2);
  } finally {
    bound.close();
  }
});

test('overlay bound - closed, it asks nothing more and schedules nothing', () => {
  const asks: number[] = [];
  const bound = new OverlayBound({ bytes: () => 5000, maxBytes: 1000, ask: (b) => void asks.push(b), askEveryMs: 50 });
  bound.check();
  assert.ok(bound.watching);
  bound.close();
  bound.check();
  assert.ok(!bound.watching, 'nothing scheduled');
  assert.deepEqual(asks, [5000]);
});
