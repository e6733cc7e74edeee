// Range reads of the latest view (docs/ARCHITECTURE.md, "State"): the overlays' entries of one
// map, merged over the committed entries RocksDB holds, in key order, tombstones hiding what they
// delete. The caller flushes the live values first and gives the merged overlay entries
// (DeltaChain.mergedMap; undefined for the committed view or when no overlay has the map).
import type { CommittedStore } from './committed-store.ts';
import { smallestLiveKeys, type Entry } from './overlay.ts';
import { SCAN_CAPACITY } from './rocksdb.ts';
import { decodeShared } from './value-codec.ts';

const EMPTY = Buffer.alloc(0);

/**
 * The live entries of the map under `prefix` whose full key lies in [lower, upper), at most
 * limit, in key order, as (mapKey, stored bytes), RocksDB scanned for the committed ones (a map
 * the map cache holds is merged by mergeCachedRange instead).
 */
export async function mergedMapRange(
  store: CommittedStore,
  merged: Map<string, Entry> | undefined,
  prefix: Buffer,
  lower: Buffer,
  upper: Buffer,
  limit: number,
): Promise<Array<[string, Buffer]>> {
  // latin1 strings compare code unit by code unit, which is byte order: the order of RocksDB.
  // Only the smallest `limit` live overlay entries can be in the answer: a partial selection, so
  // a small page of a large map (timers of a key group) does not sort the whole overlay.
  const overlayKeys = merged === undefined ? [] : smallestLiveKeys(merged, lower.toString('latin1'), upper.toString('latin1'), limit);
  const out: Array<[string, Buffer]> = [];
  const emitOverlay = (full: string): void => {
    out.push([mapKeyOf(full, prefix.length), merged!.get(full)!]);
  };
  let next = 0;
  for await (const { key: stored, value } of store.iterator({ gte: lower, lt: upper }, { capacity: Math.min(SCAN_CAPACITY, limit + 1), values: true })) {
    const full = stored.toString('latin1');
    while (next < overlayKeys.length && overlayKeys[next]! < full && out.length < limit) emitOverlay(overlayKeys[next++]!);
    if (out.length >= limit) return out;
    // An overlay entry (live, emitted from the overlay side, or a tombstone) hides the stored one.
    if (merged !== undefined && merged.has(full)) continue;
    if (value !== null) out.push([stored.toString('utf8', prefix.length), value]);
    if (out.length >= limit) return out;
  }
  while (next < overlayKeys.length && out.length < limit) emitOverlay(overlayKeys[next++]!);
  return out;
}

/**
 * mergedMapRange from a whole map's committed entries (the map cache) instead of RocksDB: the
 * live entries whose full key (latin1) lies in [lower, upper), at most limit, in key order.
 * Synchronous: StateBackend.mapEntriesNow answers a cached map without a promise.
 */
export function mergeCachedRange(merged: Map<string, Entry> | undefined, committed: ReadonlyArray<[string, Buffer]>, prefixLength: number, lower: string, upper: string, limit: number): Array<[string, Buffer]> {
  const overlayKeys = merged === undefined ? [] : smallestLiveKeys(merged, lower, upper, limit);
  const out: Array<[string, Buffer]> = [];
  const emitOverlay = (full: string): void => {
    out.push([mapKeyOf(full, prefixLength), merged!.get(full)!]);
  };
  // The first committed entry at or after lower.
  let first = 0;
  let end = committed.length;
  while (first < end) {
    const middle = (first + end) >>> 1;
    if (committed[middle]![0] < lower) first = middle + 1;
    else end = middle;
  }
  let next = 0;
  for (let i = first; i < committed.length && out.length < limit; i++) {
    const [full, value] = committed[i]!;
    if (full >= upper) break;
    while (next < overlayKeys.length && overlayKeys[next]! < full && out.length < limit) emitOverlay(overlayKeys[next++]!);
    if (out.length >= limit) break;
    // An overlay entry (live, emitted from the overlay side, or a tombstone) hides the stored one.
    if (merged !== undefined && merged.has(full)) continue;
    out.push([mapKeyOf(full, prefixLength), value]);
  }
  while (next < overlayKeys.length && out.length < limit) emitOverlay(overlayKeys[next++]!);
  return out;
}

/** Maps read whole into the cache by a range read have at most this many entries. */
export const SMALL_MAP_ENTRIES = 1024;

/**
 * A map's committed entries read whole into the map cache, on its second range read since it was
 * last cached and when it has at most SMALL_MAP_ENTRIES: one scan, after which its range reads are
 * answered from memory (a scan costs ~5 µs an entry, several range reads of the map). Undefined
 * otherwise: a map range-read once (a key seen once) is not scanned whole, and a larger map is
 * remembered so that its range reads do not scan it again.
 */
export async function smallCommittedMap(store: CommittedStore, prefix: string): Promise<Array<[string, Buffer]> | undefined> {
  const cache = store.cache;
  if (cache.isLargeMap(prefix) || !cache.rangeReadBefore(prefix)) return undefined;
  const epoch = cache.epoch;
  const entries: Array<[string, Buffer]> = [];
  for await (const { key, value } of store.scan(Buffer.from(prefix, 'latin1'), SMALL_MAP_ENTRIES + 1, true)) {
    if (value === null) continue;
    if (entries.length === SMALL_MAP_ENTRIES) {
      cache.noteLargeMap(prefix);
      return undefined;
    }
    entries.push([key.toString('latin1'), value]);
  }
  // Kept only if RocksDB did not change during the scan (the entries could mix two states).
  cache.setMap(prefix, entries, epoch);
  return entries;
}

const NON_ASCII = /[\u0080-\u00ff]/;

/** The mapKey of a full key (a latin1 string of bytes): its UTF-8 text after the prefix. ASCII is the same string. */
function mapKeyOf(full: string, prefixLength: number): string {
  const rest = full.slice(prefixLength);
  return NON_ASCII.test(rest) ? Buffer.from(rest, 'latin1').toString('utf8') : rest;
}

/**
 * The greatest live key k with prefix <= k <= bound (both latin1; entries written with
 * indexPrefix === prefix), and its value: one reverse seek in RocksDB, merged with the overlays'
 * indexed entries `merged`; tombstones hide what they delete.
 */
export async function latestAtOrBefore(store: CommittedStore, merged: Map<string, Entry> | undefined, prefix: string, bound: string): Promise<{ key: string; value: Buffer } | undefined> {
  let best: { key: string; value: Buffer } | undefined;
  if (merged !== undefined) {
    for (const [key, value] of merged) {
      if (value !== null && key <= bound && (best === undefined || key > best.key)) best = { key, value };
    }
  }
  const gte = Buffer.from(prefix, 'latin1');
  let upper: { lte?: Buffer; lt?: Buffer } = { lte: Buffer.from(bound, 'latin1') };
  // A committed version deleted by an overlay tombstone: look further back (rare, bounded by
  // the tombstones, which retention cleanup writes only for superseded versions).
  for (;;) {
    let found: { key: Buffer; value: Buffer | null } | undefined;
    for await (const entry of store.iterator({ gte, ...upper }, { capacity: 1, values: true, reverse: true, limit: 1 })) {
      found = entry;
      break;
    }
    if (found === undefined) return best;
    const key = found.key.toString('latin1');
    if (best !== undefined && best.key >= key) return best;
    if (merged?.get(key) === null) {
      upper = { lt: found.key };
      continue;
    }
    return { key, value: found.value ?? EMPTY };
  }
}

/** A map read as one object; undefined: no entries. */
export type MapObject = Record<string, unknown> | undefined;

export const objectOf = (entries: Array<[string, unknown]>): MapObject => (entries.length === 0 ? undefined : Object.fromEntries(entries));

/** The object of a cached committed map (an array replaced, never changed, when the map changes). */
const committedObjects = new WeakMap<ReadonlyArray<[string, Buffer]>, MapObject>();
/** The objects committedObject handed out: shared and never changed, so what is derived from one may be kept with it. */
const sharedObjects = new WeakSet<object>();

export function committedObject(committed: ReadonlyArray<[string, Buffer]>, prefixLength: number): MapObject {
  if (committedObjects.has(committed)) return committedObjects.get(committed);
  const object = objectOf(committed.map(([full, value]) => [mapKeyOf(full, prefixLength), decodeShared(value)]));
  committedObjects.set(committed, object);
  if (object !== undefined) sharedObjects.add(object);
  return object;
}

/** True for a map object of committedObject: it never changes (a response may keep its encoding). */
export function isSharedMapObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && sharedObjects.has(value);
}
