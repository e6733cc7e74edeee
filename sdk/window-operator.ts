// The window operator, written as a keyed process function over keyed state and event-time
// timers: windows and their timers live in the state store and are checkpointed like any state
// (docs/ARCHITECTURE.md, "State"). sdk/windowed-stream.ts turns KeyedStream.window(...) into a process stage
// running this.
//
// State per key: tumbling and sliding windows, one map, WINDOW_STATE, from window id to the
// window's contents (the reduced value, the aggregate's accumulator, or the list of records for a
// process function). A window id is hex14(end + BIAS) + hex14(start + BIAS): ordered by end, so
// the windows a timer at end - 1 closes are one range read. Session windows, one value,
// SESSION_STATE: the key's open sessions with their contents. Every record of a session reads
// all of the key's sessions (to merge), and a map read that way is a RocksDB iterator per record
// (measured: iterator open/close was ~20 % of the sessionizer's CPU); one value is one point read
// that the read cache usually answers. Timers per window: end - 1 (fire) and, with allowed
// lateness, end - 1 + allowedLatenessMs (clean-up); with no lateness one timer does both.
//
// Semantics follow Flink's event-time trigger: a window fires when the watermark reaches its
// last instant; a record for a window past that but within allowed lateness fires the window
// again (an updated result); a record whose every window is past its lateness is late: it goes
// to the late side output when there is one, and is dropped otherwise.
import type { OnTimerFunction, ProcessContext, ProcessFunction } from './context.ts';
import type { AggregateFunction, MapState, MapStateDescriptor, ValueState, ValueStateDescriptor } from './state.ts';
import { assignWindows, mergeSession, type TimeWindow, type WindowAssigner } from './windows.ts';

/** The reserved state name of window contents (control characters are reserved, sdk/state.ts). */
export const WINDOW_STATE = '\u0002window';
/** The reserved state name of a key's open session windows. */
export const SESSION_STATE = '\u0002sessions';

/** An open session: its bounds and contents. */
type Session = [start: number, end: number, contents: unknown];
/** The side-output tag of late records. */
export const LATE_TAG = 'late';

/** What reduce and aggregate windows emit unless given a result function. */
export interface WindowResult<V> {
  key: string;
  start: number;
  end: number;
  value: V;
}

export type WindowFunction<T, O> =
  | { kind: 'reduce'; reduce: (a: T, b: T) => T; result: (value: T, window: TimeWindow, key: string) => O }
  | { kind: 'aggregate'; aggregate: AggregateFunction<T, unknown, unknown>; result: (value: unknown, window: TimeWindow, key: string) => O }
  | { kind: 'process'; process: (records: T[], window: TimeWindow, key: string) => O[] | Promise<O[]> };

export interface WindowOperatorOptions {
  allowedLatenessMs: number;
  /** Late records go to the LATE_TAG side output. */
  lateOutput: boolean;
}

// Window bounds may be negative (a sliding window around the epoch): biased to sort as unsigned.
const BIAS = 2 ** 50;
const DIGITS = 14;

// A record of a sliding window names sizeMs / slideMs window ids, and consecutive records mostly
// the same ones: the hex of a bound is remembered (cleared when it grows past HEX_CACHE_SIZE).
const HEX_CACHE_SIZE = 4096;
const hexCache = new Map<number, string>();

function hex(n: number): string {
  let h = hexCache.get(n);
  if (h === undefined) {
    if (hexCache.size >= HEX_CACHE_SIZE) hexCache.clear();
    h = (n + BIAS).toString(16).padStart(DIGITS, '0');
    hexCache.set(n, h);
  }
  return h;
}

export function windowId(w: TimeWindow): string {
  return hex(w.end) + hex(w.start);
}

export function windowOperator<T, O>(
  assigner: WindowAssigner,
  fn: WindowFunction<T, O>,
  options: WindowOperatorOptions,
): { state: MapStateDescriptor<unknown> | ValueStateDescriptor<Session[]>; process: ProcessFunction<T, O>; onTimer: OnTimerFunction<O> } {
  const state: MapStateDescriptor<unknown> = { kind: 'map', name: WINDOW_STATE };
  const sessionState: ValueStateDescriptor<Session[]> = { kind: 'value', name: SESSION_STATE };
  const lateness = options.allowedLatenessMs;
  if (assigner.kind === 'session' && fn.kind === 'aggregate' && typeof fn.aggregate.merge !== 'function') {
    throw new TypeError('session windows merge: the aggregate function needs merge(a, b)');
  }

  const add = (acc: unknown, value: T): unknown => {
    switch (fn.kind) {
      case 'reduce':
        return acc === undefined ? value : fn.reduce(acc as T, value);
      case 'aggregate':
        return fn.aggregate.add(value, acc === undefined ? fn.aggregate.createAccumulator() : acc);
      case 'process':
        return acc === undefined ? [value] : [...(acc as T[]), value];
    }
  };
  // Merges the contents of an older session (a) with a newer one (b).
  const merge = (a: unknown, b: unknown): unknown => {
    switch (fn.kind) {
      case 'reduce':
        return fn.reduce(a as T, b as T);
      case 'aggregate':
        return fn.aggregate.merge!(a, b);
      case 'process':
        return [...(a as T[]), ...(b as T[])];
    }
  };
  const fire = async (w: TimeWindow, acc: unknown, ctx: ProcessContext<O>): Promise<void> => {
    switch (fn.kind) {
      case 'reduce':
        ctx.emit(fn.result(acc as T, w, ctx.key));
        return;
      case 'aggregate':
        ctx.emit(fn.result(fn.aggregate.getResult(acc), w, ctx.key));
        return;
      case 'process':
        for (const out of await fn.process(acc as T[], w, ctx.key)) ctx.emit(out);
    }
  };
  // A window the watermark already passed fires at once instead (a timer would fire it twice).
  const registerTimers = (w: TimeWindow, ctx: ProcessContext<O>): void => {
    if (w.end - 1 > ctx.timers.currentWatermark()) ctx.timers.registerEventTime(w.end - 1);
    if (lateness > 0) ctx.timers.registerEventTime(w.end - 1 + lateness);
  };
  const deleteTimers = (w: TimeWindow, ctx: ProcessContext<O>): void => {
    ctx.timers.deleteEventTime(w.end - 1);
    if (lateness > 0) ctx.timers.deleteEventTime(w.end - 1 + lateness);
  };
  const late = (value: T, ctx: ProcessContext<O>): void => {
    if (options.lateOutput) ctx.output(LATE_TAG, value);
  };
  const isLate = (w: TimeWindow, watermark: number): boolean => w.end - 1 + lateness <= watermark;

  const process: ProcessFunction<T, O> = async (value, ctx) => {
    const ts = ctx.timestamp;
    if (ts === undefined) throw new TypeError('a window stage needs event time: give the source a timestamp assigner');
    const watermark = ctx.timers.currentWatermark();
    if (assigner.kind === 'session') {
      const open = ctx.state(sessionState) as ValueState<Session[]>;
      const stored = (await open.value()) ?? [];
      const windows = stored.map(([start, end]) => ({ start, end }));
      const { merged, result } = mergeSession(assigner, windows, ts);
      if (isLate(result, watermark)) return late(value, ctx);
      const absorbed = new Set(merged);
      const kept: Session[] = [];
      let acc: unknown;
      // Merged in start order, as the contents of an older session come first.
      const order = windows.map((w, i) => i).sort((a, b) => windows[a]!.start - windows[b]!.start);
      for (const i of order) {
        const w = windows[i]!;
        if (!absorbed.has(w)) {
          kept.push(stored[i]!);
          continue;
        }
        const old = stored[i]![2];
        acc = acc === undefined ? old : old === undefined ? acc : merge(acc, old);
        deleteTimers(w, ctx);
      }
      acc = add(acc, value);
      kept.push([result.start, result.end, acc]);
      open.update(kept);
      registerTimers(result, ctx);
      if (result.end - 1 <= watermark) await fire(result, acc, ctx);
      return;
    }
    const contents = ctx.state(state) as MapState<unknown>;
    // Every window's contents are asked for before any is awaited: the ones not in memory share
    // one RocksDB read batch (a sliding window's first record of a key misses in each of its
    // sizeMs / slideMs windows; read one after another, they were a read batch each).
    const windows = assignWindows(assigner, ts).filter((w) => !isLate(w, watermark));
    if (windows.length === 0) return late(value, ctx);
    const ids = windows.map(windowId);
    const befores = await Promise.all(ids.map((id) => contents.get(id)));
    for (let i = 0; i < windows.length; i++) {
      const w = windows[i]!;
      const id = ids[i]!;
      const before = befores[i];
      const acc = add(before, value);
      contents.put(id, acc);
      // A window's timers are registered with its first record: a window that has contents has
      // them (they are state, checkpointed and restored with the contents).
      if (before === undefined) registerTimers(w, ctx);
      if (w.end - 1 <= watermark) await fire(w, acc, ctx);
    }
  };

  const onTimer: OnTimerFunction<O> = async (timestampMs, ctx) => {
    if (ctx.timeDomain !== 'event') return;
    const end = timestampMs + 1;
    if (assigner.kind === 'session') {
      const open = ctx.state(sessionState) as ValueState<Session[]>;
      const stored = (await open.value()) ?? [];
      const cleanupEnd = end - lateness;
      let changed = false;
      const kept: Session[] = [];
      for (const session of stored) {
        const [start, sessionEnd, acc] = session;
        if (sessionEnd === end) await fire({ start, end: sessionEnd }, acc, ctx);
        if ((lateness === 0 && sessionEnd === end) || (lateness > 0 && sessionEnd === cleanupEnd)) changed = true;
        else kept.push(session);
      }
      if (changed) {
        if (kept.length === 0) open.clear();
        else open.update(kept);
      }
      return;
    }
    const contents = ctx.state(state) as MapState<unknown>;
    // Tumbling and sliding windows all have sizeMs: the window ending at `end` has one id, read
    // with a point read (a range read is a RocksDB iterator per timer, the largest cost of a
    // sliding-window job before this).
    const sizeMs = assigner.sizeMs;
    const w: TimeWindow = { start: end - sizeMs, end };
    const id = windowId(w);
    const acc = await contents.get(id);
    if (acc !== undefined) {
      await fire(w, acc, ctx);
      if (lateness === 0) contents.remove(id);
    }
    if (lateness > 0) {
      const cleanupEnd = end - lateness;
      const cleanupId = windowId({ start: cleanupEnd - sizeMs, end: cleanupEnd });
      if (await contents.contains(cleanupId)) contents.remove(cleanupId);
    }
  };

  return { state: assigner.kind === 'session' ? sessionState : state, process, onTimer };
}
