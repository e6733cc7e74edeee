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
import { copyStateValue, type LiveCodec, type LiveEntry, type LiveSlot } from './live-cache.ts';
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

/** How a state's live values are encoded at a flush and copied in and out of user code. */
interface StateCodec extends LiveCodec {
  copy(value: unknown): unknown;
}

// One codec per descriptor (descriptors are module constants of the job): no allocation per handle.
const codecs = new WeakMap<StateDescriptor, StateCodec>();

function codecOf(descriptor: StateDescriptor): StateCodec {
  let codec = codecs.get(descriptor);
  if (codec !== undefined) return codec;
  const serializer = (descriptor.serializer as StateSerializer<unknown> | undefined) ?? DEFAULT_SERIALIZER;
  const ttlMs = descriptor.ttlMs;
  codec = {
    encode: (value, time) => encodeStored(serializer, value, ttlMs, time),
    // A user serializer's own round trip: what reading the stored bytes back would give.
    copy: serializer === DEFAULT_SERIALIZER ? copyStateValue : (value) => serializer.decode(Buffer.from(serializer.encode(value))),
  };
  codecs.set(descriptor, codec);
  return codec;
}

/** Map keys whose encoded key a cell remembers (a key's few map entries, as a feature's fields). */
const MAP_KEY_MEMO = 64;

/**
 * Reads and writes the values of one state for one key through the backend's live cache
 * (worker/state/live-cache.ts), with TTL applied. mapKey undefined addresses a value; otherwise a
 * map entry. Map ranges read the stored bytes (the backend flushes live values first).
 */
class Cell {
  readonly #scope: StateScope;
  readonly #name: string;
  readonly #ttlMs: number | undefined;
  readonly #serializer: StateSerializer<unknown>;
  readonly #codec: StateCodec;
  /** The encoded key of the value (and the prefix of every map entry's), built on first use. */
  #valueKey: string | undefined;
  /** The value's and map entries' encoded keys with their live entries: a hot key's reads and writes look nothing up. */
  #valueSlot: LiveSlot | undefined;
  #mapSlots: Map<string, LiveSlot> | undefined;

  constructor(scope: StateScope, descriptor: StateDescriptor) {
    this.#scope = scope;
    this.#name = descriptor.name;
    this.#ttlMs = descriptor.ttlMs;
    this.#serializer = (descriptor.serializer as StateSerializer<unknown> | undefined) ?? DEFAULT_SERIALIZER;
    this.#codec = codecOf(descriptor);
  }

  #slot(mapKey: string | undefined): LiveSlot {
    if (mapKey === undefined && this.#valueSlot !== undefined) return this.#valueSlot;
    const { backend, stage, keyGroup, key } = this.#scope;
    this.#valueKey ??= backend.stateKeyString(stage, keyGroup, this.#name, key);
    if (mapKey === undefined) return (this.#valueSlot = { full: this.#valueKey, entry: undefined });
    const memo = (this.#mapSlots ??= new Map());
    const known = memo.get(mapKey);
    if (known !== undefined) return known;
    // A map entry's key is the value's key followed by the UTF-8 bytes of mapKey (key-codec.ts).
    const slot: LiveSlot = { full: this.#valueKey + latin1OfUtf8(mapKey), entry: undefined };
    if (memo.size < MAP_KEY_MEMO) memo.set(mapKey, slot);
    return slot;
  }

  read(mapKey: string | undefined): Promise<unknown | undefined> {
    const entry = this.#entry(mapKey);
    return entry instanceof Promise ? entry.then((e) => this.#out(e, mapKey)) : Promise.resolve(this.#out(entry, mapKey));
  }

  /** The live entry of the value or map entry, loaded from the stored bytes when not in memory. */
  #entry(mapKey: string | undefined): LiveEntry | Promise<LiveEntry> {
    const slot = this.#slot(mapKey);
    const known = slot.entry;
    if (known !== undefined && known.held) return known;
    const live = this.#scope.backend.liveGet(slot.full);
    if (live !== undefined) return (slot.entry = live);
    const resets = this.#scope.backend.liveResets;
    const stored = this.#scope.backend.readStored(slot.full);
    if (stored instanceof Promise) return stored.then((bytes) => this.#load(slot, mapKey, bytes, resets));
    return this.#load(slot, mapKey, stored, resets);
  }

  /**
   * Appends to a list value. With the default serializer only the added values are copied in: the
   * stored array is never handed to user code, so the new array shares its elements (a copy of the
   * whole list in and out made each add cost the length of the list). A user serializer copies by
   * a round trip of the whole value, so its lists are read, extended and written back.
   */
  async append(values: readonly unknown[]): Promise<void> {
    if (values.length === 0) return;
    if (this.#codec.copy !== copyStateValue) {
      const current = (await this.read(undefined)) as unknown[] | undefined;
      this.write(undefined, current === undefined ? [...values] : [...current, ...values]);
      return;
    }
    const entry = this.#entry(undefined);
    const current = this.#current(entry instanceof Promise ? await entry : entry, undefined) as unknown[] | undefined;
    const added = values.map(copyStateValue);
    this.#writeOwned(undefined, current === undefined ? added : current.concat(added));
  }

  #load(slot: LiveSlot, mapKey: string | undefined, stored: Buffer | null, resets: number): LiveEntry {
    const ttlMs = this.#ttlMs;
    let value: unknown;
    let time = 0;
    if (stored !== null) {
      if (ttlMs !== undefined) time = stored.length < TTL_HEADER_BYTES ? Number.NEGATIVE_INFINITY : stored.readDoubleBE(0);
      value = stored.length < (ttlMs === undefined ? 0 : TTL_HEADER_BYTES) ? undefined : this.#serializer.decode(payloadOf(stored, ttlMs));
    }
    const entry = this.#scope.backend.liveLoad(slot.full, mapKey === undefined ? undefined : this.#valueKey, this.#codec, value, time, stored === null ? 0 : stored.length, resets);
    if (entry.held) slot.entry = entry;
    return entry;
  }

  /** The value handed to user code: a copy, or undefined when absent or expired (then deleted). */
  #out(entry: LiveEntry, mapKey: string | undefined): unknown {
    const value = this.#current(entry, mapKey);
    return value === undefined ? undefined : this.#codec.copy(value);
  }

  /** The stored value itself (never for user code), or undefined when absent or expired (then deleted). */
  #current(entry: LiveEntry, mapKey: string | undefined): unknown {
    const value = entry.value;
    if (value === undefined) return undefined;
    if (this.#ttlMs !== undefined && entry.time + this.#ttlMs <= this.#scope.clock()) {
      this.remove(mapKey);
      return undefined;
    }
    return value;
  }

  write(mapKey: string | undefined, value: unknown): void {
    this.#writeOwned(mapKey, this.#codec.copy(value));
  }

  /** Writes a value no user code holds (a copy, or an array of copies): kept as it is. */
  #writeOwned(mapKey: string | undefined, value: unknown): void {
    const { backend, clock } = this.#scope;
    const slot = this.#slot(mapKey);
    slot.entry = backend.liveWrite(slot.full, mapKey === undefined ? undefined : this.#valueKey, this.#codec, value, this.#ttlMs === undefined ? 0 : clock(), this.#scope.undo, slot.entry);
    this.#scope.onChange?.(mapKey === undefined ? undefined : { op: 'put', mapKey, value });
  }

  remove(mapKey: string | undefined): void {
    const slot = this.#slot(mapKey);
    slot.entry = this.#scope.backend.liveWrite(slot.full, mapKey === undefined ? undefined : this.#valueKey, this.#codec, undefined, 0, this.#scope.undo, slot.entry);
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
      const page = await backend.mapRangeBytes(stage, keyGroup, this.#name, key, { ...(from !== undefined && { from }), ...(range?.to !== undefined && { to: range.to }), limit: asked, cacheSmall: true });
      const now = ttlMs === undefined ? 0 : clock();
      let expired = 0;
      for (const [mapKey, stored] of page) {
        if (ttlMs !== undefined && isExpired(stored, ttlMs, now)) {
          // Unless a write since the page was read made it live again.
          if (backend.liveGet(this.#slot(mapKey).full)?.dirty !== true) this.remove(mapKey);
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
}

/** The latin1 string of a string's UTF-8 bytes: the string itself when it is ASCII. */
function latin1OfUtf8(s: string): string {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.from(s, 'utf8').toString('latin1');
  return s;
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
  const append = (values: readonly unknown[]): Promise<void> => cell.append(values);
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
