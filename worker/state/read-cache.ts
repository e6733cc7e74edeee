// The state backend's cache of committed (RocksDB) reads: an LRU of values by encoded key, with
// null for "absent", and an LRU of whole maps by map prefix (a tenth of the entries: maps are
// fewer and larger). Both are keyed by latin1 strings of encoded state keys.
//
// The epoch guards against stale fills: it is bumped whenever RocksDB or the cache changes under
// reads in flight, and a read that started in an older epoch may have seen the old value, so it
// must not fill the cache with it (fill only if `epoch` is unchanged since the read began).
import type { Entry } from './overlay.ts';

export class ReadCache {
  /** LRU (Map insertion order) of committed values; null caches "absent". */
  readonly #values = new Map<string, Entry>();
  /** LRU of committed maps: map prefix (latin1) → its entries in key order. */
  readonly #maps = new Map<string, Array<[string, Buffer]>>();
  readonly #valueCapacity: number;
  readonly #mapCapacity: number;
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
    else if (this.#values.size >= capacity) {
      const eldest = this.#values.keys().next();
      if (eldest.done !== true) this.#values.delete(eldest.value);
    }
    this.#values.set(key, value);
  }

  /** A cached committed map (and marks it recently used), or undefined when not cached. */
  getMap(prefix: string): Array<[string, Buffer]> | undefined {
    const cached = this.#maps.get(prefix);
    if (cached !== undefined) {
      this.#maps.delete(prefix);
      this.#maps.set(prefix, cached);
    }
    return cached;
  }

  /** Caches a map read in `epoch`, unless RocksDB changed since (then it may mix two states). */
  setMap(prefix: string, entries: Array<[string, Buffer]>, epoch: number): void {
    const capacity = this.#mapCapacity;
    if (epoch !== this.#epoch || capacity === 0) return;
    if (this.#maps.size >= capacity) {
      const eldest = this.#maps.keys().next();
      if (eldest.done !== true) this.#maps.delete(eldest.value);
    }
    this.#maps.set(prefix, entries);
  }

  /** RocksDB changed: reads in flight must not fill the cache. */
  bumpEpoch(): void {
    this.#epoch++;
  }

  /** Drops everything (a rollback). */
  clear(): void {
    this.#values.clear();
    this.#maps.clear();
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
   * changed are dropped (its map entries are indexed by their map's prefix).
   */
  applyCommitted(entries: ReadonlyMap<string, Entry>, mapPrefixes: Iterable<string>): void {
    for (const [key, value] of entries) if (this.#values.has(key)) this.#values.set(key, value);
    if (this.#maps.size > 0) for (const mapPrefix of mapPrefixes) this.#maps.delete(mapPrefix);
  }
}
