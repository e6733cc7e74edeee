// State descriptors name keyed state; the runtime hands out handles scoped to the current key.
// Reads are async because state lives in RocksDB, not on the heap (a feature store can hold a
// terabyte); writes go to the in-memory overlay and are synchronous.

export interface ValueStateDescriptor<V> {
  readonly kind: 'value';
  readonly name: string;
  /** Phantom: carries V through the builder. Never set. */
  readonly __value?: V;
}

export interface MapStateDescriptor<V> {
  readonly kind: 'map';
  readonly name: string;
  readonly __value?: V;
}

export type StateDescriptor = ValueStateDescriptor<unknown> | MapStateDescriptor<unknown>;

/** One value per key. */
export function valueState<V>(name: string): ValueStateDescriptor<V> {
  return { kind: 'value', name: checkName(name) };
}

/** A map per key, from string keys to V, iterated in key order (UTF-8 bytes). */
export function mapState<V>(name: string): MapStateDescriptor<V> {
  return { kind: 'map', name: checkName(name) };
}

export interface ValueState<V> {
  /** The current value, or undefined when none was written (or it was cleared). */
  value(): Promise<V | undefined>;
  update(value: V): void;
  clear(): void;
}

export interface MapState<V> {
  get(mapKey: string): Promise<V | undefined>;
  put(mapKey: string, value: V): void;
  remove(mapKey: string): void;
  /** Every entry, ordered by key. */
  entries(): Promise<Array<[string, V]>>;
  isEmpty(): Promise<boolean>;
  clear(): Promise<void>;
}

function checkName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw new TypeError(`state name ${JSON.stringify(name)} must be 1-200 characters`);
  // Names starting with NUL are the runtime's (feature metadata and history, worker/feature-state.ts).
  if (name.startsWith('\u0000')) throw new TypeError(`state name ${JSON.stringify(name)} must not start with NUL`);
  return name;
}
