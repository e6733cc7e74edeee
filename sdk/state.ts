// State descriptors name keyed state; the runtime hands out handles scoped to the current key.
// Reads are async because state lives in RocksDB, not on the heap (a feature store can hold a
// terabyte); plain writes go to the in-memory overlay and are synchronous. Writes that need the
// old value (list add, reducing and aggregating add) are async.
//
// Every kind goes through the state backend's overlay and checkpoint path, so checkpoints,
// recovery and key-group moves cover it (docs/ARCHITECTURE.md, "State").

/**
 * Turns a state value into bytes and back. The default is the runtime's msgpack encoding (fast,
 * binary, plain data: objects, arrays, strings, numbers, booleans, null, Uint8Array, Date).
 * Override it for classes, for a schema'd encoding, or for values msgpack cannot carry.
 * decode receives a view that is only valid during the call: copy it if you keep it.
 */
export interface StateSerializer<V> {
  encode(value: V): Uint8Array;
  decode(bytes: Uint8Array): V;
}

/** Options shared by every state kind. */
export interface StateOptions<S> {
  /**
   * Time to live in ms. Each value's clock restarts when it is created or written (for map state:
   * per entry; for list, reducing and aggregating state: on every add or update). An expired value
   * is never returned; it is removed when read and by a background sweep with bounded work.
   * Processing time (the worker's clock), as in Flink. @default undefined (no expiry)
   */
  ttlMs?: number;
  /** How values are stored. @default the runtime's msgpack encoding */
  serializer?: StateSerializer<S>;
}

interface DescriptorBase {
  readonly name: string;
  readonly ttlMs?: number;
}

export interface ValueStateDescriptor<V> extends DescriptorBase {
  readonly kind: 'value';
  readonly serializer?: StateSerializer<V>;
  /** Phantom: carries V through the builder. Never set. */
  readonly __value?: V;
}

export interface MapStateDescriptor<V> extends DescriptorBase {
  readonly kind: 'map';
  readonly serializer?: StateSerializer<V>;
  readonly __value?: V;
}

export interface ListStateDescriptor<V> extends DescriptorBase {
  readonly kind: 'list';
  /** Encodes the whole list (an array of V). */
  readonly serializer?: StateSerializer<V[]>;
  readonly __value?: V;
}

export interface ReducingStateDescriptor<V> extends DescriptorBase {
  readonly kind: 'reducing';
  // Method syntax: a ReducingStateDescriptor<number> must fit a StateDescriptor[] (bivariance).
  reduce(accumulated: V, value: V): V;
  readonly serializer?: StateSerializer<V>;
  readonly __value?: V;
}

/** Flink's AggregateFunction: folds IN values into an accumulator ACC, read as OUT. */
export interface AggregateFunction<IN, ACC, OUT> {
  createAccumulator(): ACC;
  add(value: IN, accumulator: ACC): ACC;
  getResult(accumulator: ACC): OUT;
  /** Merges two accumulators; needed by merging (session) windows. */
  merge?(a: ACC, b: ACC): ACC;
}

export interface AggregatingStateDescriptor<IN, ACC, OUT> extends DescriptorBase {
  readonly kind: 'aggregating';
  readonly aggregate: AggregateFunction<IN, ACC, OUT>;
  /** Encodes the accumulator. */
  readonly serializer?: StateSerializer<ACC>;
  readonly __value?: [IN, ACC, OUT];
}

export type StateDescriptor =
  | ValueStateDescriptor<unknown>
  | MapStateDescriptor<unknown>
  | ListStateDescriptor<unknown>
  | ReducingStateDescriptor<unknown>
  | AggregatingStateDescriptor<unknown, unknown, unknown>;

export type StateKind = StateDescriptor['kind'];

/** One value per key. */
export function valueState<V>(name: string, options: StateOptions<V> = {}): ValueStateDescriptor<V> {
  return { kind: 'value', name: checkName(name), ...checkOptions(name, options) };
}

/** A map per key, from string keys to V, iterated in key order (UTF-8 bytes). */
export function mapState<V>(name: string, options: StateOptions<V> = {}): MapStateDescriptor<V> {
  return { kind: 'map', name: checkName(name), ...checkOptions(name, options) };
}

/** A list per key. Stored as one value: meant for lists of moderate length (window contents, buffers). */
export function listState<V>(name: string, options: StateOptions<V[]> = {}): ListStateDescriptor<V> {
  return { kind: 'list', name: checkName(name), ...checkOptions(name, options) };
}

/** One value per key, folded with reduce on every add. */
export function reducingState<V>(name: string, reduce: (accumulated: V, value: V) => V, options: StateOptions<V> = {}): ReducingStateDescriptor<V> {
  if (typeof reduce !== 'function') throw new TypeError(`reducing state ${name} needs a reduce function`);
  return { kind: 'reducing', name: checkName(name), reduce, ...checkOptions(name, options) };
}

/** One accumulator per key, folded with aggregate.add on every add and read through getResult. */
export function aggregatingState<IN, ACC, OUT>(
  name: string,
  aggregate: AggregateFunction<IN, ACC, OUT>,
  options: StateOptions<ACC> = {},
): AggregatingStateDescriptor<IN, ACC, OUT> {
  if (typeof aggregate?.createAccumulator !== 'function' || typeof aggregate.add !== 'function' || typeof aggregate.getResult !== 'function') {
    throw new TypeError(`aggregating state ${name} needs createAccumulator, add and getResult functions`);
  }
  return { kind: 'aggregating', name: checkName(name), aggregate, ...checkOptions(name, options) };
}

export interface ValueState<V> {
  /** The current value, or undefined when none was written, it was cleared, or it expired. */
  value(): Promise<V | undefined>;
  update(value: V): void;
  clear(): void;
}

/**
 * A range of map keys, compared as UTF-8 bytes: from `from` (inclusive) to `to` (exclusive),
 * at most `limit` entries. Every bound is optional.
 */
export interface MapRange {
  from?: string;
  to?: string;
  limit?: number;
}

export interface MapState<V> {
  get(mapKey: string): Promise<V | undefined>;
  put(mapKey: string, value: V): void;
  remove(mapKey: string): void;
  contains(mapKey: string): Promise<boolean>;
  /** Live entries ordered by key (UTF-8 bytes), optionally within a range. */
  entries(range?: MapRange): Promise<Array<[string, V]>>;
  keys(range?: MapRange): Promise<string[]>;
  isEmpty(): Promise<boolean>;
  clear(): Promise<void>;
}

export interface ListState<V> {
  /** The elements in insertion order; [] when empty or expired. */
  get(): Promise<V[]>;
  add(value: V): Promise<void>;
  addAll(values: readonly V[]): Promise<void>;
  /** Replaces the whole list. */
  update(values: readonly V[]): void;
  clear(): void;
}

export interface ReducingState<V> {
  /** The reduced value, or undefined when nothing was added (or it was cleared or expired). */
  get(): Promise<V | undefined>;
  add(value: V): Promise<void>;
  clear(): void;
}

export interface AggregatingState<IN, OUT> {
  /** getResult of the accumulator, or undefined when nothing was added. */
  get(): Promise<OUT | undefined>;
  add(value: IN): Promise<void>;
  clear(): void;
}

// Names starting with a control character are reserved for the runtime (timers, windows).
function checkName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw new TypeError(`state name ${JSON.stringify(name)} must be 1-200 characters`);
  // Names starting with a control character are the runtime's: feature metadata and history
  // (worker/state/feature-state.ts), timers and windows (worker/task/timer-service.ts, sdk/window-operator.ts).
  if (name.charCodeAt(0) < 0x20) throw new TypeError(`state name ${JSON.stringify(name)} must not start with a control character (reserved for the runtime)`);
  return name;
}

function checkOptions<S>(name: string, options: StateOptions<S>): { ttlMs?: number; serializer?: StateSerializer<S> } {
  const out: { ttlMs?: number; serializer?: StateSerializer<S> } = {};
  if (options.ttlMs !== undefined) {
    if (!Number.isSafeInteger(options.ttlMs) || options.ttlMs <= 0) throw new TypeError(`state ${name}: ttlMs must be a positive integer, got ${String(options.ttlMs)}`);
    out.ttlMs = options.ttlMs;
  }
  if (options.serializer !== undefined) {
    if (typeof options.serializer.encode !== 'function' || typeof options.serializer.decode !== 'function') {
      throw new TypeError(`state ${name}: a serializer needs encode and decode functions`);
    }
    out.serializer = options.serializer;
  }
  return out;
}
