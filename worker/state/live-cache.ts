// Keyed state as live objects (docs/ARCHITECTURE.md, "State"): the working set of the state
// handles' values and map entries, DECODED, by encoded key (the latin1 string of the overlay).
//
// - A read that hits decodes nothing; a miss reads the stored bytes (overlays, read cache,
//   RocksDB) once and keeps the decoded value, clean.
// - A write replaces the entry's value and marks it dirty; nothing is encoded. The dirty entries
//   are encoded once each when they are flushed into the active overlay: at the freeze of a
//   checkpoint (StateBackend.freeze), or when something reads state as bytes (the query path, map
//   ranges): so every reader of bytes sees the same state as the handles do. A read of bytes
//   flushes only what it reads: one entry (flushOne) or one map's entries (flushMap).
// - Eviction takes only clean entries, least recently used first (a second-chance sweep: a hit
//   sets a bit instead of moving the entry). Dirty entries stay until flushed; their approximate
//   bytes count against the overlay's bound (maxOverlayBytes asks for an early checkpoint).
//
// Values are handed out and taken in by copy (copyStateValue): user code that mutates an object it
// got from get() or gave to put() changes nothing in state until it calls put() again. That is the
// contract state had when every read decoded fresh bytes and every write encoded them, and it
// keeps a failing record's undo exact (an entry's previous value is never shared with user code).
import { unpackValue, packValueView } from './value-codec.ts';
import type { Overlay } from './overlay.ts';
import type { StateUndoLog } from './state-undo.ts';
import { KeptIterator } from './kept-iterator.ts';

/** How a live entry of one state becomes stored bytes. */
export interface LiveCodec {
  /** The stored bytes of a present value written at `time` (TTL write time): a fresh Buffer. */
  encode(value: unknown, time: number): Buffer;
}

export class LiveEntry {
  /** The decoded value; undefined: absent (a tombstone once flushed dirty). */
  value: unknown;
  /** The write time kept for TTL (0 without TTL). */
  time: number;
  dirty = false;
  /** Second-chance bit: set by a hit, cleared by an eviction sweep that passes over the entry. */
  used = true;
  /** Approximate stored bytes (exact once loaded or flushed). */
  size: number;
  /**
   * True while the cache holds this entry under its key. A state handle keeps the entries of its
   * key (LiveSlot) and uses one while it is held, without looking its key up (a lookup in a map of
   * every cached key, cold in the CPU's caches, was ~10 % of a worker's CPU).
   */
  held = false;

  constructor(
    readonly key: string,
    /**
     * The map prefix of a map entry's key (the map's encoded key: one string shared by the map's
     * entries, so that indexing by it hashes nothing new); undefined for a value.
     */
    readonly mapPrefix: string | undefined,
    readonly codec: LiveCodec,
    value: unknown,
    time: number,
    size: number,
  ) {
    this.value = value;
    this.time = time;
    this.size = size;
  }
}

/**
 * An encoded key and its live entry as last seen, kept by whoever reads and writes that key again
 * (a state handle, a keyed context's feature event time): the entry is used while it is held.
 */
export interface LiveSlot {
  readonly full: string;
  entry: LiveEntry | undefined;
}

export class LiveCache {
  readonly #entries = new Map<string, LiveEntry>();
  /** Entries made dirty since the last flush (an entry may be clean again: undone or invalidated). */
  #dirty: LiveEntry[] = [];
  /**
   * The map entries of #dirty by their map's prefix, so that a read of one map as bytes flushes
   * that map alone (flushMap). A full flush at every such read (a feature Get, a timer page)
   * encoded every key the job had changed since the last read: under queries or timers, once per
   * record instead of once per checkpoint. Built by the first such read after a flush and kept
   * from then on: a job nobody reads as bytes does not pay for it on every write.
   */
  #dirtyMaps: Map<string, LiveEntry[]> | undefined = undefined;
  #dirtyBytes = 0;
  readonly #capacity: number;
  /** The eviction sweep's hand (#evict). */
  readonly #hand = new KeptIterator(() => this.#entries.values());
  /**
   * Bumped whenever entries change under a record other than by its own writes (a flush into the
   * overlay, a rollback, an invalidation): a record whose live writes span it cannot be undone exactly.
   */
  generation = 0;
  /** Bumped when entries are dropped wholesale (a rollback, a key group dropped or imported): a read in flight across it must not fill the cache. */
  resets = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  get dirtyCount(): number {
    return this.#dirty.length;
  }

  /** Approximate bytes of the dirty entries (keys and values), not yet in the overlay. */
  get dirtyBytes(): number {
    return this.#dirtyBytes;
  }

  get(key: string): LiveEntry | undefined {
    const entry = this.#entries.get(key);
    if (entry !== undefined) entry.used = true;
    return entry;
  }

  /**
   * A value read from storage, kept clean. When a write got there first (the read was in flight),
   * the entry already there wins: it is newer.
   */
  load(key: string, mapPrefix: string | undefined, codec: LiveCodec, value: unknown, time: number, size: number): LiveEntry {
    const existing = this.#entries.get(key);
    if (existing !== undefined) return existing;
    const entry = new LiveEntry(key, mapPrefix, codec, value, time, size);
    if (this.#capacity > 0) {
      this.#entries.set(key, entry);
      entry.held = true;
      if (this.#entries.size > this.#capacity) this.#evict();
    }
    return entry;
  }

  /**
   * Writes a value (undefined: delete) and marks the entry dirty; the undo log notes what it
   * replaced. known: the key's entry as the caller last saw it, used when still held. Returns the
   * key's entry.
   */
  write(key: string, mapPrefix: string | undefined, codec: LiveCodec, value: unknown, time: number, undo?: StateUndoLog, known?: LiveEntry): LiveEntry {
    let entry = known !== undefined && known.held ? known : this.#entries.get(key);
    const created = entry === undefined;
    if (entry === undefined) {
      entry = new LiveEntry(key, mapPrefix, codec, undefined, 0, 0);
      this.#entries.set(key, entry);
      entry.held = true;
    }
    undo?.noteLive(this, entry, !created);
    entry.value = value;
    entry.time = time;
    entry.used = true;
    if (!entry.dirty) {
      entry.dirty = true;
      if (entry.size === 0) entry.size = estimateSize(value);
      this.#dirty.push(entry);
      this.#dirtyBytes += key.length + entry.size;
      if (mapPrefix !== undefined && this.#dirtyMaps !== undefined) indexDirty(this.#dirtyMaps, entry);
    }
    // After marking it dirty: the sweep never takes the entry being written.
    if (created && this.#entries.size > this.#capacity) this.#evict();
    return entry;
  }

  /** Takes back a write noted by an undo log (newest first): the entry as it was, or gone when the write created it. */
  restore(entry: LiveEntry, existed: boolean, value: unknown, time: number, dirty: boolean): void {
    if (this.#entries.get(entry.key) !== entry) return;
    if (!existed) {
      this.#entries.delete(entry.key);
      entry.held = false;
      if (entry.dirty) this.#dirtyBytes -= entry.key.length + entry.size;
      entry.dirty = false;
      return;
    }
    entry.value = value;
    entry.time = time;
    if (entry.dirty && !dirty) this.#dirtyBytes -= entry.key.length + entry.size;
    entry.dirty = dirty;
  }

  /** Encodes every dirty entry once into the overlay; they stay cached, clean. */
  flush(overlay: Overlay): void {
    const dirty = this.#dirty;
    if (dirty.length === 0) return;
    this.#dirty = [];
    this.#dirtyMaps = undefined;
    this.#dirtyBytes = 0;
    this.generation++;
    // Into an empty overlay the dirty keys are all new (an entry is dirty under one key, and one
    // listed twice is flushed once): no lookup of what each replaces.
    const fresh = overlay.entries.size === 0;
    for (const entry of dirty) {
      if (!entry.dirty) continue;
      this.#flushEntry(entry, overlay, fresh);
    }
    // What was dirty may be evicted now: back to the capacity (a full turn of the sweep at most).
    if (this.#entries.size > this.#capacity) this.#evict(2 * this.#entries.size);
  }

  /**
   * Encodes the dirty entries of one map (the map prefix of its entries' keys) into the overlay:
   * a read of that map as bytes. The other dirty entries stay as they are.
   */
  flushMap(prefix: string, overlay: Overlay): void {
    const index = (this.#dirtyMaps ??= this.#indexDirtyMaps());
    const entries = index.get(prefix);
    if (entries === undefined) return;
    index.delete(prefix);
    let flushed = false;
    for (const entry of entries) {
      // Clean again since (undone, invalidated, flushed alone): nothing to encode.
      if (!entry.dirty) continue;
      this.#dirtyBytes -= entry.key.length + entry.size;
      this.#flushEntry(entry, overlay);
      flushed = true;
    }
    if (flushed) this.generation++;
  }

  /** Encodes one dirty entry into the overlay (a byte-level read of its key). */
  flushOne(entry: LiveEntry, overlay: Overlay): void {
    if (!entry.dirty) return;
    this.generation++;
    this.#dirtyBytes -= entry.key.length + entry.size;
    this.#flushEntry(entry, overlay);
  }

  #indexDirtyMaps(): Map<string, LiveEntry[]> {
    const index = new Map<string, LiveEntry[]>();
    for (const entry of this.#dirty) if (entry.dirty && entry.mapPrefix !== undefined) indexDirty(index, entry);
    return index;
  }

  #flushEntry(entry: LiveEntry, overlay: Overlay, fresh = false): void {
    entry.dirty = false;
    const bytes = entry.value === undefined ? null : entry.codec.encode(entry.value, entry.time);
    entry.size = bytes === null ? 0 : bytes.length;
    if (fresh) overlay.setNew(entry.key, bytes, entry.mapPrefix);
    else overlay.set(entry.key, bytes, entry.mapPrefix);
  }

  /** Forgets one key (a byte-level write replaced it); a dirty value is dropped: the write is newer. */
  invalidate(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    entry.held = false;
    if (entry.dirty) this.#dirtyBytes -= key.length + entry.size;
    entry.dirty = false;
    this.generation++;
  }

  /** Forgets every key under a prefix (a key group dropped or imported, a map cleared); dirty values are dropped. */
  dropPrefix(prefix: string): void {
    for (const [key, entry] of this.#entries) {
      if (!key.startsWith(prefix)) continue;
      this.#entries.delete(key);
      entry.held = false;
      if (entry.dirty) this.#dirtyBytes -= key.length + entry.size;
      entry.dirty = false;
    }
    this.generation++;
    this.resets++;
  }

  /** Forgets everything (a rollback: dirty values are uncommitted, clean ones may be too). */
  clear(): void {
    for (const entry of this.#dirty) entry.dirty = false;
    for (const entry of this.#entries.values()) entry.held = false;
    this.#entries.clear();
    this.#hand.reset();
    this.#dirty = [];
    this.#dirtyMaps = undefined;
    this.#dirtyBytes = 0;
    this.generation++;
    this.resets++;
  }

  // A clock over insertion order: the hand passes a dirty entry, clears the bit of one used since
  // it last passed, and evicts a clean unused one. The hand is kept from one sweep to the next
  // (kept-iterator.ts): a fresh iterator per sweep made a cache smaller than the working set spend
  // most of its CPU here. The sweep is bounded: when nearly everything is dirty the cache outgrows
  // its capacity until the next flush (dirty bytes are bounded by the early checkpoint).
  #evict(budget = 2 * (this.#entries.size - this.#capacity) + 64): void {
    let excess = this.#entries.size - this.#capacity;
    // Nothing to take while (nearly) every entry is dirty: do not walk them on every insert.
    if (excess <= 0 || this.#entries.size - this.#dirty.length < excess) return;
    while (excess > 0 && budget-- > 0) {
      const entry = this.#hand.next();
      if (entry === undefined) return;
      if (entry.dirty) continue;
      if (entry.used) {
        entry.used = false;
        continue;
      }
      this.#entries.delete(entry.key);
      entry.held = false;
      excess--;
    }
  }
}

/** Lists a dirty map entry under its map's prefix. */
function indexDirty(index: Map<string, LiveEntry[]>, entry: LiveEntry): void {
  const entries = index.get(entry.mapPrefix!);
  if (entries === undefined) index.set(entry.mapPrefix!, [entry]);
  else entries.push(entry);
}

/** A rough size of a value not encoded yet (the flush measures it exactly). */
function estimateSize(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return value.length + 5;
    case 'object':
      if (value === null) return 1;
      return Array.isArray(value) ? 16 + 16 * value.length : 64;
    default:
      return 9;
  }
}

/**
 * A copy of a state value with the msgpack round trip's meaning (what a decode of its encoding
 * gives): plain objects and arrays are copied member by member, primitives kept; anything else
 * (Date, Map, class instances, typed arrays, bigint) goes through msgpack itself.
 */
export function copyStateValue(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return value;
    case 'number':
      // msgpack has no -0.
      return value === 0 ? 0 : value;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) {
        const out = new Array<unknown>(value.length);
        for (let i = 0; i < value.length; i++) out[i] = copyStateValue(value[i]);
        return out;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto === Object.prototype || proto === null) {
        const out: Record<string, unknown> = {};
        for (const k of Object.keys(value)) {
          const member = (value as Record<string, unknown>)[k];
          out[k] = typeof member === 'function' ? undefined : copyStateValue(member);
        }
        return out;
      }
      return unpackValue(packValueView(value));
    }
    default:
      return unpackValue(packValueView(value));
  }
}
