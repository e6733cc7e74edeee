// Timers in the state store (worker/task/timer-service.ts) against a real RocksDB: order, deletion,
// firing up to a time, checkpoint and restore, and the heap with 2 million timers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decodeCheckpointObject, encodeCheckpointObject } from '../../core/checkpoint-format.ts';
import { StateBackend } from '../../worker/state/state-backend.ts';
import { TimerService, timerMapKey } from '../../worker/task/timer-service.ts';
import { StateUndoLog } from '../../worker/state/state-undo.ts';
import { KeyedContext } from '../../worker/task/keyed-context.ts';
import { KeyedTime } from '../../worker/task/keyed-time.ts';
import { valueState } from '../../sdk/index.ts';
import { waitFor } from '../kit/index.ts';
import { withBackends } from '../kit/state-backends.ts';

const S = 'stage-t';


type Fired = Array<[string, number]>;

test('timers - fire in (time, key) order up to the given time, once each; deleted ones never fire', () =>
  withBackends(1, async ([b]) => {
    const timers = new TimerService(b!, S);
    timers.register('event', 1, 'b', 300);
    timers.register('event', 1, 'a', 300);
    timers.register('event', 1, 'c', 100);
    timers.register('event', 1, 'c', 100); // the same timer again: still one
    timers.register('event', 1, 'd', 200);
    timers.register('event', 1, 'e', 250);
    timers.register('event', 2, 'other-group', 50);
    timers.register('processing', 1, 'p', 10);
    timers.delete('event', 1, 'e', 250);
    const fired: Fired = [];
    const fire = (key: string, ts: number): void => void fired.push([key, ts]);
    assert.equal(await timers.fire('event', 1, 99, fire), 0);
    assert.equal(await timers.fire('event', 1, 299, fire), 2);
    assert.deepEqual(fired, [['c', 100], ['d', 200]]);
    assert.equal(await timers.fire('event', 1, 300, fire), 2, 'a timer at exactly the watermark fires');
    assert.deepEqual(fired.slice(2), [['a', 300], ['b', 300]]);
    assert.equal(await timers.fire('event', 1, 10_000, fire), 0, 'each fires once');
    assert.deepEqual(await timers.list('event', 2), [{ timestampMs: 50, key: 'other-group' }]);
    assert.deepEqual(await timers.list('processing', 1), [{ timestampMs: 10, key: 'p' }], 'domains are apart');
    assert.equal(await timers.earliest('event', 1), Number.POSITIVE_INFINITY);
    assert.throws(() => timers.register('event', 1, 'x', -1), /timer time must be an integer/);
    assert.throws(() => timers.register('event', 1, 'x', 1.5), /timer time must be an integer/);
  }));

test('timers - a callback may register timers; those due fire in the same call, later ones wait', () =>
  withBackends(1, async ([b]) => {
    const timers = new TimerService(b!, S);
    timers.register('event', 0, 'k', 10);
    const fired: Fired = [];
    const n = await timers.fire('event', 0, 100, (key, ts) => {
      fired.push([key, ts]);
      if (ts === 10) {
        timers.register('event', 0, key, 50);
        timers.register('event', 0, key, 500);
      }
    });
    assert.equal(n, 2);
    assert.deepEqual(fired, [['k', 10], ['k', 50]]);
    assert.equal(await timers.earliest('event', 0), 500);
  }));

test('timers - callbacks that each register a later timer do not make the due ones be read again: one range read fires them all, and the later ones are learned', () =>
  withBackends(1, async ([b]) => {
    const timers = new TimerService(b!, S);
    for (let i = 0; i < 100; i++) timers.register('event', 3, `auction-${i}`, 1_000 + i);
    timers.register('event', 3, 'not-due', 5_000);
    assert.equal(await timers.earliest('event', 3), 1_000);
    // Counts the range reads (each a RocksDB iterator) the timers make.
    let reads = 0;
    const range = b!.mapRangeBytes.bind(b!);
    b!.mapRangeBytes = (...args: Parameters<typeof range>) => {
      reads++;
      return range(...args);
    };
    const fired: Fired = [];
    // As Nexmark q4 closes an auction: the callback keeps it a while longer with a later timer.
    const n = await timers.fire('event', 3, 2_000, (key, ts) => {
      fired.push([key, ts]);
      if (key.startsWith('auction-')) timers.register('event', 3, key, ts + 3_000);
    });
    assert.equal(n, 100);
    assert.deepEqual(fired.map(([, ts]) => ts), Array.from({ length: 100 }, (_, i) => 1_000 + i));
    assert.equal(reads, 1, `${reads} range reads for 100 due timers`);
    assert.equal(await timers.earliest('event', 3), 4_000, 'the earliest registered by a callback, before the next timer on the page');
    const after: Fired = [];
    assert.equal(await timers.fire('event', 3, 4_050, (key, ts) => void after.push([key, ts])), 51);
    assert.deepEqual(after.slice(0, 2), [['auction-0', 4_000], ['auction-1', 4_001]]);
    assert.equal(await timers.earliest('event', 3), 4_051);
  }));

test('timers - a callback that deletes a due timer stops it; one that registers a timer between due ones gets it fired in order', () =>
  withBackends(1, async ([b]) => {
    const timers = new TimerService(b!, S);
    // Committed first, so that firing has to skip tombstones over RocksDB too.
    for (const [key, ts] of [['a', 100], ['b', 120], ['c', 200], ['d', 250]] as const) timers.register('event', 0, key, ts);
    b!.freeze(1);
    await b!.commit(1);
    const fired: Fired = [];
    await timers.fire('event', 0, 300, (key, ts) => {
      fired.push([key, ts]);
      if (key === 'a') {
        timers.delete('event', 0, 'c', 200);
        timers.register('event', 0, 'e', 150);
      }
    });
    assert.deepEqual(fired, [['a', 100], ['b', 120], ['e', 150], ['d', 250]]);
    assert.equal(await timers.earliest('event', 0), Number.POSITIVE_INFINITY);
    // Many committed timers fired in one call, then more registered: each fires once, in order.
    for (let i = 0; i < 5000; i++) timers.register('event', 1, `k${i}`, 1000 + i);
    b!.freeze(2);
    await b!.commit(2);
    let n = 0;
    let last = -1;
    await timers.fire('event', 1, 3499, (_key, ts) => {
      assert.ok(ts >= last);
      last = ts;
      n++;
    });
    assert.equal(n, 2500);
    assert.equal(await timers.earliest('event', 1), 3500);
    assert.equal(await timers.fire('event', 1, 10_000, () => undefined), 2500);
  }));

test('timers - due timers exactly filling a page, one more than a page, and many at one millisecond over committed and overlay entries each fire once, in order; the next one is learned', () =>
  withBackends(1, async ([b]) => {
    const timers = new TimerService(b!, S);
    // Key group g holds `due` timers at or before 1000 and one at 5000: firing up to 1000 must fire
    // exactly `due` and learn 5000, whatever page the boundary falls on (pages of 16, 64, 256, 512).
    const counts = [1, 15, 16, 17, 80, 81, 336, 337, 900];
    counts.forEach((due, g) => {
      for (let i = 0; i < due; i++) timers.register('event', g, `k${String(i).padStart(4, '0')}`, 1 + (i % 7) * 100);
      timers.register('event', g, 'later', 5000);
    });
    // Half of each group committed (RocksDB), half in the overlay.
    b!.freeze(1);
    await b!.commit(1);
    counts.forEach((due, g) => {
      for (let i = due; i < 2 * due; i++) timers.register('event', g, `k${String(i).padStart(4, '0')}`, 1000);
    });
    for (const [g, due] of counts.entries()) {
      const fired: Fired = [];
      const n = await timers.fire('event', g, 1000, (key, ts) => void fired.push([key, ts]));
      assert.equal(n, 2 * due, `group ${g}: ${2 * due} due timers fire`);
      assert.equal(new Set(fired.map(([k, t]) => `${t}|${k}`)).size, 2 * due, `group ${g}: each once`);
      const order = fired.map(([k, t]) => `${String(t).padStart(5, '0')}|${k}`);
      assert.deepEqual(order, [...order].sort(), `group ${g}: in (time, key) order`);
      assert.equal(await timers.earliest('event', g), 5000, `group ${g}: the next timer is learned`);
      assert.equal(await timers.fire('event', g, 4999, () => assert.fail('nothing more is due')), 0);
    }
    // Callbacks that register due timers and delete pending ones while pages are being read.
    const g = counts.length;
    for (let i = 0; i < 600; i++) timers.register('event', g, `a${String(i).padStart(4, '0')}`, 700);
    b!.freeze(2);
    await b!.commit(2);
    const fired: string[] = [];
    await timers.fire('event', g, 700, (key) => {
      fired.push(key);
      if (key === 'a0003') timers.delete('event', g, 'a0500', 700);
      if (key === 'a0010') timers.register('event', g, 'a0000x', 700);
      if (key === 'a0599') timers.register('event', g, 'z', 650);
    });
    const expected = [...Array.from({ length: 600 }, (_, i) => `a${String(i).padStart(4, '0')}`).filter((k) => k !== 'a0500'), 'a0000x', 'z'];
    assert.deepEqual([...fired].sort(), [...expected].sort(), 'every live due timer once, the deleted one never');
    assert.ok(fired.indexOf('a0000x') > fired.indexOf('a0010'), 'a timer registered by a callback fires after it');
    assert.equal(await timers.earliest('event', g), Number.POSITIVE_INFINITY);
  }));

test('timers - they are checkpointed with the key group and fire after a restore elsewhere; a rollback brings back fired ones', () =>
  withBackends(2, async ([source, target]) => {
    const timers = new TimerService(source!, S);
    for (let i = 0; i < 100; i++) timers.register('event', 7, `k${i}`, 1000 + i * 10);
    // Checkpoint 1 through the checkpoint file codec into another backend, then commit.
    source!.freeze(1);
    for (const { stage, groups } of source!.frozenDelta(1)) {
      const decoded = decodeCheckpointObject(encodeCheckpointObject(stage, groups), `jobs/j/state/${stage}/w-1.delta`);
      for (const group of decoded.groups) await target!.importKeyGroup(stage, group);
    }
    await source!.commit(1);
    const firedBefore = await timers.fire('event', 7, 1495, () => undefined);
    assert.equal(firedBefore, 50);
    source!.rollback();
    // A fresh service, as after a recovery: it learns the earliest time from the store.
    for (const b of [source!, target!]) {
      const restored = new TimerService(b, S);
      assert.equal(await restored.earliest('event', 7), 1000);
      const fired: Fired = [];
      await restored.fire('event', 7, 1095, (key, ts) => void fired.push([key, ts]));
      assert.deepEqual(fired, Array.from({ length: 10 }, (_, i) => [`k${i}`, 1000 + i * 10]));
    }
  }));

test('timers - 2 million registered timers keep the heap bounded when the overlay bound asks for checkpoints', { timeout: 180_000 }, () =>
  withBackends(1, async ([b]) => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heap = (): number => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    // What the worker does with maxOverlayBytes (worker/job-runtime.ts): past the bound it asks
    // for a checkpoint; here the checkpoint completes at once (freeze, then commit to RocksDB).
    const MAX_OVERLAY_BYTES = 16 * 1024 * 1024;
    const HEAP_BOUND_BYTES = 96 * 1024 * 1024;
    const TIMERS = 2_000_000;
    const KEY_GROUPS = 128;
    const timers = new TimerService(b!, S);
    // Deterministic times, spread over a day, with an independent record of group 5's timers.
    const timeOf = (i: number): number => 1_700_000_000_000 + ((i * 7919) % 86_400_000);
    const expectedGroup5: Fired = [];
    const base = heap();
    const registerStarted = performance.now();
    let peak = 0;
    let checkpoint = 0;
    for (let i = 0; i < TIMERS; i++) {
      const keyGroup = i % KEY_GROUPS;
      const key = `user-${i}`;
      timers.register('event', keyGroup, key, timeOf(i));
      if (keyGroup === 5) expectedGroup5.push([key, timeOf(i)]);
      if (i % 50_000 === 49_999) {
        if (b!.activeOverlayBytes() > MAX_OVERLAY_BYTES) {
          b!.freeze(++checkpoint);
          await b!.commit(checkpoint);
        }
        peak = Math.max(peak, heap() - base);
      }
    }
    b!.freeze(++checkpoint);
    await b!.commit(checkpoint);
    const after = heap() - base;
    // The record of group 5 is ~15,600 entries of test bookkeeping, small next to the bound.
    process.stderr.write(`2M timers: heap growth peak ${(peak / 1048576).toFixed(1)} MiB, after the last checkpoint ${(after / 1048576).toFixed(1)} MiB, ${checkpoint} checkpoints, RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB\n`);
    assert.ok(peak < HEAP_BOUND_BYTES, `heap grew by ${peak} bytes; bound ${HEAP_BOUND_BYTES}`);
    assert.ok(checkpoint >= 5, 'the overlay bound asked for checkpoints');
    // They are all there: group 5's due timers fire in order, as computed independently.
    expectedGroup5.sort(([ka, ta], [kb, tb]) => ta - tb || (ka < kb ? -1 : ka > kb ? 1 : 0));
    const watermark = 1_700_000_000_000 + 43_200_000;
    const due = expectedGroup5.filter(([, ts]) => ts <= watermark);
    const fired: Fired = [];
    const fireStarted = performance.now();
    await timers.fire('event', 5, watermark, (key, ts) => void fired.push([key, ts]));
    process.stderr.write(`2M timers: registered and checkpointed in ${Math.round(fireStarted - registerStarted)} ms; ${fired.length} fired in ${Math.round(performance.now() - fireStarted)} ms\n`);
    assert.equal(fired.length, due.length);
    assert.deepEqual(fired, due);
    assert.equal(await timers.earliest('event', 5), expectedGroup5[due.length]![1]);
  }));

test('timers - processing-time timers fire from the clock through onTimer, with the key and its state', () =>
  withBackends(1, async ([b]) => {
    let now = 5_000;
    const fired: Array<[string, number, string | undefined]> = [];
    const time = new KeyedTime({
      stage: S,
      backend: b!,
      declared: new Map([['note', 'value']]),
      states: [{ name: 'note', kind: 'value' }],
      upstreamSenders: ['up'],
      keyGroups: [3],
      onTimer: async (ts, ctx) => {
        fired.push([ctx.key, ts, (await ctx.state(valueState<string>('note')).value())]);
      },
      runUser: async (_kg, run) => run(),
      emit: () => undefined,
      emitSide: () => undefined,
      forwardWatermark: () => undefined,
      clock: () => now,
      tickIntervalMs: 5,
    });
    const ctx = new KeyedContext(S, b!, new Map([['note', 'value']]), 'k1', 3, () => undefined, time.services(3));
    ctx.state(valueState<string>('note')).update('hello');
    ctx.timers.registerProcessingTime(6_000);
    ctx.timers.registerEventTime(6_000);
    // The task's queue, reduced to what matters here: each tick runs in turn.
    let ticks = Promise.resolve();
    time.start((kg) => (ticks = ticks.then(() => time.onTick(kg))));
    try {
      await waitFor(async () => (await ticks, true), { timeoutMs: 5_000, what: 'a tick' });
      assert.deepEqual(fired, [], 'not due yet');
      now = 6_000;
      await waitFor(() => fired.length === 1, { timeoutMs: 5_000, what: 'the processing-time timer' });
      assert.deepEqual(fired, [['k1', 6_000, 'hello']]);
      assert.deepEqual(await time.timers.list('event', 3), [{ timestampMs: 6_000, key: 'k1' }], 'the event-time timer waits for a watermark');
      await time.onWatermark(3, 'up', 6_000, false);
      assert.equal(fired.length, 2);
    } finally {
      time.stop();
      await ticks;
    }
  }));

test('timers - the head of a key group is read once and kept exact: consecutive firings read no page, and random registrations, deletions, undone records, callbacks and checkpoints fire exactly what a model says', { timeout: 120_000 }, () =>
  withBackends(1, async ([b]) => {
    // Consecutive watermark steps over the same key group: one page read, then the head serves.
    const steps = new TimerService(b!, S);
    for (let i = 0; i < 100; i++) steps.register('event', 9, `auction-${i}`, 1_000 + i * 10);
    let fired = 0;
    for (let upTo = 1_000; upTo <= 2_000; upTo += 50) fired += await steps.fire('event', 9, upTo, (key, ts) => steps.register('event', 9, key, ts + 5_000));
    assert.equal(fired, 100);
    assert.equal(steps.pageReads, 1, 'one page read for 21 firings of one key group');

    // A timer registered while a page is being read may be missing from it: that page is not kept.
    const racing = new TimerService(b!, S);
    racing.register('event', 11, 'first', 100);
    b!.freeze(1);
    await b!.commit(1);
    assert.equal(await racing.earliest('event', 11), 100);
    const racingFired: Fired = [];
    const firing = racing.fire('event', 11, 100, (key, ts) => void racingFired.push([key, ts]));
    racing.register('event', 11, 'during', 150);
    assert.equal(await firing, 1);
    assert.equal(await racing.fire('event', 11, 200, (key, ts) => void racingFired.push([key, ts])), 1);
    assert.deepEqual(racingFired, [['first', 100], ['during', 150]]);

    // A model: the live timers of each key group as sorted map keys; firing takes the smallest due.
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed % n;
    };
    const model = new Map<number, Set<string>>();
    const setOf = (kg: number): Set<string> => model.get(kg) ?? model.set(kg, new Set()).get(kg)!;
    const timers = new TimerService(b!, S);
    // Direct writes go to both; an undone record's only to the service (they are taken back).
    const register = (kg: number, key: string, ts: number, undo?: StateUndoLog): void => {
      timers.register('event', kg, key, ts, undo);
      if (undo === undefined) setOf(kg).add(timerMapKey(ts, key));
    };
    const remove = (kg: number, key: string, ts: number, undo?: StateUndoLog): void => {
      timers.delete('event', kg, key, ts, undo);
      if (undo === undefined) setOf(kg).delete(timerMapKey(ts, key));
    };
    // A callback that sometimes registers (due now, in the past, or later) and deletes: the same
    // draws, applied to the model when it fires and to the service when it does.
    const callback = (kg: number, key: string, ts: number, toModel: boolean): void => {
      const r = rand(10);
      const write = (k: string, t: number, add: boolean): void => {
        if (toModel) {
          if (add) setOf(kg).add(timerMapKey(t, k));
          else setOf(kg).delete(timerMapKey(t, k));
        } else if (add) timers.register('event', kg, k, t);
        else timers.delete('event', kg, k, t);
      };
      if (r === 0) write(`${key}+`, ts + rand(300), true);
      if (r === 1) write(`${key}-`, Math.max(0, ts - 1), true);
      if (r === 2) write(`k${rand(40)}`, ts + rand(200), false);
    };
    const modelFire = (kg: number, upTo: number): string[] => {
      const out: string[] = [];
      for (;;) {
        const due = [...setOf(kg)].filter((k) => parseInt(k.slice(0, 14), 16) <= upTo).sort()[0];
        if (due === undefined) return out;
        setOf(kg).delete(due);
        out.push(due);
        callback(kg, due.slice(14), parseInt(due.slice(0, 14), 16), true);
      }
    };
    let checkpoint = 1; // the racing case above took checkpoint 1
    const watermarks = [0, 0, 0];
    for (let op = 0; op < 4_000; op++) {
      const kg = rand(3);
      const r = rand(100);
      if (r < 40) register(kg, `k${rand(40)}`, watermarks[kg]! + rand(400));
      else if (r < 50) remove(kg, `k${rand(40)}`, watermarks[kg]! + rand(400));
      else if (r < 53) {
        // Many at once: pages, full heads and their caps.
        const base = watermarks[kg]! + rand(300);
        for (let i = 0; i < 700 + rand(1_500); i++) register(kg, `bulk-${op}-${i}`, base + rand(600));
      } else if (r < 60) {
        // A record that fails: its timer writes are taken back.
        const undo = new StateUndoLog();
        for (let i = 0; i < 3; i++) register(kg, `undone-${op}-${i}`, watermarks[kg]! + rand(100), undo);
        remove(kg, `k${rand(40)}`, watermarks[kg]! + rand(400), undo);
        b!.undo(undo);
      } else if (r < 64) {
        b!.freeze(++checkpoint);
        await b!.commit(checkpoint);
      } else {
        const upTo = (watermarks[kg] = watermarks[kg]! + rand(120));
        // The model fires first; the service then replays the same random draws in its callbacks.
        const before = seed;
        const expected = modelFire(kg, upTo);
        const after = seed;
        seed = before;
        const got: string[] = [];
        await timers.fire('event', kg, upTo, (key, ts) => {
          got.push(timerMapKey(ts, key));
          callback(kg, key, ts, false);
        });
        assert.equal(seed, after, `op ${op}: the callbacks drew the same`);
        assert.deepEqual(got, expected, `op ${op}: key group ${kg} up to ${upTo}`);
      }
    }
    for (const kg of [0, 1, 2]) assert.deepEqual((await timers.list('event', kg)).map((t) => timerMapKey(t.timestampMs, t.key)), [...setOf(kg)].sort(), `key group ${kg}: what remains`);
    assert.ok(timers.pageReads > 0);
  }));
