// A keyed stream cut into event-time windows (the contract: WindowedStream in sdk/streams.ts):
// reduce, aggregate or process makes a keyed process stage of the window operator
// (sdk/window-operator.ts), late records to a side sink when one is given.
import type { AggregateFunction } from './state.ts';
import type { WindowOptions } from './options.ts';
import type * as api from './streams.ts';
import { LATE_TAG, windowOperator, type WindowFunction, type WindowResult } from './window-operator.ts';
import type { TimeWindow, WindowAssigner } from './windows.ts';

export class WindowedStream<T> implements api.WindowedStream<T> {
  readonly #keyed: api.KeyedStream<T>;
  readonly #assigner: WindowAssigner;
  readonly #options: WindowOptions;

  constructor(keyed: api.KeyedStream<T>, assigner: WindowAssigner, options: WindowOptions) {
    if (options.allowedLatenessMs !== undefined && (!Number.isSafeInteger(options.allowedLatenessMs) || options.allowedLatenessMs < 0)) {
      throw new TypeError(`allowedLatenessMs must be a non-negative integer, got ${String(options.allowedLatenessMs)}`);
    }
    this.#keyed = keyed;
    this.#assigner = assigner;
    this.#options = options;
  }

  reduce<O = WindowResult<T>>(name: string, reduce: (a: T, b: T) => T, result?: (value: T, window: TimeWindow, key: string) => O): api.DataStream<O> {
    const r = result ?? ((value: T, w: TimeWindow, key: string) => ({ key, start: w.start, end: w.end, value }) as O);
    return this.#stage(name, { kind: 'reduce', reduce, result: r });
  }

  aggregate<ACC, R, O = WindowResult<R>>(name: string, aggregate: AggregateFunction<T, ACC, R>, result?: (value: R, window: TimeWindow, key: string) => O): api.DataStream<O> {
    const r = result ?? ((value: R, w: TimeWindow, key: string) => ({ key, start: w.start, end: w.end, value }) as O);
    return this.#stage(name, { kind: 'aggregate', aggregate: aggregate as AggregateFunction<T, unknown, unknown>, result: r as (value: unknown, w: TimeWindow, key: string) => O });
  }

  process<O>(name: string, process: (records: T[], window: TimeWindow, key: string) => O[] | Promise<O[]>): api.DataStream<O> {
    return this.#stage(name, { kind: 'process', process });
  }

  #stage<O>(name: string, fn: WindowFunction<T, O>): api.DataStream<O> {
    const late = this.#options.lateSink;
    const op = windowOperator(this.#assigner, fn, { allowedLatenessMs: this.#options.allowedLatenessMs ?? 0, lateOutput: late !== undefined });
    const out = this.#keyed.process<O>(name, op.process, { state: [op.state], onTimer: op.onTimer });
    if (late !== undefined) out.sideSink(LATE_TAG, late);
    return out;
  }
}
