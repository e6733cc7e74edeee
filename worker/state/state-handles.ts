// Handles on keyed state (sdk/state.ts) over the state backend's stored bytes: the encoding of
// values (msgpack by default, a descriptor's serializer otherwise) and per-state TTL live here,
// so every kind goes through the overlay → delta → RocksDB path and checkpoints cover it.
//
// Stored layout of a value (or map entry):
//   no TTL:   [payload]                          the serializer's bytes, nothing else: the query
//                                                path (getValue/mapEntries) reads these as msgpack
//   with TTL: [f64 BE write time ms][payload]    the write time, not the expiry, so that a new
//                                                version of the job may change ttlMs
// List state stores the whole array as one value; reducing and aggregating state store the
// accumulated value. Keys are the backend's [stage][keyGroup][state][key]([mapKey]).
import type { MapChange } from './feature-state.ts';
import type {
  AggregatingState,
  AggregatingStateDescriptor,
  ListState,
  MapRange,
  MapState,
  ReducingState,
  StateDescriptor,
  StateSerializer,
  ValueState,
} from '../../sdk/index.ts';
import type { StateBackend } from './state-backend.ts';
import { packValueView, unpackValue } from './value-codec.ts';
import type { StateUndoLog } from './state-undo.ts';

/** Milliseconds since the epoch; injected so tests can move time. */
export type Clock = () => number;

export const TTL_HEADER_BYTES = 8;

export const DEFAULT_SERIALIZER: StateSerializer<unknown> = {
  encode: (value) => packValueView(value),
  decode: (bytes) => unpackValue(bytes),
};

/** What a handle needs to reach one key's state. */
export interface StateScope {
  backend: StateBackend;
  stage: string;
  keyGroup: number;
  key: string;
  clock: Clock;
  /** Told of every change (a map entry's, or undefined for a whole value): feature bookkeeping. */
  onChange?: (change: MapChange | undefined) => void;
  /** Notes every write so that a failing record can be undone (worker/state-undo.ts). @default none */
  undo?: StateUndoLog;
}

/** The stored bytes of a value: always a fresh copy (pack() and user serializers may reuse their output buffer). */
export function encodeStored(serializer: StateSerializer<unknown>, value: unknown, ttlMs: number | undefined, nowMs: number): Buffer {
  const payload = serializer.encode(value);
  if (ttlMs === undefined) return Buffer.from(payload);
  const out = Buffer.allocUnsafe(TTL_HEADER_BYTES + payload.length);
  out.writeDoubleBE(nowMs, 0);
  out.set(payload, TTL_HEADER_BYTES);
  return out;
}

/** True when a stored value of a TTL state has expired at nowMs. */
export function isExpired(stored: Buffer, ttlMs: number, nowMs: number): boolean {
  return stored.length < TTL_HEADER_BYTES || stored.readDoubleBE(0) + ttlMs <= nowMs;
}

function payloadOf(stored: Buffer, ttlMs: number | undefined): Buffer {
  return ttlMs === undefined ? stored : stored.subarray(TTL_HEADER_BYTES);
}

/**
 * Reads and writes encoded values of one state for one key, with TTL applied. mapKey undefined
 * addresses a value; otherwise a map entry.
 */
class Cell {
  readonly #scope: StateScope;
  readonly #name: string;
  readonly #ttlMs: number | undefined;
  readonly #serializer: StateSerializer<unknown>;

  constructor(scope: StateScope, descriptor: StateDescriptor) {
    this.#scope = scope;
    this.#name = descriptor.name;
    this.#ttlMs = descriptor.ttlMs;
    this.#serializer = (descriptor.serializer as StateSerializer<unknown> | undefined) ?? DEFAULT_SERIALIZER;
  }

  async read(mapKey: string | undefined): Promise<unknown | undefined> {
    const { backend, stage, keyGroup, key } = this.#scope;
    const stored = await backend.readBytes(stage, keyGroup, this.#name, key, mapKey);
    if (stored === null) return undefined;
    if (this.#ttlMs !== undefined && isExpired(stored, this.#ttlMs, this.#scope.clock())) {
      this.#expire(mapKey, stored);
      return undefined;
    }
    return this.#serializer.decode(payloadOf(stored, this.#ttlMs));
  }

  write(mapKey: string | undefined, value: unknown): void {
    const { backend, stage, keyGroup, key, clock } = this.#scope;
    backend.writeBytes(stage, keyGroup, this.#name, key, mapKey, encodeStored(this.#serializer, value, this.#ttlMs, this.#ttlMs === undefined ? 0 : clock()), this.#scope.undo);
    this.#scope.onChange?.(mapKey === undefined ? undefined : { op: 'put', mapKey, value });
  }

  remove(mapKey: string | undefined): void {
    const { backend, stage, keyGroup, key } = this.#scope;
    backend.writeBytes(stage, keyGroup, this.#name, key, mapKey, null, this.#scope.undo);
    this.#scope.onChange?.(mapKey === undefined ? undefined : { op: 'remove', mapKey });
  }

  /** Live map entries in range, expired ones removed on the way. */
  async range(range: MapRange | undefined): Promise<Array<[string, unknown]>> {
    const { backend, stage, keyGroup, key, clock } = this.#scope;
    const ttlMs = this.#ttlMs;
    const out: Array<[string, unknown]> = [];
    if (range?.limit !== undefined && (!Number.isSafeInteger(range.limit) || range.limit < 0)) throw new TypeError(`map range limit must be a non-negative integer, got ${String(range.limit)}`);
    let from = range?.from;
    const want = range?.limit ?? Number.POSITIVE_INFINITY;
    // With TTL some entries may be expired: read again past the last one until limit live ones.
    for (;;) {
      const asked = want - out.length;
      const page = await backend.mapRangeBytes(stage, keyGroup, this.#name, key, { ...(from !== undefined && { from }), ...(range?.to !== undefined && { to: range.to }), limit: asked });
      const now = ttlMs === undefined ? 0 : clock();
      let expired = 0;
      for (const [mapKey, stored] of page) {
        if (ttlMs !== undefined && isExpired(stored, ttlMs, now)) {
          this.#expire(mapKey, stored);
          expired++;
          continue;
        }
        out.push([mapKey, this.#serializer.decode(payloadOf(stored, ttlMs))]);
      }
      if (expired === 0 || page.length < asked || out.length >= want) return out;
      // The next page starts just after the last key seen.
      from = `${page[page.length - 1]![0]}\u0000`;
    }
  }

  // A read found an expired value. Delete it unless the overlay already holds something newer
  // (the function may have written while the read was in flight).
  #expire(mapKey: string | undefined, stored: Buffer): void {
    const { backend, stage, keyGroup, key } = this.#scope;
    const current = backend.readBytes(stage, keyGroup, this.#name, key, mapKey);
    if (current instanceof Promise) {
      current.catch(() => undefined);
      this.remove(mapKey);
    } else if (current === stored) this.remove(mapKey);
  }
}

/** A handle of the descriptor's kind, scoped to one key. */
export function createStateHandle(scope: StateScope, descriptor: StateDescriptor): unknown {
  const cell = new Cell(scope, descriptor);
  switch (descriptor.kind) {
    case 'value':
      return {
        value: () => cell.read(undefined),
        update: (value: unknown) => cell.write(undefined, value),
        clear: () => cell.remove(undefined),
      } satisfies ValueState<unknown>;
    case 'map':
      return mapHandle(cell);
    case 'list':
      return listHandle(cell);
    case 'reducing': {
      const reduce = descriptor.reduce;
      return {
        get: () => cell.read(undefined),
        add: async (value: unknown) => {
          const current = await cell.read(undefined);
          cell.write(undefined, current === undefined ? value : reduce(current, value));
        },
        clear: () => cell.remove(undefined),
      } satisfies ReducingState<unknown>;
    }
    case 'aggregating':
      return aggregatingHandle(cell, descriptor);
  }
}

function mapHandle(cell: Cell): MapState<unknown> {
  return {
    get: (mapKey) => cell.read(checkMapKey(mapKey)),
    put: (mapKey, value) => cell.write(checkMapKey(mapKey), value),
    remove: (mapKey) => cell.remove(checkMapKey(mapKey)),
    contains: async (mapKey) => (await cell.read(checkMapKey(mapKey))) !== undefined,
    entries: (range) => cell.range(range),
    keys: async (range) => (await cell.range(range)).map(([mapKey]) => mapKey),
    isEmpty: async () => (await cell.range({ limit: 1 })).length === 0,
    clear: async () => {
      for (const [mapKey] of await cell.range(undefined)) cell.remove(mapKey);
    },
  };
}

function listHandle(cell: Cell): ListState<unknown> {
  const append = async (values: readonly unknown[]): Promise<void> => {
    if (values.length === 0) return;
    const current = (await cell.read(undefined)) as unknown[] | undefined;
    cell.write(undefined, current === undefined ? [...values] : [...current, ...values]);
  };
  return {
    get: async () => ((await cell.read(undefined)) as unknown[] | undefined) ?? [],
    add: (value) => append([value]),
    addAll: (values) => append(values),
    update: (values) => (values.length === 0 ? cell.remove(undefined) : cell.write(undefined, [...values])),
    clear: () => cell.remove(undefined),
  };
}

function aggregatingHandle(cell: Cell, descriptor: AggregatingStateDescriptor<unknown, unknown, unknown>): AggregatingState<unknown, unknown> {
  const aggregate = descriptor.aggregate;
  return {
    get: async () => {
      const accumulator = await cell.read(undefined);
      return accumulator === undefined ? undefined : aggregate.getResult(accumulator);
    },
    add: async (value) => {
      const accumulator = (await cell.read(undefined)) ?? aggregate.createAccumulator();
      cell.write(undefined, aggregate.add(value, accumulator));
    },
    clear: () => cell.remove(undefined),
  };
}

function checkMapKey(mapKey: string): string {
  if (typeof mapKey !== 'string') throw new TypeError(`a map state key must be a string, got ${typeof mapKey}`);
  return mapKey;
}
