// Watermark logic without processes: the source split's generator (bounded out-of-orderness,
// idleness) and a task's minimum over its input channels (worker/channel-watermarks.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChannelWatermarks } from '../worker/channel-watermarks.ts';
import { WatermarkGenerator } from '../worker/watermark-generator.ts';

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
  assert.equal(w.update(4, 's0', 100, true), undefined, 'all idle: the watermark stays');
  assert.equal(w.watermark(4), 100);
  assert.equal(w.update(4, 's1', 80, false), undefined, 'a channel back from idle behind the watermark does not move it back');
  assert.equal(w.watermark(4), 100);
  assert.equal(w.update(4, 's1', 150, false), 150);
  assert.equal(w.update(4, 'stranger', 1e12, false), undefined, 'an unknown sender is ignored');
  assert.equal(w.minimum(), Number.NEGATIVE_INFINITY, 'the task forwards the minimum over its key groups');
});
