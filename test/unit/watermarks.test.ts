// Watermark logic without processes: the source split's generator (bounded out-of-orderness,
// idleness) and a task's minimum over its input channels (worker/channel/channel-watermarks.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChannelWatermarks } from '../../worker/channel/channel-watermarks.ts';
import { WatermarkGenerator } from '../../worker/task/watermark-generator.ts';

test('watermarks - a split sends (largest time) - maxOutOfOrdernessMs - 1, only when it advanced', () => {
  let now = 0;
  const g = new WatermarkGenerator({ maxOutOfOrdernessMs: 100, watermarkIntervalMs: 10 }, () => now);
  assert.equal(g.poll(), undefined, 'nothing read, nothing to say');
  g.onRecord(1000);
  g.onRecord(900); // out of order: does not move the watermark back
  assert.deepEqual(g.poll(), { watermark: 899, idle: false });
  assert.equal(g.poll(), undefined);
  g.onRecord(1500);
  now = 10_000_000;
  assert.deepEqual(g.poll(), { watermark: 1399, idle: false }, 'without idleTimeoutMs a split is never idle');
});

test('watermarks - a quiet split turns idle after idleTimeoutMs, and active again with its next record', () => {
  let now = 0;
  const g = new WatermarkGenerator({ maxOutOfOrdernessMs: 0, idleTimeoutMs: 500, watermarkIntervalMs: 10 }, () => now);
  now = 499;
  assert.equal(g.poll(), undefined);
  now = 500;
  assert.deepEqual(g.poll(), { watermark: Number.NEGATIVE_INFINITY, idle: true }, 'a split that never read anything goes idle too');
  assert.equal(g.poll(), undefined, 'said once');
  g.onRecord(7000);
  assert.deepEqual(g.poll(), { watermark: 6999, idle: false });
  now = 999;
  assert.equal(g.poll(), undefined);
  now = 1000;
  assert.deepEqual(g.poll(), { watermark: 6999, idle: true });
});

test('watermarks - a key group holds the minimum over its active channels, never goes back, and ignores idle ones', () => {
  const w = new ChannelWatermarks(['s0', 's1', 's2'], [4, 5]);
  assert.equal(w.update(4, 's0', 100, false), undefined, 's1 and s2 have said nothing: -Infinity holds it');
  assert.equal(w.update(4, 's1', 50, false), undefined);
  assert.equal(w.update(4, 's2', 70, false), 50);
  assert.equal(w.watermark(4), 50);
  assert.equal(w.watermark(5), Number.NEGATIVE_INFINITY, 'key groups are apart');
  assert.equal(w.update(4, 's1', 40, false), undefined, 'a channel does not go back');
  assert.equal(w.update(4, 's1', 60, true), 70, 's1 idle: the minimum of s0 and s2');
  assert.equal(w.update(4, 's2', 90, true), 100, 's2 idle too: s0 alone');
  assert.equal(w.update(4, 's0', 100, true), undefined, 'all idle: the largest watermark, 100, is where it is already');
  assert.equal(w.watermark(4), 100);
  assert.equal(w.update(4, 's1', 80, false), undefined, 'a channel back from idle behind the watermark does not move it back');
  assert.equal(w.watermark(4), 100);
  assert.equal(w.update(4, 's1', 150, false), 150);
  assert.equal(w.update(4, 'stranger', 1e12, false), undefined, 'an unknown sender is ignored');
  assert.equal(w.minimum(), Number.NEGATIVE_INFINITY, 'the task forwards the minimum over its key groups');
  // The split that reached further goes idle first, then the one holding time back: the
  // watermark must not stay at the lower one.
  assert.equal(w.update(5, 's0', 9000, false), undefined);
  assert.equal(w.update(5, 's1', 5000, false), undefined);
  assert.equal(w.update(5, 's2', 7000, true), 5000);
  assert.equal(w.update(5, 's0', 9000, true), undefined, 's1 still holds it at 5000');
  assert.equal(w.update(5, 's1', 5000, true), 9000, 'all idle: the largest watermark');
});

test('watermarks - a keyed task forwards the minimum over its key groups, once per advance, and idleness when all inputs are idle', async () => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { StateBackend } = await import('../../worker/state/state-backend.ts');
  const { KeyedTime } = await import('../../worker/task/keyed-time.ts');
  const dir = await mkdtemp(join(tmpdir(), 'eddy-wm-'));
  const backend = await StateBackend.open({ path: join(dir, 'db') });
  try {
    const forwarded: Array<[number, boolean]> = [];
    const time = new KeyedTime({
      stage: 's',
      backend,
      declared: new Map(),
      states: [],
      upstreamSenders: ['a', 'b'],
      keyGroups: [0, 1],
      onTimer: undefined,
      runUser: async (_kg, run) => run(),
      emit: () => undefined,
      emitSide: () => undefined,
      forwardWatermark: (wm, idle) => void forwarded.push([wm, idle]),
    });
    await time.onWatermark(0, 'a', 100, false);
    await time.onWatermark(0, 'b', 80, false);
    assert.equal(time.watermark(0), 80);
    assert.deepEqual(forwarded, [], 'key group 1 has nothing yet: the task holds back');
    await time.onWatermark(1, 'a', 100, false);
    await time.onWatermark(1, 'b', 90, false);
    assert.deepEqual(forwarded, [[80, false]]);
    await time.onWatermark(0, 'b', 120, false);
    assert.deepEqual(forwarded, [[80, false], [90, false]]);
    for (const kg of [0, 1]) for (const s of ['a', 'b']) await time.onWatermark(kg, s, 0, true);
    assert.deepEqual(forwarded.at(-1), [100, true], 'all idle: every key group at its largest input watermark, and idleness goes downstream');
  } finally {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  }
});
