// The state backend of one job on one worker: a write-back cache over RocksDB, aligned with
// checkpoints (docs/ARCHITECTURE.md, "State"). Writes go to an in-memory overlay; a barrier freezes it
// into a delta; only a completed checkpoint writes its deltas to RocksDB, in one batch. RocksDB
// therefore always holds exactly the last completed checkpoint, and a rollback is a matter of
// dropping memory.

import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyGroupEntries } from '../../core/checkpoint-format.ts';
import { EddyError, InvalidArgumentError } from '../../core/errors.ts';
import { decodeValue, encodeValue, unpackValue } from './value-codec.ts';
import { decodeKeyGroupPrefix, encodedString, encodeStateKey, keyGroupPrefix, lastMapPrefixLength, prefixUpperBound } from './key-codec.ts';
import { Overlay, smallestLiveKeys, type Entry } from './overlay.ts';
import { ReadBatcher } from './read-batcher.ts';
import { ReadCache } from './read-cache.ts';
import { LiveCache, LiveEntry, type LiveCodec } from './live-cache.ts';
import type { StateUndoLog } from './state-undo.ts';
import { PROBE_CAPACITY, RocksDB, SCAN_CAPACITY, type RocksDatabase, type RocksIterator } from './rocksdb.ts';

export { decodeKeyGroupPrefix, encodeStateKey, keyGroupPrefix } from './key-codec.ts';

export type StateView = 'latest' | 'committed';

export interface StateBackendOptions {
  /** Directory of this job's RocksDB. Created if missing. */
  path: string;
  /** Entries of committed values kept in the read cache (0 disables it). @default 100_000 */
  readCacheEntries?: number;
  /**
   * Decoded values kept in the live cache of the state handles (worker/state/live-cache.ts), the
   * working set; dirty ones stay beyond it until the next freeze. @default 500_000
   */
  liveEntries?: number;
}

export interface CompiledStateBackendOptions {
  path: string;
  readCacheEntries: number;
  liveEntries: number;
}

export const DEFAULT_READ_CACHE_ENTRIES = 100_000;
/** ~250 B each with a small object value: about 125 MB when full. */
export const DEFAULT_LIVE_ENTRIES = 500_000;

export function compileStateBackendOptions(options: StateBackendOptions): CompiledStateBackendOptions {
  if (typeof options.path !== 'string' || options.path === '') throw new InvalidArgumentError('state backend path must be a non-empty string');
  const readCacheEntries = options.readCacheEntries ?? DEFAULT_READ_CACHE_ENTRIES;
  if (!Number.isSafeInteger(readCacheEntries) || readCacheEntries < 0) {
    throw new InvalidArgumentError(`readCacheEntries must be a non-negative integer, got ${String(readCacheEntries)}`);
  }
  const liveEntries = options.liveEntries ?? DEFAULT_LIVE_ENTRIES;
  if (!Number.isSafeInteger(liveEntries) || liveEntries < 0) throw new InvalidArgumentError(`liveEntries must be a non-negative integer, got ${String(liveEntries)}`);
  return { path: options.path, readCacheEntries, liveEntries };
}

type Delta = { checkpointId: number; overlay: Overlay };

export type { RocksIterator };

export class StateBackend {
  readonly #db: RocksDatabase;
  readonly #options: CompiledStateBackendOptions;
  #closed = false;
  #active = new Overlay();
  /** Frozen deltas, ascending by checkpoint id. */
  #frozen: Delta[] = [];
  #lastFrozenId = -1;
  #committedId = -1;
  #rollbacks = 0;
  readonly #cache: ReadCache;
  /** Decoded values of the state handles, written back into the active overlay at a freeze (worker/state/live-cache.ts). */
  readonly #live: LiveCache;
  readonly #reads: ReadBatcher;
  // Commits and range deletes are applied one at a time, in call order.
  #writeTail: Promise<void> = Promise.resolve();

  private constructor(db: RocksDatabase, options: CompiledStateBackendOptions) {
    this.#db = db;
    this.#options = options;
    this.#cache = new ReadCache(options.readCacheEntries);
    this.#live = new LiveCache(options.liveEntries);
    this.#reads = new ReadBatcher(db, this.#cache);
  }

  static async open(options: StateBackendOptions): Promise<StateBackend> {
    const compiled = compileStateBackendOptions(options);
    await mkdir(compiled.path, { recursive: true });
    const db = new RocksDB(compiled.path);
    await db.ready();
    return new StateBackend(db, compiled);
  }

  // --- value state

  async getValue(stage: string, keyGroup: number, state: string, key: string, view: StateView = 'latest'): Promise<unknown | undefined> {
    this.#assertOpen();
    return decodeValue(await this.#read(encodedString(stage, keyGroup, state, key, undefined), view));
  }

  putValue(stage: string, keyGroup: number, state: string, key: string, value: unknown): void {
    this.#assertOpen();
    const full = encodedString(stage, keyGroup, state, key, undefined);
    this.#live.invalidate(full);
    this.#active.set(full, encodeValue(value), undefined);
  }

  deleteValue(stage: string, keyGroup: number, state: string, key: string): void {
    this.#assertOpen();
    const full = encodedString(stage, keyGroup, state, key, undefined);
    this.#live.invalidate(full);
    this.#active.set(full, null, undefined);
  }

  // --- map state

  async getMapEntry(stage: string, keyGroup: number, state: string, key: string, mapKey: string, view: StateView = 'latest'): Promise<unknown | undefined> {
    this.#assertOpen();
    return decodeValue(await this.#read(encodedString(stage, keyGroup, state, key, mapKey), view));
  }

  putMapEntry(stage: string, keyGroup: number, state: string, key: string, mapKey: string, value: unknown): void {
    this.#assertOpen();
    const full = encodedString(stage, keyGroup, state, key, mapKey);
    this.#live.invalidate(full);
    this.#active.set(full, encodeValue(value), full.slice(0, lastMapPrefixLength()));
  }

  deleteMapEntry(stage: string, keyGroup: number, state: string, key: string, mapKey: string): void {
    this.#assertOpen();
    const full = encodedString(stage, keyGroup, state, key, mapKey);
    this.#live.invalidate(full);
    this.#active.set(full, null, full.slice(0, lastMapPrefixLength()));
  }

  /** All live entries of one key's map, ordered by the UTF-8 bytes of mapKey; overlays merged over RocksDB, tombstones hidden. */
  async mapEntries(stage: string, keyGroup: number, state: string, key: string, view: StateView = 'latest'): Promise<Array<[string, unknown]>> {
    const entries = await this.mapRangeBytes(stage, keyGroup, state, key, {}, view);
    return entries.map(([mapKey, value]) => [mapKey, unpackValue(value)]);
  }

  /**
   * The live entries of one key's map whose mapKey lies in [from, to) (UTF-8 byte order), at most
   * limit, in that order, as stored bytes (shared with the overlay or read batch: do not mutate).
   * Overlays are merged over RocksDB and tombstones hidden, as in mapEntries.
   */
  async mapRangeBytes(
    stage: string,
    keyGroup: number,
    state: string,
    key: string,
    range: { from?: string; to?: string; limit?: number },
    view: StateView = 'latest',
  ): Promise<Array<[string, Buffer]>> {
    this.#assertOpen();
    const prefix = encodeStateKey(stage, keyGroup, state, key);
    const lower = range.from === undefined ? prefix : Buffer.concat([prefix, Buffer.from(range.from, 'utf8')]);
    const upper = range.to === undefined ? prefixUpperBound(prefix) : Buffer.concat([prefix, Buffer.from(range.to, 'utf8')]);
    const limit = range.limit ?? Number.POSITIVE_INFINITY;
    const out: Array<[string, Buffer]> = [];
    if (view === 'latest') this.#flushLive();
    if (!(limit > 0) || Buffer.compare(lower, upper) >= 0) return out;
    const merged = view === 'latest' ? this.#mergedMapOverlay(prefix.toString('latin1')) : undefined;
    // latin1 strings compare code unit by code unit, which is byte order: the order of RocksDB.
    // Only the smallest `limit` live overlay entries can be in the answer: a partial selection, so
    // a small page of a large map (timers of a key group) does not sort the whole overlay.
    const overlayKeys = merged === undefined ? [] : smallestLiveKeys(merged, lower.toString('latin1'), upper.toString('latin1'), limit);
    const emitOverlay = (full: string): void => {
      out.push([Buffer.from(full, 'latin1').toString('utf8', prefix.length), merged!.get(full)!]);
    };
    let next = 0;
    if (range.from === undefined && range.to === undefined && range.limit === undefined) {
      // A whole map (a map feature's Get): its committed entries come from the map cache.
      const committed = this.#committedMap(prefix);
      for (const [full, value] of committed instanceof Promise ? await committed : committed) {
        while (next < overlayKeys.length && overlayKeys[next]! < full) emitOverlay(overlayKeys[next++]!);
        // An overlay entry (live, emitted from the overlay side, or a tombstone) hides the stored one.
        if (merged !== undefined && merged.has(full)) continue;
        out.push([Buffer.from(full, 'latin1').toString('utf8', prefix.length), value]);
      }
      while (next < overlayKeys.length) emitOverlay(overlayKeys[next++]!);
      return out;
    }
    for await (const { key: stored, value } of this.#db.iterator({ gte: lower, lt: upper }, { capacity: Math.min(SCAN_CAPACITY, limit + 1), values: true })) {
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

  // --- live values (worker/state/live-cache.ts), for the state handles

  /** The live entry of an encoded key (latin1, as stateKeyString), or undefined when not cached. */
  liveGet(key: string): LiveEntry | undefined {
    return this.#live.get(key);
  }

  /** The stored bytes of an encoded key in the latest view (overlays, read cache, RocksDB); null when absent. */
  readStored(key: string): Entry | Promise<Entry> {
    this.#assertOpen();
    return this.#read(key, 'latest');
  }

  /**
   * Keeps a decoded value read with readStored, clean; a live entry written meanwhile wins. resets:
   * liveResets when the read began; after a rollback or a key group dropped or imported since, the
   * value is returned in an entry of its own, not kept (it may be older than what is there now).
   */
  liveLoad(key: string, mapPrefixLength: number, codec: LiveCodec, value: unknown, time: number, size: number, resets: number): LiveEntry {
    if (resets !== this.#live.resets) return new LiveEntry(key, mapPrefixLength, codec, value, time, size);
    return this.#live.load(key, mapPrefixLength, codec, value, time, size);
  }

  /** See liveLoad. */
  get liveResets(): number {
    return this.#live.resets;
  }

  /**
   * Writes a decoded value (undefined: delete) of an encoded key; codec encodes it when it is
   * flushed. The cache keeps the reference: pass a value no one else holds. With an undo log, the
   * write can be taken back by undo().
   */
  liveWrite(key: string, mapPrefixLength: number, codec: LiveCodec, value: unknown, time: number, undo?: StateUndoLog): void {
    this.#assertOpen();
    this.#live.write(key, mapPrefixLength, codec, value, time, undo);
  }

  /** Entries in the live cache (for tests and the memory bound). */
  get liveEntries(): number {
    return this.#live.size;
  }

  // --- stored bytes, for state kinds with their own encoding (worker/state/state-handles.ts) and timers

  /** The stored bytes of a value (mapKey undefined) or map entry; null when absent. Synchronous when an overlay holds it. */
  readBytes(stage: string, keyGroup: number, state: string, key: string, mapKey: string | undefined, view: StateView = 'latest'): Buffer | null | Promise<Buffer | null> {
    this.#assertOpen();
    return this.#read(encodedString(stage, keyGroup, state, key, mapKey), view);
  }

  /**
   * Stores bytes as given (null deletes). The overlay keeps the reference: do not mutate them
   * afterwards. With an undo log, the write can be taken back by undo() (worker/state-undo.ts).
   */
  writeBytes(stage: string, keyGroup: number, state: string, key: string, mapKey: string | undefined, bytes: Buffer | null, undo?: StateUndoLog): void {
    this.#assertOpen();
    const full = encodedString(stage, keyGroup, state, key, mapKey);
    this.#live.invalidate(full);
    this.#active.set(full, bytes, mapKey === undefined ? undefined : full.slice(0, lastMapPrefixLength()), undo);
  }

  /**
   * Takes back the writes noted in a record's undo log, newest first, and resets it. Throws when
   * they cannot be taken back exactly (they span a checkpoint freeze or a rollback): the caller
   * then fails the task, and recovery restores the last checkpoint instead.
   */
  undo(log: StateUndoLog): void {
    this.#assertOpen();
    if (log.writes === 0) return;
    if (log.live !== undefined) {
      // A flush, rollback or invalidation since the record's first live write: its previous
      // values may already be encoded into an overlay or gone.
      if (log.live !== this.#live || log.liveGeneration !== this.#live.generation) {
        log.reset();
        throw new EddyError('INTERNAL', 'a record\'s state changes span a checkpoint freeze or rollback and cannot be undone');
      }
      const w = log.liveWrites;
      for (let i = w.length - 5; i >= 0; i -= 5) this.#live.restore(w[i] as LiveEntry, w[i + 1] as boolean, w[i + 2], w[i + 3] as number, w[i + 4] as boolean);
    }
    if (log.keys.length === 0) {
      log.reset();
      return;
    }
    if (log.spansOverlays || log.overlay !== this.#active) {
      log.reset();
      throw new EddyError('INTERNAL', 'a record\'s state changes span a checkpoint freeze or rollback and cannot be undone');
    }
    for (let i = log.keys.length - 1; i >= 0; i--) this.#active.restore(log.keys[i]!, log.previous[i]);
    log.reset();
  }

  /**
   * Committed entries of one stage's key group in key order, starting after the key `after`
   * (exclusive), at most limit: for background sweeps that do bounded work per call.
   */
  async scanCommittedKeyGroup(stage: string, keyGroup: number, after: Buffer | undefined, limit: number): Promise<Array<[Buffer, Buffer]>> {
    this.#assertOpen();
    const prefix = keyGroupPrefix(stage, keyGroup);
    // The smallest key greater than after is after followed by a zero byte.
    const lower = after === undefined ? prefix : Buffer.concat([after, Buffer.alloc(1)]);
    const out: Array<[Buffer, Buffer]> = [];
    if (limit <= 0) return out;
    for await (const { key, value } of this.#db.iterator({ gte: lower, lt: prefixUpperBound(prefix) }, { capacity: Math.min(SCAN_CAPACITY, limit), values: true })) {
      if (value !== null) out.push([key, value]);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * The committed entries of one map, in key order: from the map cache, else one RocksDB scan that
   * fills it (an iterator per map read was most of a map feature's Get, docs/BENCHMARKS.md).
   */
  #committedMap(prefix: Buffer): Array<[string, Buffer]> | Promise<Array<[string, Buffer]>> {
    const prefixString = prefix.toString('latin1');
    const cached = this.#cache.getMap(prefixString);
    if (cached !== undefined) return cached;
    return (async () => {
      const epoch = this.#cache.epoch;
      const entries: Array<[string, Buffer]> = [];
      for await (const { key, value } of this.#scan(prefix, SCAN_CAPACITY, true)) if (value !== null) entries.push([key.toString('latin1'), value]);
      // Kept only if RocksDB did not change during the scan (the entries could mix two states).
      this.#cache.setMap(prefixString, entries, epoch);
      return entries;
    })();
  }

  /** Removes every entry of one key's map (tombstones for committed ones). */
  async clearMap(stage: string, keyGroup: number, state: string, key: string): Promise<void> {
    this.#assertOpen();
    const prefix = encodeStateKey(stage, keyGroup, state, key);
    const prefixString = prefix.toString('latin1');
    // Live values become overlay entries first, then are forgotten: the tombstones below supersede them.
    this.#flushLive();
    this.#live.dropPrefix(prefixString);
    // Overlay entries are cleared at call time, so that a put issued after this call survives.
    const merged = this.#mergedMapOverlay(prefixString);
    if (merged !== undefined) for (const full of merged.keys()) this.#active.set(full, null, prefixString);
    const rollbacks = this.#rollbacks;
    const committed: string[] = [];
    for await (const { key: stored } of this.#scan(prefix, SCAN_CAPACITY, false)) {
      committed.push(stored.toString('latin1'));
    }
    // A rollback during the scan discarded this clear with everything else since the checkpoint.
    if (rollbacks !== this.#rollbacks || this.#closed) return;
    for (const full of committed) if (!this.#active.entries.has(full)) this.#active.set(full, null, prefixString);
  }

  /** True when the map has at least one live entry. */
  async hasMap(stage: string, keyGroup: number, state: string, key: string, view: StateView = 'latest'): Promise<boolean> {
    this.#assertOpen();
    const prefix = encodeStateKey(stage, keyGroup, state, key);
    if (view === 'latest') this.#flushLive();
    const merged = view === 'latest' ? this.#mergedMapOverlay(prefix.toString('latin1')) : undefined;
    if (merged !== undefined) for (const value of merged.values()) if (value !== null) return true;
    for await (const { key: stored } of this.#scan(prefix, PROBE_CAPACITY, false)) {
      // Every overlay entry left is a tombstone: a committed key counts only if none hides it.
      if (merged === undefined || !merged.has(stored.toString('latin1'))) return true;
    }
    return false;
  }

  /**
   * The keys of one state in one key group that may have a value: every key with an entry in
   * RocksDB or an overlay (tombstones included, so a caller checks each through its handle).
   * Scans the key group's range of that state and the overlays: meant for rare, per key group
   * work (a broadcast rule applied to every key, bctx.forEachKey), not for the record path.
   */
  async stateKeyCandidates(stage: string, keyGroup: number, state: string): Promise<string[]> {
    this.#assertOpen();
    const stateBytes = Buffer.from(state, 'utf8');
    const prefix = Buffer.concat([keyGroupPrefix(stage, keyGroup), Buffer.from([stateBytes.length]), stateBytes]);
    const keys = new Set<string>();
    this.#flushLive();
    const keyOf = (full: Buffer): string | undefined => {
      if (full.length < prefix.length + 2) return undefined;
      const length = full.readUInt16BE(prefix.length);
      return full.toString('utf8', prefix.length + 2, prefix.length + 2 + length);
    };
    const prefixString = prefix.toString('latin1');
    for (const overlay of [...this.#frozen.map((d) => d.overlay), this.#active]) {
      for (const full of overlay.entries.keys()) {
        if (!full.startsWith(prefixString)) continue;
        const key = keyOf(Buffer.from(full, 'latin1'));
        if (key !== undefined) keys.add(key);
      }
    }
    let last: string | undefined;
    for await (const { key: stored } of this.#scan(prefix, SCAN_CAPACITY, false)) {
      const key = keyOf(stored);
      if (key !== undefined && key !== last) keys.add((last = key));
    }
    return [...keys];
  }

  // --- raw entries (worker/state/feature-state.ts: feature metadata and history versions)

  /** The latin1 string of a state key (no mapKey): the form the raw-entry methods take. */
  stateKeyString(stage: string, keyGroup: number, state: string, key: string): string {
    return encodedString(stage, keyGroup, state, key, undefined);
  }

  /**
   * Writes an encoded entry (null: tombstone) into the active overlay under a latin1 key built by
   * stateKeyString (plus a suffix). indexPrefix indexes it like a map entry, so that
   * latestAtOrBefore finds it without scanning the overlay.
   */
  putRaw(key: string, value: Buffer | null, indexPrefix?: string, undo?: StateUndoLog): void {
    this.#assertOpen();
    this.#live.invalidate(key);
    this.#active.set(key, value, indexPrefix, undo);
  }

  /** An encoded entry (null: absent) in the given view. */
  getRaw(key: string, view: StateView = 'latest'): Promise<Buffer | null> {
    this.#assertOpen();
    return Promise.resolve(this.#read(key, view));
  }

  /** True when an overlay (active or frozen) holds key: a change not yet in RocksDB. */
  overlayHas(key: string): boolean {
    if (this.#live.get(key)?.dirty === true) return true;
    if (this.#active.entries.has(key)) return true;
    for (const delta of this.#frozen) if (delta.overlay.entries.has(key)) return true;
    return false;
  }

  /**
   * The greatest live key k with prefix <= k <= bound (both latin1; entries written with
   * indexPrefix === prefix), and its value, in the given view: one reverse seek in RocksDB, merged
   * with the overlays' indexed entries; tombstones hide what they delete.
   */
  async latestAtOrBefore(prefix: string, bound: string, view: StateView = 'latest'): Promise<{ key: string; value: Buffer } | undefined> {
    this.#assertOpen();
    if (view === 'latest') this.#flushLive();
    const merged = view === 'latest' ? this.#mergedMapOverlay(prefix) : undefined;
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
      for await (const entry of this.#db.iterator({ gte, ...upper }, { capacity: 1, values: true, reverse: true, limit: 1 })) {
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

  /** Committed entries (RocksDB) from `from` (inclusive) up to the end of prefix, in key order. */
  scanCommitted(prefix: Buffer, from: Buffer, capacity = SCAN_CAPACITY): RocksIterator {
    this.#assertOpen();
    return this.#db.iterator({ gte: Buffer.compare(from, prefix) > 0 ? from : prefix, lt: prefixUpperBound(prefix) }, { capacity, values: true });
  }

  // --- checkpoint alignment

  /** Turns the active overlay into delta checkpointId; processing continues on a new overlay. */
  freeze(checkpointId: number): void {
    this.#assertOpen();
    assertCheckpointId(checkpointId);
    if (checkpointId <= this.#lastFrozenId) {
      throw new EddyError('FAILED_PRECONDITION', `cannot freeze checkpoint ${checkpointId}: checkpoint ${this.#lastFrozenId} is already frozen or committed`);
    }
    this.#lastFrozenId = checkpointId;
    // Every live value changed since the last freeze is encoded now, once.
    this.#live.flush(this.#active);
    if (this.#active.entries.size === 0) return;
    this.#frozen.push({ checkpointId, overlay: this.#active });
    this.#active = new Overlay();
  }

  /**
   * The changes of frozen delta checkpointId, for upload: per stage (by name), per key group
   * (ascending), tombstones as null. Keys are fresh copies; values are the stored encoded bytes,
   * shared with the delta (do not mutate). Empty when freezing an empty overlay made no delta.
   * Throws FAILED_PRECONDITION for an id not frozen yet, already committed or dropped by rollback.
   */
  frozenDelta(checkpointId: number): Array<{ stage: string; groups: KeyGroupEntries[] }> {
    this.#assertOpen();
    assertCheckpointId(checkpointId);
    if (checkpointId > this.#lastFrozenId || checkpointId <= this.#committedId) {
      throw new EddyError(
        'FAILED_PRECONDITION',
        `checkpoint ${checkpointId} has no frozen delta: frozen up to ${this.#lastFrozenId}, committed up to ${this.#committedId}`,
      );
    }
    const delta = this.#frozen.find((frozen) => frozen.checkpointId === checkpointId);
    if (delta === undefined) return [];
    // Keyed by the latin1 key-group prefix: one lookup per key, the prefix decoded once per group.
    const byPrefix = new Map<string, { stage: string; group: KeyGroupEntries }>();
    for (const [key, value] of delta.overlay.entries) {
      const prefix = key.slice(0, key.charCodeAt(0) + 3);
      let target = byPrefix.get(prefix);
      if (target === undefined) {
        const { stage, keyGroup } = decodeKeyGroupPrefix(Buffer.from(prefix, 'latin1'));
        target = { stage, group: { keyGroup, entries: [] } };
        byPrefix.set(prefix, target);
      }
      target.group.entries.push([Buffer.from(key, 'latin1'), value]);
    }
    const byStage = new Map<string, KeyGroupEntries[]>();
    for (const { stage, group } of byPrefix.values()) {
      const groups = byStage.get(stage);
      if (groups === undefined) byStage.set(stage, [group]);
      else groups.push(group);
    }
    return [...byStage.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([stage, groups]) => ({ stage, groups: groups.sort((a, b) => a.keyGroup - b.keyGroup) }));
  }

  /** Writes every delta up to checkpointId to RocksDB in one batch, then drops them from memory. */
  commit(checkpointId: number): Promise<void> {
    this.#assertOpen();
    assertCheckpointId(checkpointId);
    return this.#enqueueWrite(() => this.#writeDeltas(checkpointId));
  }

  /** Back to the last committed state: drops the active overlay, every delta and the read cache. */
  rollback(): void {
    this.#assertOpen();
    this.#active = new Overlay();
    this.#frozen = [];
    this.#cache.clear();
    this.#live.clear();
    this.#rollbacks++;
    // The checkpoints after the committed one are gone; the coordinator may issue their ids again.
    this.#lastFrozenId = this.#committedId;
  }

  /** Approximate bytes held by the active overlay (keys + encoded values), live values changed since the last freeze included. */
  activeOverlayBytes(): number {
    return this.#active.bytes + this.#live.dirtyBytes;
  }

  /** The highest checkpoint id written to RocksDB (-1: none since open). */
  get committedCheckpointId(): number {
    return this.#committedId;
  }

  /** The highest checkpoint id frozen (committed ones included). */
  get frozenCheckpointId(): number {
    return this.#lastFrozenId;
  }

  /** Number of keys in the active overlay, live values changed since the last freeze included (a key may count twice). */
  activeOverlaySize(): number {
    return this.#active.entries.size + this.#live.dirtyCount;
  }

  // --- key-group ranges

  /** Deletes everything of one stage's key group, committed and in overlays. */
  async dropKeyGroup(stage: string, keyGroup: number): Promise<void> {
    this.#assertOpen();
    const prefix = keyGroupPrefix(stage, keyGroup);
    const prefixString = prefix.toString('latin1');
    this.#live.dropPrefix(prefixString);
    this.#active.dropPrefix(prefixString);
    for (const delta of this.#frozen) delta.overlay.dropPrefix(prefixString);
    await this.#enqueueWrite(async () => {
      const batch = this.#db.write({ capacity: 1, autoDestroy: true });
      batch.tryDeleteRange(prefix, prefixUpperBound(prefix));
      await batch.flush();
      this.#cache.dropPrefix(prefixString);
    });
  }

  /**
   * Every committed entry of one stage's key group, in key order, for a full snapshot. Runs in the
   * write queue: it sees exactly the commits, imports and drops called before it.
   */
  async exportKeyGroup(stage: string, keyGroup: number): Promise<KeyGroupEntries> {
    this.#assertOpen();
    const prefix = keyGroupPrefix(stage, keyGroup);
    const entries: KeyGroupEntries['entries'] = [];
    await this.#enqueueWrite(async () => {
      // With values: true the iterator always yields a Buffer; ?? only satisfies the declared type.
      for await (const { key, value } of this.#scan(prefix, SCAN_CAPACITY, true)) entries.push([key, value ?? EMPTY]);
    });
    return { keyGroup, entries };
  }

  /**
   * One stage's key group as of checkpoint checkpointId, for re-materializing it (docs/ARCHITECTURE.md,
   * "Checkpoints"): the committed entries overlaid with every frozen delta up to checkpointId,
   * tombstones removed, in key order. The active overlay and later deltas are not seen. Runs in
   * the write queue, where RocksDB and the frozen deltas agree (a commit moves deltas from one to
   * the other inside the queue). Values are shared with RocksDB reads and deltas (do not mutate).
   * Throws FAILED_PRECONDITION when checkpointId is not frozen yet or RocksDB is already past it.
   */
  async snapshotKeyGroup(stage: string, keyGroup: number, checkpointId: number): Promise<KeyGroupEntries> {
    this.#assertOpen();
    assertCheckpointId(checkpointId);
    if (checkpointId > this.#lastFrozenId) {
      throw new EddyError('FAILED_PRECONDITION', `cannot snapshot checkpoint ${checkpointId}: frozen only up to ${this.#lastFrozenId}`);
    }
    const prefix = keyGroupPrefix(stage, keyGroup);
    const prefixString = prefix.toString('latin1');
    const entries: KeyGroupEntries['entries'] = [];
    await this.#enqueueWrite(async () => {
      if (checkpointId < this.#committedId) {
        throw new EddyError('FAILED_PRECONDITION', `cannot snapshot checkpoint ${checkpointId}: RocksDB already holds checkpoint ${this.#committedId}`);
      }
      // Taken before the scan: a freeze during it only adds later deltas, and RocksDB writes wait in this queue.
      const changes = new Map<string, Entry>();
      for (const delta of this.#frozen) {
        if (delta.checkpointId > checkpointId) break;
        for (const [key, value] of delta.overlay.entries) if (key.startsWith(prefixString)) changes.set(key, value);
      }
      // With values: true the iterator always yields a Buffer; ?? only satisfies the declared type.
      for await (const { key, value } of this.#scan(prefix, SCAN_CAPACITY, true)) {
        const latin1 = key.toString('latin1');
        const changed = changes.get(latin1);
        if (changed === undefined) {
          entries.push([key, value ?? EMPTY]);
          continue;
        }
        if (changed !== null) entries.push([key, changed]);
        changes.delete(latin1);
      }
      // What is left changed keys RocksDB does not have: new entries, or tombstones of nothing.
      const scanned = entries.length;
      for (const [key, value] of changes) if (value !== null) entries.push([Buffer.from(key, 'latin1'), value]);
      if (entries.length > scanned) entries.sort(([a], [b]) => Buffer.compare(a, b));
    });
    return { keyGroup, entries };
  }

  /**
   * Writes entries of one key group (restored from the object store) straight into RocksDB as
   * committed state, in one batch; tombstones delete. Apply a base with replace, then its deltas
   * in order. replace makes the key group exactly the given entries: its committed range is deleted
   * in the same batch and its overlay entries are dropped at call time, like dropKeyGroup. Every
   * key must lie in the key group (InvalidArgumentError otherwise). Keys and values may be views
   * into a downloaded object: the batch is flushed before this resolves.
   */
  async importKeyGroup(stage: string, group: KeyGroupEntries, options: { replace?: boolean } = {}): Promise<void> {
    this.#assertOpen();
    const prefix = keyGroupPrefix(stage, group.keyGroup);
    const prefixString = prefix.toString('latin1');
    for (const [key] of group.entries) {
      if (key.length <= prefix.length || !prefix.equals(key.subarray(0, prefix.length))) {
        throw new InvalidArgumentError(`a key of ${key.length} bytes imported into stage ${stage} key group ${group.keyGroup} lies outside that key group`);
      }
    }
    const replace = options.replace === true;
    // Live values of the key group may be older than what is imported (clean ones were read before).
    this.#live.dropPrefix(prefixString);
    if (replace) {
      this.#active.dropPrefix(prefixString);
      for (const delta of this.#frozen) delta.overlay.dropPrefix(prefixString);
    }
    await this.#enqueueWrite(async () => {
      const batch = this.#db.write({ capacity: group.entries.length + 1, autoDestroy: true });
      if (replace) batch.tryDeleteRange(prefix, prefixUpperBound(prefix));
      for (const [key, value] of group.entries) {
        if (value === null) batch.tryDelete(asBuffer(key));
        else batch.tryPut(asBuffer(key), asBuffer(value));
      }
      await batch.flush();
      this.#cache.dropPrefix(prefixString);
    });
  }

  /** Approximate committed size on disk in bytes: the sum of the file sizes under path. */
  async diskBytes(): Promise<number> {
    this.#assertOpen();
    return directoryBytes(this.#options.path);
  }

  /** Waits for pending commits, then closes RocksDB. Uncommitted overlays are lost, by design. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writeTail;
    // RocksDB's close waits for the read batches and iterators still open.
    await this.#db.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- internals

  #assertOpen(): void {
    if (this.#closed) throw new EddyError('FAILED_PRECONDITION', `state backend ${this.#options.path} is closed`);
  }

  #read(key: string, view: StateView): Entry | Promise<Entry> {
    if (view === 'latest') {
      // A live value changed since the last freeze becomes an overlay entry: bytes readers see it.
      const live = this.#live.get(key);
      if (live !== undefined && live.dirty) this.#live.flushOne(live, this.#active);
      const active = this.#active.entries.get(key);
      if (active !== undefined) return active;
      for (let i = this.#frozen.length - 1; i >= 0; i--) {
        const frozen = this.#frozen[i]!.overlay.entries.get(key);
        if (frozen !== undefined) return frozen;
      }
    }
    const cached = this.#cache.getValue(key);
    if (cached !== undefined) return cached;
    return this.#reads.read(key);
  }

  #flushLive(): void {
    this.#live.flush(this.#active);
  }

  #scan(prefix: Buffer, capacity: number, values: boolean): RocksIterator {
    return this.#db.iterator({ gte: prefix, lt: prefixUpperBound(prefix) }, { capacity, values });
  }

  /** The newest overlay entry of every key of one map, or undefined when no overlay has any. */
  #mergedMapOverlay(prefix: string): Map<string, Entry> | undefined {
    let merged: Map<string, Entry> | undefined;
    const add = (overlay: Overlay): void => {
      const keys = overlay.mapIndex.get(prefix);
      if (keys === undefined) return;
      merged ??= new Map();
      for (const full of keys) {
        const value = overlay.entries.get(full);
        if (value !== undefined) merged.set(full, value);
      }
    };
    for (const delta of this.#frozen) add(delta.overlay);
    add(this.#active);
    return merged;
  }

  #enqueueWrite(operation: () => Promise<void>): Promise<void> {
    const run = this.#writeTail.then(operation);
    this.#writeTail = run.catch(() => undefined);
    return run;
  }

  async #writeDeltas(checkpointId: number): Promise<void> {
    let count = 0;
    while (count < this.#frozen.length && this.#frozen[count]!.checkpointId <= checkpointId) count++;
    const deltas = this.#frozen.slice(0, count);
    if (deltas.length > 0) {
      let operations = 0;
      for (const delta of deltas) operations += delta.overlay.entries.size;
      // dropKeyGroup may have emptied every delta; rocksdb-native cannot grow a batch of capacity 0.
      const batch = this.#db.write({ capacity: Math.max(operations, 1), autoDestroy: true });
      // Oldest delta first: within one batch the later operation on a key wins.
      for (const delta of deltas) {
        for (const [key, value] of delta.overlay.entries) {
          if (value === null) batch.tryDelete(Buffer.from(key, 'latin1'));
          else batch.tryPut(Buffer.from(key, 'latin1'), value);
        }
      }
      // Deltas stay readable in memory until RocksDB has them, so the latest view never goes back.
      await batch.flush();
      this.#cache.bumpEpoch();
      // Map entries are indexed by their map's prefix: exactly the cached maps this commit changed.
      for (const delta of deltas) this.#cache.applyCommitted(delta.overlay.entries, delta.overlay.mapIndex.keys());
      // By identity: a rollback during the write may have replaced the list.
      this.#frozen = this.#frozen.filter((delta) => !deltas.includes(delta));
    }
    if (checkpointId > this.#committedId) this.#committedId = checkpointId;
    if (this.#lastFrozenId < this.#committedId) this.#lastFrozenId = this.#committedId;
  }
}

const EMPTY = Buffer.alloc(0);


/** A Buffer view of the same bytes (no copy). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function assertCheckpointId(checkpointId: number): void {
  if (!Number.isSafeInteger(checkpointId) || checkpointId < 0) throw new InvalidArgumentError(`checkpoint id ${checkpointId} is not a non-negative integer`);
}

async function directoryBytes(path: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(path, { recursive: true })) {
    const info = await stat(join(path, name)).catch((error: NodeJS.ErrnoException) => {
      // Compaction deletes files while we walk.
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (info?.isFile() === true) total += info.size;
  }
  return total;
}
