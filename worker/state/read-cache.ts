// The state backend's cache of committed (RocksDB) reads: an LRU of values by encoded key, with
// null for "absent", and whole maps by map prefix (a tenth of the entries: maps are fewer and
// larger; evicted by second chance). Both are keyed by latin1 strings of encoded state keys.
//
// The epoch guards against stale fills: it is bumped whenever RocksDB or the cache changes under
// reads in flight, and a read that started in an older epoch may have seen the old value, so it
// must not fill the cache with it (fill only if `epoch` is unchanged since the read began).
import type { Entry, Overlay } from './overlay.ts';
import { KeptIterator } from './kept-iterator.ts';

/** Map prefixes each hint set keeps at most (~0.5 MB). */
const MAP_HINTS = 4096;

function note(hints: Set<string>, prefix: string): void {
  if (hints.size >= MAP_HINTS) hints.clear();
  hints.add(prefix);
}

interface CachedMap {
  entries: Array<[string, Buffer]>;
  /** Second-chance bit: set by a hit, cleared by an eviction sweep that passes over the map. */
  used: boolean;
}

export class ReadCache {
  /** LRU (Map insertion order) of committed values; null caches "absent". */
  readonly #values = new Map<string, Entry>();
  /**
   * Committed maps: map prefix (latin1) → its entries in key order. Evicted by second chance, not
   * kept in LRU order: a hit sets a bit instead of moving the map (a delete and a set per hit were
   * ~7 % of a BatchGet's CPU), and eviction passes over maps whose bit is set, clearing it.
   */
  readonly #maps = new Map<string, CachedMap>();
  /**
   * Hints for range reads of maps not cached (merged-reads.ts, smallCommittedMap), each forgotten
   * wholesale when it grows past MAP_HINTS: maps range-read once since (the next range read reads
   * the map whole), and maps found too large to cache whole (their range reads go to RocksDB
   * without scanning them first).
   */
  readonly #rangeReadOnce = new Set<string>();
  readonly #largeMaps = new Set<string>();
  readonly #valueCapacity: number;
  readonly #mapCapacity: number;
  /** Eviction's iterators over #values and #maps, kept between evictions (kept-iterator.ts). */
  readonly #eldestValue = new KeptIterator(() => this.#values.keys());
  readonly #mapHand = new KeptIterator(() => this.#maps.entries());
  #epoch = 0;

  constructor(entries: number) {
    this.#valueCapacity = entries;
    this.#mapCapacity = Math.ceil(entries / 10);
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** A cached committed value (and marks it recently used), or undefined when not cached. */
  getValue(key: string): Entry | undefined {
    const cached = this.#values.get(key);
    if (cached !== undefined) {
      this.#values.delete(key);
      this.#values.set(key, cached);
    }
    return cached;
  }

  setValue(key: string, value: Entry): void {
    const capacity = this.#valueCapacity;
    if (capacity === 0) return;
    if (this.#values.has(key)) this.#values.delete(key);
    else if (this.#values.size >= capacity) this.#evictValue();
    this.#values.set(key, value);
  }

  /**
   * Drops the least recently used value. Every slot before the kept iterator is empty (values
   * evicted, or moved to the end by a hit), so its next value is the eldest.
   */
  #evictValue(): void {
    const eldest = this.#eldestValue.next();
    if (eldest !== undefined) this.#values.delete(eldest);
  }

  /** A cached committed map (and marks it recently used), or undefined when not cached. */
  getMap(prefix: string): Array<[string, Buffer]> | undefined {
    const cached = this.#maps.get(prefix);
    if (cached === undefined) return undefined;
    cached.used = true;
    return cached.entries;
  }

  /** Caches a map read in `epoch`, unless RocksDB changed since (then it may mix two states). */
  setMap(prefix: string, entries: Array<[string, Buffer]>, epoch: number): void {
    const capacity = this.#mapCapacity;
    if (epoch !== this.#epoch || capacity === 0) return;
    const cached = this.#maps.get(prefix);
    if (cached !== undefined) {
      cached.entries = entries;
      return;
    }
    if (this.#maps.size >= capacity) this.#evictMap();
    this.#maps.set(prefix, { entries, used: false });
  }

  /** True when the map was range-read once before (and forgets it); false notes this read. */
  rangeReadBefore(prefix: string): boolean {
    if (this.#rangeReadOnce.delete(prefix)) return true;
    note(this.#rangeReadOnce, prefix);
    return false;
  }

  isLargeMap(prefix: string): boolean {
    return this.#largeMaps.has(prefix);
  }

  noteLargeMap(prefix: string): void {
    note(this.#largeMaps, prefix);
  }

  /** Drops the eldest map not used since the sweep last passed it; maps it passes go to the back. */
  #evictMap(): void {
    for (;;) {
      const next = this.#mapHand.next();
      if (next === undefined) return;
      const [prefix, cached] = next;
      this.#maps.delete(prefix);
      if (!cached.used) return;
      cached.used = false;
      this.#maps.set(prefix, cached);
    }
  }

  /** RocksDB changed: reads in flight must not fill the cache. */
  bumpEpoch(): void {
    this.#epoch++;
  }

  /** Drops everything (a rollback). */
  clear(): void {
    this.#values.clear();
    this.#maps.clear();
    this.#eldestValue.reset();
    this.#mapHand.reset();
    this.#epoch++;
  }

  /** Drops every value and map under a key prefix (a key group deleted or imported). */
  dropPrefix(prefix: string): void {
    this.#epoch++;
    for (const cached of this.#values.keys()) if (cached.startsWith(prefix)) this.#values.delete(cached);
    for (const cached of this.#maps.keys()) if (cached.startsWith(prefix)) this.#maps.delete(cached);
  }

  /**
   * A delta reached RocksDB: cached values it changed take their new value, and cached maps it
   * changed take its entries of them (the overlay's `mapIndex`, read only when maps are cached:
   * map prefix → the full keys the delta wrote under it; a key without an entry was undone). A map
   * read under steady writes stays cached: dropping it at every commit made each feature read of a
   * busy entity scan RocksDB again, and a scan that outlasts the next commit may not fill the cache
   * (measured in docs/BENCHMARKS.md).
   */
  applyCommitted(overlay: Overlay): void {
    const entries = overlay.entries;
    for (const [key, value] of entries) if (this.#values.has(key)) this.#values.set(key, value);
    if (this.#maps.size === 0) return;
    for (const [mapPrefix, keys] of overlay.mapIndex) {
      const cached = this.#maps.get(mapPrefix);
      // A new array: a reader may still hold the old one.
      if (cached !== undefined) cached.entries = withChanges(cached.entries, keys, entries);
    }
  }
}

/** A map's entries (sorted by full key) with `keys`' entries applied: a Buffer puts, null deletes. */
export function withChanges(map: ReadonlyArray<[string, Buffer]>, keys: ReadonlySet<string>, entries: ReadonlyMap<string, Entry>): Array<[string, Buffer]> {
  const changed: string[] = [];
  for (const key of keys) if (entries.get(key) !== undefined) changed.push(key);
  // latin1 strings compare code unit by code unit: RocksDB's byte order, the order of the map.
  changed.sort();
  const out: Array<[string, Buffer]> = [];
  let next = 0;
  const put = (key: string): void => {
    const value = entries.get(key)!;
    if (value !== null) out.push([key, value]);
  };
  for (const entry of map) {
    while (next < changed.length && changed[next]! < entry[0]) put(changed[next++]!);
    if (next < changed.length && changed[next] === entry[0]) put(changed[next++]!);
    else out.push(entry);
  }
  while (next < changed.length) put(changed[next++]!);
  return out;
}
