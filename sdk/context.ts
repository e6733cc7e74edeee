// What a keyed process function sees. The contract lives here; worker/keyed-context.ts
// implements it.
import type { MapState, MapStateDescriptor, ValueState, ValueStateDescriptor } from './state.ts';

export interface ProcessContext<O> {
  /** The key of the record being processed (keyBy's result, as a string). */
  readonly key: string;
  /** The key group the key belongs to. */
  readonly keyGroup: number;
  /** The record's event time in ms since the epoch, when one was assigned. */
  readonly timestamp: number | undefined;
  /** A handle on keyed state, scoped to the current key. The descriptor must be declared in the stage's options. */
  state<V>(descriptor: ValueStateDescriptor<V>): ValueState<V>;
  state<V>(descriptor: MapStateDescriptor<V>): MapState<V>;
  /** Sends a record downstream (to the next operator, shuffle or sinks). */
  emit(value: O): void;
}

/** A keyed process function. Records of one key arrive one at a time, in order. */
export type ProcessFunction<T, O> = (value: T, ctx: ProcessContext<O>) => void | Promise<void>;
