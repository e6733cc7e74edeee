// The stream handles a job author builds a job with (docs/ARCHITECTURE.md, "Actors, tasks and
// channels"): what each offers and what it makes of the job graph. Contracts only: each kind is
// implemented in a file of its own (data-stream.ts, keyed-stream.ts, broadcast-stream.ts,
// connected-streams.ts, windowed-stream.ts) over the graph under construction (stream-graph.ts).
import type { SinkSpec } from '../core/manifest.ts';
import type { AsyncFunction, AsyncMapOptions } from './async-map.ts';
import type { CoProcessFunction, KeyedBroadcastProcessFunction, ProcessFunction } from './context.ts';
import type { BroadcastProcessOptions, ProcessOptions, WindowOptions } from './options.ts';
import type { AggregateFunction } from './state.ts';
import type { WindowResult } from './window-operator.ts';
import type { TimeWindow, WindowAssigner } from './windows.ts';

/**
 * A stream of records of type T: what a source, an operator or a process stage emits. Stateless
 * operators (map, filter, flatMap, asyncMap) are chained into the stage that produced the stream,
 * with no NATS hop between them; keyBy and broadcast end the stage with an edge to a keyed stage.
 */
export interface DataStream<T> {
  map<U>(fn: (value: T) => U, name?: string): DataStream<U>;

  filter<S extends T>(fn: (value: T) => value is S, name?: string): DataStream<S>;
  filter(fn: (value: T) => boolean, name?: string): DataStream<T>;

  flatMap<U>(fn: (value: T) => Iterable<U>, name?: string): DataStream<U>;

  /**
   * Calls an asynchronous function per record (a lookup, an enrichment service) with up to
   * `capacity` calls in flight per task, a time-out per attempt and retries with back-off; after
   * the last attempt the record fails the job or goes to the dead-letter subject (`onFailure`).
   * Results leave in input order (`ordered`, the default) or as they complete, never across a
   * barrier or watermark; a barrier waits for the records before it.
   */
  asyncMap<U>(fn: AsyncFunction<T, U>, options?: AsyncMapOptions, name?: string): DataStream<U>;

  /**
   * This stream and others of the same element type as one stream. Not an operator: what follows
   * is chained into each upstream stage, and a keyBy after it shuffles all of them into one stage.
   */
  union(...others: DataStream<T>[]): DataStream<T>;

  /** Shuffles by key: records of one key meet in one actor, in order. */
  keyBy(fn: (value: T) => string | number, name?: string): KeyedStream<T>;

  /**
   * Delivers every record of this stream to every key group of the keyed stage it is connected to
   * (keyedStream.connect(broadcastStream)): for rules and configuration that change while the job runs.
   */
  broadcast(name?: string): BroadcastStream<T>;

  /**
   * Not on a plain stream: connect takes keyed streams. A type error at compile time (the
   * parameter is never), a TypeError saying so at build time for plain JavaScript.
   */
  connect(other: never): never;

  /**
   * The side output `tag` of the process stage that produced this stream (what it sent with
   * ctx.output(tag, value)), as a stream of its own.
   */
  sideOutput<S = unknown>(tag: string): DataStream<S>;

  /** Sends the side output `tag` of the stage that produced this stream (ctx.output(tag, ...)) to a sink. */
  sideSink(tag: string, spec: SinkSpec): this;

  /** Sends this stream's records to a sink. A stream may go to several sinks and operators. */
  sink(spec: SinkSpec): this;
}

/** A stream shuffled by key (DataStream.keyBy): a process stage, windows or a connect follow. */
export interface KeyedStream<T> {
  /**
   * Event-time windows per key (tumblingWindows, slidingWindows, sessionWindows). Needs a source
   * with a timestamp assigner; windows fire when the watermark passes their end.
   */
  window(assigner: WindowAssigner, options?: WindowOptions): WindowedStream<T>;

  /**
   * A keyed stage with state: one actor per key group, records of a key processed in order.
   * `name` is the stage id: keep it stable across versions of the job, state is stored under it.
   */
  process<O>(name: string, fn: ProcessFunction<T, O>, options?: ProcessOptions<O>): DataStream<O>;

  /**
   * Connects two keyed streams into one keyed stage (ConnectedStreams.process): records of one
   * key from both meet in one actor, with shared state and timers. Keys are compared as strings.
   * Or connects a broadcast stream (BroadcastConnectedStream.process): its records reach every
   * key group, for rules that change while the job runs.
   */
  connect<U>(other: KeyedStream<U>): ConnectedStreams<T, U>;
  connect<B>(other: BroadcastStream<B>): BroadcastConnectedStream<T, B>;
}

/** A stream to be delivered to every key group of a keyed stage (DataStream.broadcast()). */
export interface BroadcastStream<T> {
  /** Phantom: carries T and tells a broadcast stream's type from any other stream's. Never set. */
  readonly __broadcastElement: T;
}

/** Two keyed streams connected (KeyedStream.connect): process makes their shared keyed stage. */
export interface ConnectedStreams<A, B> {
  /**
   * A keyed stage over both streams: processElement1 gets the first stream's records,
   * processElement2 the second's; state and timers are shared per key. Order is kept within each
   * input; between the two it is arrival order.
   */
  process<O>(name: string, fn: CoProcessFunction<A, B, O>, options?: ProcessOptions<O>): DataStream<O>;
}

/** A keyed stream connected to a broadcast stream: process makes the keyed stage. */
export interface BroadcastConnectedStream<T, B> {
  /**
   * A keyed stage: processElement per keyed record (broadcast state read-only), and
   * processBroadcastElement once per key group for each broadcast record (broadcast state
   * read-write, bctx.forEachKey to reach the keys). Broadcast state is stored per key group.
   */
  process<O>(name: string, fn: KeyedBroadcastProcessFunction<T, B, O>, options?: BroadcastProcessOptions<O>): DataStream<O>;
}

/** A keyed stream cut into event-time windows; one of reduce, aggregate or process makes the stage. */
export interface WindowedStream<T> {
  /** Folds each window's records with reduce; emits result(value, window, key), by default a WindowResult. */
  reduce<O = WindowResult<T>>(name: string, reduce: (a: T, b: T) => T, result?: (value: T, window: TimeWindow, key: string) => O): DataStream<O>;

  /** Folds each window's records into an accumulator; emits result(getResult(acc), window, key), by default a WindowResult. */
  aggregate<ACC, R, O = WindowResult<R>>(name: string, aggregate: AggregateFunction<T, ACC, R>, result?: (value: R, window: TimeWindow, key: string) => O): DataStream<O>;

  /** Hands each window's records (in arrival order) to process; emits what it returns. */
  process<O>(name: string, process: (records: T[], window: TimeWindow, key: string) => O[] | Promise<O[]>): DataStream<O>;
}
