// Windows (sdk/windows.ts, sdk/window-operator.ts): assignment and session merging as pure
// functions, then the operator over a real RocksDB with its timers and watermarks driven by
// hand (worker/task/keyed-time.ts), against expectations written out by hand from the definitions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCheckpointObject, encodeCheckpointObject } from '../../core/checkpoint-format.ts';
import { assignWindows, job, jetstream, mergeSession, sessionWindows, slidingWindows, tumblingWindows, type KeyedStream } from '../../sdk/index.ts';
import type { StagePlan } from '../../sdk/plan.ts';
import { KeyedContext } from '../../worker/task/keyed-context.ts';
import { KeyedTime, type OnTimerFn } from '../../worker/task/keyed-time.ts';
import { StateBackend } from '../../worker/state/state-backend.ts';
import { withBackends } from '../kit/state-backends.ts';

test('windows - tumbling and sliding assignment, with offsets and around the epoch', () => {
  assert.deepEqual(assignWindows(tumblingWindows(10), 0), [{ start: 0, end: 10 }]);
  assert.deepEqual(assignWindows(tumblingWindows(10), 19), [{ start: 10, end: 20 }]);
  assert.deepEqual(assignWindows(tumblingWindows(10, { offsetMs: 3 }), 2), [{ start: -7, end: 3 }]);
  assert.deepEqual(assignWindows(tumblingWindows(10, { offsetMs: 3 }), 3), [{ start: 3, end: 13 }]);
  assert.deepEqual(assignWindows(slidingWindows(10, 5), 12), [{ start: 5, end: 15 }, { start: 10, end: 20 }]);
  assert.deepEqual(assignWindows(slidingWindows(10, 5), 3), [{ start: -5, end: 5 }, { start: 0, end: 10 }]);
  assert.deepEqual(assignWindows(slidingWindows(9, 3), 9), [{ start: 3, end: 12 }, { start: 6, end: 15 }, { start: 9, end: 18 }]);
  assert.throws(() => slidingWindows(5, 10), /larger than sizeMs/);
  assert.throws(() => tumblingWindows(0), /positive integer/);
});

test('windows - sessions merge within the gap and never grow past their maximum length', () => {
  const gap = sessionWindows(30, { maxLengthMs: 100 });
  if (gap.kind !== 'session') throw new Error('unreachable');
  assert.deepEqual(mergeSession(gap, [], 10), { merged: [], result: { start: 10, end: 40 } });
  assert.deepEqual(mergeSession(gap, [{ start: 10, end: 40 }], 35), { merged: [{ start: 10, end: 40 }], result: { start: 10, end: 65 } });
  assert.deepEqual(mergeSession(gap, [{ start: 10, end: 40 }], 41), { merged: [], result: { start: 41, end: 71 } }, 'past the gap: a new session');
  // A record between two sessions bridges them.
  assert.deepEqual(mergeSession(gap, [{ start: 0, end: 30 }, { start: 50, end: 80 }], 25), { merged: [{ start: 0, end: 30 }, { start: 50, end: 80 }], result: { start: 0, end: 80 } });
  // The cap: a session starting at 0 ends by 100 at the latest, and 100 starts the next one.
  assert.deepEqual(mergeSession(gap, [{ start: 0, end: 95 }], 90), { merged: [{ start: 0, end: 95 }], result: { start: 0, end: 100 } });
  assert.deepEqual(mergeSession(gap, [{ start: 0, end: 100 }], 100), { merged: [], result: { start: 100, end: 130 } });
  // A late record just before the capped session joins it, and leaves the next session alone.
  assert.deepEqual(mergeSession(gap, [{ start: 0, end: 100 }, { start: 100, end: 130 }], 99), { merged: [{ start: 0, end: 100 }], result: { start: 0, end: 100 } });
});

// ---------------------------------------------------------------------------------------------
// The operator, driven by hand: records for one key group, watermarks from one channel.

const S = 'win';
interface Ev { user: string; ts: number; v: number }

/** The window stage of a one-stage job built with the SDK, as the worker gets it from plan(). */
function windowStage(build: (keyed: KeyedStream<Ev>) => { sideSink(tag: string, spec: never): unknown } | unknown): StagePlan {
  const j = job('w');
  const keyed = j.source<Ev>('in', { timestamp: (e) => e.ts }).keyBy((e) => e.user);
  const out = build(keyed) as { sink(spec: unknown): unknown };
  out.sink(jetstream('out', { stream: 'OUT' }));
  return j.plan().stages[1]!;
}

class Harness {
  readonly outputs: unknown[] = [];
  readonly late: unknown[] = [];
  readonly #time: KeyedTime;
  readonly #backend: StateBackend;
  readonly #plan: StagePlan;
  readonly #declared: Map<string, 'value' | 'map' | 'list' | 'reducing' | 'aggregating'>;

  constructor(backend: StateBackend, plan: StagePlan) {
    this.#backend = backend;
    this.#plan = plan;
    this.#declared = new Map(plan.spec.states.map((s) => [s.name, s.kind]));
    const op = plan.operators[0]!;
    this.#time = new KeyedTime({
      stage: S,
      backend,
      declared: this.#declared,
      states: plan.spec.states,
      upstreamSenders: ['src'],
      keyGroups: [0],
      onTimer: op.onTimer as unknown as OnTimerFn,
      runUser: async (_kg, run) => run(),
      emit: (_kg, value) => void this.outputs.push(value),
      emitSide: (tag, value) => void this.late.push([tag, value]),
      forwardWatermark: () => undefined,
    });
  }

  async record(e: Ev): Promise<void> {
    const ctx = new KeyedContext(S, this.#backend, this.#declared, e.user, 0, (value) => void this.outputs.push(value), this.#time.services(0));
    ctx.timestamp = e.ts;
    await (this.#plan.operators[0]!.fn as unknown as (v: unknown, c: KeyedContext) => Promise<void>)(e, ctx);
  }

  async watermark(ms: number): Promise<void> {
    await this.#time.onWatermark(0, 'src', ms, false);
  }

  /** Outputs so far, then forgets them. */
  take(): unknown[] {
    return this.outputs.splice(0);
  }
}


const sum = (a: Ev, b: Ev): Ev => ({ user: a.user, ts: Math.max(a.ts, b.ts), v: a.v + b.v });

test('windows - tumbling reduce fires on the watermark, out-of-order records count, late ones go to the side output', () =>
  withBackends(1, async ([b]) => {
    const h = new Harness(b!, windowStage((k) => k.window(tumblingWindows(10_000), { lateSink: jetstream('late', { stream: 'LATE' }) }).reduce('sum', sum, (e, w, key) => ({ key, start: w.start, v: e.v }))));
    await h.record({ user: 'a', ts: 1000, v: 1 });
    await h.record({ user: 'a', ts: 12_000, v: 4 });
    await h.record({ user: 'b', ts: 9999, v: 10 });
    await h.record({ user: 'a', ts: 5000, v: 2 }); // out of order, not late: the watermark is still -Infinity
    await h.watermark(9998);
    assert.deepEqual(h.take(), [], 'the window [0, 10000) ends at 9999');
    await h.watermark(9999);
    assert.deepEqual(h.take(), [{ key: 'a', start: 0, v: 3 }, { key: 'b', start: 0, v: 10 }]);
    await h.record({ user: 'a', ts: 3000, v: 100 }); // its window fired: late
    await h.record({ user: 'a', ts: 15_000, v: 8 });
    await h.watermark(40_000);
    assert.deepEqual(h.take(), [{ key: 'a', start: 10_000, v: 12 }]);
    assert.deepEqual(h.late, [['late', { user: 'a', ts: 3000, v: 100 }]]);
    await h.watermark(80_000);
    assert.deepEqual(h.take(), [], 'each window fires once');
    const left = await b!.mapEntries(S, 0, '\u0002window', 'a');
    assert.deepEqual(left, [], 'fired windows leave no state');
  }));

test('windows - sliding aggregate: a record counts in every window it belongs to', () =>
  withBackends(1, async ([b]) => {
    const avg = { createAccumulator: () => ({ n: 0, s: 0 }), add: (e: Ev, acc: { n: number; s: number }) => ({ n: acc.n + 1, s: acc.s + e.v }), getResult: (acc: { n: number; s: number }) => acc.s / acc.n };
    const h = new Harness(b!, windowStage((k) => k.window(slidingWindows(10_000, 5000)).aggregate('avg', avg)));
    for (const [ts, v] of [[1000, 2], [6000, 4], [11_000, 6], [4000, 8]] as const) await h.record({ user: 'u', ts, v });
    await h.watermark(30_000);
    // Windows: [-5000,5000): 2, 8 → 5; [0,10000): 2, 4, 8 → 14/3; [5000,15000): 4, 6 → 5; [10000,20000): 6.
    assert.deepEqual(h.take(), [
      { key: 'u', start: -5000, end: 5000, value: 5 },
      { key: 'u', start: 0, end: 10_000, value: 14 / 3 },
      { key: 'u', start: 5000, end: 15_000, value: 5 },
      { key: 'u', start: 10_000, end: 20_000, value: 6 },
    ]);
  }));

test('windows - a record reads the contents of all its sliding windows in one RocksDB read batch', () =>
  withBackends(1, async ([b]) => {
    const count = { createAccumulator: () => 0, add: (_e: Ev, n: number) => n + 1, getResult: (n: number) => n };
    const h = new Harness(b!, windowStage((k) => k.window(slidingWindows(10_000, 2000)).aggregate('count', count)));
    // A key never seen: none of its five windows is in memory, so each is a RocksDB read (the key
    // filter, which would answer them without RocksDB, is off here).
    const before = b!.storeStats.readBatches;
    await h.record({ user: 'new', ts: 9000, v: 1 });
    assert.equal(b!.storeStats.readBatches - before, 1, 'the five windows of the record were read in one batch');
    await h.record({ user: 'new', ts: 9500, v: 1 });
    assert.equal(b!.storeStats.readBatches - before, 1, 'the same windows again: in memory, no read');
    await h.watermark(30_000);
    assert.deepEqual(h.take().map((r) => (r as { start: number; value: number }).start), [0, 2000, 4000, 6000, 8000]);
  }, { keyFilterKeys: 0 }));

test('windows - session process windows merge per user and close at their maximum length', () =>
  withBackends(1, async ([b]) => {
    const h = new Harness(b!, windowStage((k) => k.window(sessionWindows(3000, { maxLengthMs: 10_000 })).process('sessions', (records: Ev[], w, key) => [{ key, start: w.start, end: w.end, n: records.length, ts: records.map((r) => r.ts) }])));
    // Person: two bursts, the second out of order; bot: a record every second for 26 s.
    for (const ts of [0, 1000, 2000, 9000, 8000, 10_500]) await h.record({ user: 'person', ts, v: 1 });
    for (let ts = 0; ts <= 25_000; ts += 1000) await h.record({ user: 'bot', ts, v: 1 });
    await h.watermark(100_000);
    const out = h.take() as Array<{ key: string; start: number; end: number; n: number; ts: number[] }>;
    const byKey = (key: string) => out.filter((o) => o.key === key).map(({ start, end, n }) => ({ start, end, n }));
    assert.deepEqual(byKey('person'), [{ start: 0, end: 5000, n: 3 }, { start: 8000, end: 13_500, n: 3 }]);
    assert.deepEqual(byKey('bot'), [{ start: 0, end: 10_000, n: 10 }, { start: 10_000, end: 20_000, n: 10 }, { start: 20_000, end: 28_000, n: 6 }]);
    assert.deepEqual(out.find((o) => o.key === 'person' && o.start === 8000)!.ts, [9000, 8000, 10_500], 'records in arrival order');
  }));

test('windows - allowed lateness fires a window again per late record, then cleans it up', () =>
  withBackends(1, async ([b]) => {
    const h = new Harness(b!, windowStage((k) => k.window(tumblingWindows(10_000), { allowedLatenessMs: 5000, lateSink: jetstream('late', { stream: 'LATE' }) }).reduce('sum', sum, (e, w) => ({ start: w.start, v: e.v }))));
    await h.record({ user: 'a', ts: 1000, v: 1 });
    await h.watermark(9999);
    assert.deepEqual(h.take(), [{ start: 0, v: 1 }]);
    await h.record({ user: 'a', ts: 2000, v: 2 }); // late but allowed: fires again with everything
    assert.deepEqual(h.take(), [{ start: 0, v: 3 }]);
    await h.watermark(14_998);
    await h.record({ user: 'a', ts: 3000, v: 4 }); // still allowed
    assert.deepEqual(h.take(), [{ start: 0, v: 7 }]);
    await h.watermark(14_999); // clean-up time: end - 1 + lateness
    assert.deepEqual(h.take(), [], 'clean-up emits nothing');
    await h.record({ user: 'a', ts: 4000, v: 8 });
    assert.deepEqual(h.late, [['late', { user: 'a', ts: 4000, v: 8 }]]);
    assert.deepEqual(await b!.mapEntries(S, 0, '\u0002window', 'a'), []);
  }));

test('windows - windows and their timers survive a checkpoint into another backend and fire there', () =>
  withBackends(3, async ([first, restored, straight]) => {
    const plan = windowStage((k) => k.window(sessionWindows(5000)).reduce('sum', sum, (e, w, key) => ({ key, start: w.start, end: w.end, v: e.v })));
    const before: Ev[] = [{ user: 'x', ts: 100, v: 1 }, { user: 'y', ts: 200, v: 2 }, { user: 'x', ts: 3000, v: 3 }];
    const after: Ev[] = [{ user: 'x', ts: 7000, v: 4 }, { user: 'y', ts: 9000, v: 5 }];
    // Uninterrupted run, for the expectation.
    const reference = new Harness(straight!, plan);
    for (const e of [...before, ...after]) await reference.record(e);
    await reference.watermark(50_000);
    const expected = reference.take();
    assert.deepEqual(expected, [{ key: 'y', start: 200, end: 5200, v: 2 }, { key: 'x', start: 100, end: 12_000, v: 8 }, { key: 'y', start: 9000, end: 14_000, v: 5 }]);
    // Checkpoint 1 after `before`, shipped through the checkpoint file format to another backend.
    const h1 = new Harness(first!, plan);
    for (const e of before) await h1.record(e);
    first!.freeze(1);
    for (const { stage, groups } of first!.frozenDelta(1)) {
      for (const g of decodeCheckpointObject(encodeCheckpointObject(stage, groups), 'x.delta').groups) await restored!.importKeyGroup(stage, g);
    }
    const h2 = new Harness(restored!, plan);
    for (const e of after) await h2.record(e);
    await h2.watermark(50_000);
    assert.deepEqual(h2.take(), expected);
  }));
