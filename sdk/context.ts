// What a keyed process function sees. The contract lives here; worker/task/keyed-context.ts
// implements it.
import type {
  AggregatingState,
  AggregatingStateDescriptor,
  ListState,
  ListStateDescriptor,
  MapState,
  MapStateDescriptor,
  ReducingState,
  ReducingStateDescriptor,
  ValueState,
  StateDescriptor,
  ValueStateDescriptor,
} from './state.ts';

/**
 * Timers of the current key. A timer is (key, time): registering the same time twice for one
 * key makes one timer. Timers are keyed state (stored in the state store, ordered by time,
 * checkpointed), so millions of them do not live on the heap.
 */
export interface Timers {
  /** Fires onTimer once the watermark reaches timestampMs (watermark >= timestampMs). */
  registerEventTime(timestampMs: number): void;
  /** Fires onTimer once the worker's clock reaches timestampMs. */
  registerProcessingTime(timestampMs: number): void;
  deleteEventTime(timestampMs: number): void;
  deleteProcessingTime(timestampMs: number): void;
  /** The actor's current watermark in ms; -Infinity before the first one. */
  currentWatermark(): number;
  /** The worker's clock in ms since the epoch. */
  currentProcessingTime(): number;
}

export interface ProcessContext<O> {
  /** The key of the record being processed (keyBy's result, as a string). */
  readonly key: string;
  /** The key group the key belongs to. */
  readonly keyGroup: number;
  /** The record's event time in ms since the epoch, when one was assigned; in onTimer of an event-time timer, the timer's time. */
  readonly timestamp: number | undefined;
  /** A handle on keyed state, scoped to the current key. The descriptor must be declared in the stage's options. */
  state<V>(descriptor: ValueStateDescriptor<V>): ValueState<V>;
  state<V>(descriptor: MapStateDescriptor<V>): MapState<V>;
  state<V>(descriptor: ListStateDescriptor<V>): ListState<V>;
  state<V>(descriptor: ReducingStateDescriptor<V>): ReducingState<V>;
  state<IN, ACC, OUT>(descriptor: AggregatingStateDescriptor<IN, ACC, OUT>): AggregatingState<IN, OUT>;
  /** Timers of the current key. */
  readonly timers: Timers;
  /** Sends a record downstream (to the next operator, shuffle or sinks). */
  emit(value: O): void;
  /** Sends a value to the stage's side output `tag` (its sinks declared with sideOutput: tag). */
  output(tag: string, value: unknown): void;
}

/** What onTimer sees: the timer's key, and in which time domain it fired. */
export interface TimerContext<O> extends ProcessContext<O> {
  readonly timeDomain: 'event' | 'processing';
}

/** A keyed process function. Records of one key arrive one at a time, in order. */
export type ProcessFunction<T, O> = (value: T, ctx: ProcessContext<O>) => void | Promise<void>;

/** Called when a timer of a key fires, in order with that key's records. */
export type OnTimerFunction<O> = (timestampMs: number, ctx: TimerContext<O>) => void | Promise<void>;

/** Broadcast state as processElement sees it: read-only (only processBroadcastElement writes it). */
export type ReadOnlyBroadcastState<V> = Pick<MapState<V>, 'get' | 'contains' | 'entries' | 'keys' | 'isEmpty'>;

/** What processElement (and onTimer) of a keyed stage connected to a broadcast stream sees. */
export interface KeyedBroadcastContext<O> extends ProcessContext<O> {
  /** The broadcast state of this key group, read-only. The descriptor must be in the stage's broadcastState. */
  broadcastState<V>(descriptor: MapStateDescriptor<V>): ReadOnlyBroadcastState<V>;
}

/**
 * What processBroadcastElement sees. It runs once per key group of the stage (the record is
 * delivered to every key group), with no current key: what it emits is emitted once per key group.
 */
export interface BroadcastContext<O> {
  /** The key group this copy of the broadcast record is processed in. */
  readonly keyGroup: number;
  /** The record's event time in ms since the epoch, when one was assigned. */
  readonly timestamp: number | undefined;
  /** The broadcast state of this key group, read-write. The descriptor must be in the stage's broadcastState. */
  broadcastState<V>(descriptor: MapStateDescriptor<V>): MapState<V>;
  /** The actor's current watermark in ms; -Infinity before the first one. */
  currentWatermark(): number;
  /** The worker's clock in ms since the epoch. */
  currentProcessingTime(): number;
  /** Sends a record downstream (once per key group: the broadcast record reaches each). */
  emit(value: O): void;
  /** Sends a value to the stage's side output `tag`. */
  output(tag: string, value: unknown): void;
  /**
   * Visits every key of this key group that has a value in the keyed state `descriptor` (one of
   * the stage's `state`), with a keyed context for that key: state, timers, output. How a rule
   * that changed is applied to the keys that exist.
   */
  forEachKey(descriptor: StateDescriptor, fn: (key: string, ctx: KeyedBroadcastContext<O>) => void | Promise<void>): Promise<void>;
}

/** The function of a keyed stage over two connected keyed streams: state and timers are shared per key. */
export interface CoProcessFunction<A, B, O> {
  /** A record of the first stream (the one connect was called on). */
  processElement1(value: A, ctx: ProcessContext<O>): void | Promise<void>;
  /** A record of the second stream (connect's argument). */
  processElement2(value: B, ctx: ProcessContext<O>): void | Promise<void>;
}

/** The function of a keyed stage connected to a broadcast stream. */
export interface KeyedBroadcastProcessFunction<T, B, O> {
  /** A record of the keyed stream, for its key. */
  processElement(value: T, ctx: KeyedBroadcastContext<O>): void | Promise<void>;
  /** A broadcast record, once per key group of the stage. */
  processBroadcastElement(value: B, ctx: BroadcastContext<O>): void | Promise<void>;
}

/** onTimer of a keyed stage connected to a broadcast stream: the timer context plus read-only broadcast state. */
export type KeyedBroadcastOnTimerFunction<O> = (timestampMs: number, ctx: TimerContext<O> & KeyedBroadcastContext<O>) => void | Promise<void>;
