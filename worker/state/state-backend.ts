// The state backend of one job on one worker: a write-back cache over RocksDB, aligned with
// checkpoints (docs/ARCHITECTURE.md, "State"). Writes go to an in-memory overlay; a barrier freezes it
// into a delta; only a completed checkpoint writes its deltas to RocksDB, in one batch. RocksDB
// therefore always holds exactly the last completed checkpoint, and a rollback is a matter of
// dropping memory.
//
// This is the API the state handles, timers, features and checkpoints use, over named pieces:
// the key and value codecs (key-codec.ts, value-codec.ts), the live values of the handles
// (live-cache.ts), the overlay and its frozen deltas (delta-chain.ts, overlay.ts), RocksDB with
// its read cache and read batching (committed-store.ts), and whole key groups in and out
// (key-group-transfer.ts).
import type { KeyGroupColumns, KeyGroupEntries } from '../../core/checkpoint-format.ts';
import { EddyError } from '../../core/errors.ts';
import { decodeShared, decodeValue, encodeValue } from './value-codec.ts';
import { encodedString, encodeStateKey, lastMapPrefixLength, prefixUpperBound } from './key-codec.ts';
import type { Entry } from './overlay.ts';
import { LiveCache, LiveEntry, type LiveCodec } from './live-cache.ts';
import type { StateUndoLog } from './state-undo.ts';
import { PROBE_CAPACITY, SCAN_CAPACITY, type RocksIterator } from './rocksdb.ts';
import { CommittedStore, type CommittedStoreStats } from './committed-store.ts';
import { assertCheckpointId, DeltaChain } from './delta-chain.ts';
import { dropKeyGroup, exportKeyGroup, importKeyGroup, scanCommittedKeyGroup, snapshotKeyGroup, stateKeyCandidates } from './key-group-transfer.ts';
import { committedObject, latestAtOrBefore, mergeCachedRange, mergedMapRange, objectOf, smallCommittedMap, type MapObject } from './merged-reads.ts';
import { compileStateBackendOptions, type CompiledStateBackendOptions, type StateBackendOptions } from './state-backend-options.ts';

export { decodeKeyGroupPrefix, encodeStateKey, keyGroupPrefix } from './key-codec.ts';

export type StateView = 'latest' | 'committed';

export type { RocksIterator };
export { compileStateBackendOptions, DEFAULT_LIVE_ENTRIES, DEFAULT_READ_CACHE_ENTRIES } from './state-backend-options.ts';
export type { CompiledStateBackendOptions, StateBackendOptions } from './state-backend-options.ts';

export class StateBackend {
  /** RocksDB, its read cache and read batching, and the write queue. */
  readonly #store: CommittedStore;
  readonly #options: CompiledStateBackendOptions;
  #closed = false;
  /** The active overlay and the frozen deltas not committed yet. */
  readonly #chain = new DeltaChain();
  #rollbacks = 0;
  /** Decoded values of the state handles, written back into the active overlay at a freeze (worker/state/live-cache.ts). */
  readonly #live: LiveCache;

  private constructor(store: CommittedStore, options: CompiledStateBackendOptions) {
    this.#store = store;
    this.#options = options;
    this.#live = new LiveCache(options.liveEntries);
  }

  static async open(options: StateBackendOptions): Promise<StateBackend> {
    const compiled = compileStateBackendOptions(options);
    return new StateBackend(await CommittedStore.open(compiled.path, compiled.readCacheEntries, compiled.keyFilterKeys, compiled.writeBufferMb), compiled);
  }

  // --- value state

  async getValue(stage: string, keyGroup: number, state: string, key: string, view: StateView = 'latest'): Promise<unknown | undefined> {
    return this.getValueNow(stage, keyGroup, state, key, view);
  }

  /** getValue without a promise when the entry is in memory (overlays, live values, read cache). */
  getValueNow(stage: string, keyGroup: number, state: string, key: string, view: StateView = 'latest'): unknown | Promise<unknown | undefined> {
    this.#assertOpen();
    const read = this.#read(encodedString(stage, keyGroup, state, key, undefined), view);
    return read instanceof Promise ? read.then(decodeValue) : decodeValue(read);
  }

  putValue(stage: string, keyGroup: number, state: string, key: string, value: unknown): void {
    this.#assertOpen();
    const full = encodedString(stage, keyGroup, state, key, undefined);
    this.#live.invalidate(full);
    this.#chain.active.set(full, encodeValue(value), undefined);
  }

  deleteValue(stage: string, keyGroup: number, state: string, key: string): void {
    this.#assertOpen();
    const full = encodedString(stage, keyGroup, state, key, undefined);
    this.#live.invalidate(full);
    this.#chain.active.set(full, null, undefined);
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
    this.#chain.active.set(full, encodeValue(value), full.slice(0, lastMapPrefixLength()));
  }

  deleteMapEntry(stage: string, keyGroup: number, state: string, key: string, mapKey: string): void {
    this.#assertOpen();
    const full = encodedString(stage, keyGroup, state, key, mapKey);
    this.#live.invalidate(full);
    this.#chain.active.set(full, null, full.slice(0, lastMapPrefixLength()));
  }

  /** All live entries of one key's map, ordered by the UTF-8 bytes of mapKey; overlays merged over RocksDB, tombstones hidden. */
  async mapEntries(stage: string, keyGroup: number, state: string, key: string, view: StateView = 'latest'): Promise<Array<[string, unknown]>> {
    return this.mapEntriesNow(stage, keyGroup, state, key, view);
  }

  /** mapEntries without a promise when no RocksDB read is needed (the map cache holds the map's committed entries). */
  mapEntriesNow(stage: string, keyGroup: number, state: string, key: string, view: StateView = 'latest'): Array<[string, unknown]> | Promise<Array<[string, unknown]>> {
    const prefix = this.#flushedMapPrefix(stage, keyGroup, state, key, view);
    return this.#mergedEntries(prefix, view === 'latest' ? this.#chain.mergedMap(prefix) : undefined);
  }

  /**
   * A key's map as one object (mapKey → value; undefined when empty), for readers that never
   * change it (a feature read). A map no overlay changed is answered with the object built once
   * from its cached committed entries, shared by every read until a commit changes the map.
   */
  mapObjectNow(stage: string, keyGroup: number, state: string, key: string, view: StateView = 'latest'): MapObject | Promise<MapObject> {
    const prefix = this.#flushedMapPrefix(stage, keyGroup, state, key, view);
    const merged = view === 'latest' ? this.#chain.mergedMap(prefix) : undefined;
    const entries = merged === undefined ? undefined : this.#mergedEntries(prefix, merged);
    if (entries !== undefined) return entries instanceof Promise ? entries.then(objectOf) : objectOf(entries);
    const committed = this.#committedMap(prefix);
    return committed instanceof Promise ? committed.then((c) => committedObject(c, prefix.length)) : committedObject(committed, prefix.length);
  }

  /** The map's prefix (the latin1 string of its bytes), its live values flushed first for the latest view. */
  #flushedMapPrefix(stage: string, keyGroup: number, state: string, key: string, view: StateView): string {
    this.#assertOpen();
    const prefix = encodedString(stage, keyGroup, state, key, undefined);
    if (view === 'latest') this.#live.flushMap(prefix, this.#chain.active);
    return prefix;
  }

  /** The map's decoded entries: the overlays' (merged) over its committed ones. */
  #mergedEntries(prefix: string, merged: Map<string, Entry> | undefined): Array<[string, unknown]> | Promise<Array<[string, unknown]>> {
    const upper = prefixUpperBound(Buffer.from(prefix, 'latin1')).toString('latin1');
    const decoded = (committed: ReadonlyArray<[string, Buffer]>): Array<[string, unknown]> => {
      const entries = mergeCachedRange(merged, committed, prefix.length, prefix, upper, Number.POSITIVE_INFINITY) as Array<[string, unknown]>;
      for (const entry of entries) entry[1] = decodeShared(entry[1] as Buffer);
      return entries;
    };
    const committed = this.#committedMap(prefix);
    return committed instanceof Promise ? committed.then(decoded) : decoded(committed);
  }

  /**
   * The live entries of one key's map whose mapKey lies in [from, to) (UTF-8 byte order), at most
   * limit, in that order, as stored bytes (shared with the overlay or read batch: do not mutate).
   * Overlays are merged over RocksDB and tombstones hidden, as in mapEntries. A map the map cache
   * holds is read from memory; with cacheSmall (a state handle's range read), a map of at most
   * SMALL_MAP_ENTRIES is read whole into it by its second range read (a RocksDB iterator per read
   * cost ~0.2–0.4 ms of CPU, so an event-time join reading ranges in every timer fired only ~90
   * timers a second on a loaded machine).
   */
  async mapRangeBytes(
    stage: string,
    keyGroup: number,
    state: string,
    key: string,
    range: { from?: string; to?: string; limit?: number; cacheSmall?: boolean },
    view: StateView = 'latest',
  ): Promise<Array<[string, Buffer]>> {
    this.#assertOpen();
    const prefix = encodeStateKey(stage, keyGroup, state, key);
    const lower = range.from === undefined ? prefix : Buffer.concat([prefix, Buffer.from(range.from, 'utf8')]);
    const upper = range.to === undefined ? prefixUpperBound(prefix) : Buffer.concat([prefix, Buffer.from(range.to, 'utf8')]);
    const limit = range.limit ?? Number.POSITIVE_INFINITY;
    const out: Array<[string, Buffer]> = [];
    if (view === 'latest') this.#live.flushMap(prefix.toString('latin1'), this.#chain.active);
    if (!(limit > 0) || Buffer.compare(lower, upper) >= 0) return out;
    // A whole map (a map feature's Get) takes its committed entries from the map cache.
    const whole = range.from === undefined && range.to === undefined && range.limit === undefined;
    // Only overlay entries in [lower, upper) can be in the answer (merged-reads.ts).
    const prefixString = prefix.toString('latin1');
    const lowerString = lower.toString('latin1');
    const upperString = upper.toString('latin1');
    const merged = view === 'latest' ? (whole ? this.#chain.mergedMap(prefixString) : this.#chain.mergedMap(prefixString, lowerString, upperString)) : undefined;
    const committed = whole ? this.#committedMap(prefixString) : (this.#store.cache.getMap(prefixString) ?? (range.cacheSmall === true ? await smallCommittedMap(this.#store, prefixString) : undefined));
    if (committed === undefined) return mergedMapRange(this.#store, merged, prefix, lower, upper, limit);
    return mergeCachedRange(merged, committed instanceof Promise ? await committed : committed, prefix.length, lowerString, upperString, limit);
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
  liveLoad(key: string, mapPrefix: string | undefined, codec: LiveCodec, value: unknown, time: number, size: number, resets: number): LiveEntry {
    if (resets !== this.#live.resets) return new LiveEntry(key, mapPrefix, codec, value, time, size);
    return this.#live.load(key, mapPrefix, codec, value, time, size);
  }

  /** See liveLoad. */
  get liveResets(): number {
    return this.#live.resets;
  }

  /**
   * Writes a decoded value (undefined: delete) of an encoded key; codec encodes it when it is
   * flushed. The cache keeps the reference: pass a value no one else holds. With an undo log, the
   * write can be taken back by undo(). known: the key's entry from an earlier call (LiveCache.write).
   */
  liveWrite(key: string, mapPrefix: string | undefined, codec: LiveCodec, value: unknown, time: number, undo?: StateUndoLog, known?: LiveEntry): LiveEntry {
    this.#assertOpen();
    return this.#live.write(key, mapPrefix, codec, value, time, undo, known);
  }

  /** The committed store's counters (for tests): RocksDB read batches, the key filter, write slices. */
  get storeStats(): CommittedStoreStats {
    return this.#store.stats;
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
   * afterwards. With an undo log, the write can be taken back by undo() (worker/state/state-undo.ts).
   */
  writeBytes(stage: string, keyGroup: number, state: string, key: string, mapKey: string | undefined, bytes: Buffer | null, undo?: StateUndoLog): void {
    this.#assertOpen();
    const full = encodedString(stage, keyGroup, state, key, mapKey);
    this.#live.invalidate(full);
    this.#chain.active.set(full, bytes, mapKey === undefined ? undefined : full.slice(0, lastMapPrefixLength()), undo);
  }

  /**
   * Takes back the writes noted in a record's undo log, newest first, and resets it. Throws when
   * they cannot be taken back exactly (they span a checkpoint freeze or a rollback): the caller
   * then fails the task, and recovery restores the last checkpoint instead.
   */
  undo(log: StateUndoLog): void {
    this.#assertOpen();
    log.takeBack(this.#live, this.#chain.active);
  }

  /**
   * Committed entries of one stage's key group in key order, starting after the key `after`
   * (exclusive), at most limit: for background sweeps that do bounded work per call.
   */
  scanCommittedKeyGroup(stage: string, keyGroup: number, after: Buffer | undefined, limit: number): Promise<Array<[Buffer, Buffer]>> {
    this.#assertOpen();
    return scanCommittedKeyGroup(this.#store, stage, keyGroup, after, limit);
  }

  /**
   * The committed entries of one map, in key order: from the map cache, else one RocksDB scan that
   * fills it (an iterator per map read was most of a map feature's Get, docs/BENCHMARKS.md).
   */
  #committedMap(prefixString: string): Array<[string, Buffer]> | Promise<Array<[string, Buffer]>> {
    const cache = this.#store.cache;
    const cached = cache.getMap(prefixString);
    if (cached !== undefined) return cached;
    return (async () => {
      const epoch = cache.epoch;
      const entries: Array<[string, Buffer]> = [];
      for await (const { key, value } of this.#store.scan(Buffer.from(prefixString, 'latin1'), SCAN_CAPACITY, true)) if (value !== null) entries.push([key.toString('latin1'), value]);
      // Kept only if RocksDB did not change during the scan (the entries could mix two states).
      cache.setMap(prefixString, entries, epoch);
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
    const merged = this.#chain.mergedMap(prefixString);
    if (merged !== undefined) for (const full of merged.keys()) this.#chain.active.set(full, null, prefixString);
    const rollbacks = this.#rollbacks;
    const committed: string[] = [];
    for await (const { key: stored } of this.#store.scan(prefix, SCAN_CAPACITY, false)) {
      committed.push(stored.toString('latin1'));
    }
    // A rollback during the scan discarded this clear with everything else since the checkpoint.
    if (rollbacks !== this.#rollbacks || this.#closed) return;
    const active = this.#chain.active;
    for (const full of committed) if (!active.entries.has(full)) active.set(full, null, prefixString);
  }

  /** True when the map has at least one live entry. */
  async hasMap(stage: string, keyGroup: number, state: string, key: string, view: StateView = 'latest'): Promise<boolean> {
    this.#assertOpen();
    const prefix = encodeStateKey(stage, keyGroup, state, key);
    if (view === 'latest') this.#live.flushMap(prefix.toString('latin1'), this.#chain.active);
    const merged = view === 'latest' ? this.#chain.mergedMap(prefix.toString('latin1')) : undefined;
    if (merged !== undefined) for (const value of merged.values()) if (value !== null) return true;
    for await (const { key: stored } of this.#store.scan(prefix, PROBE_CAPACITY, false)) {
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
  stateKeyCandidates(stage: string, keyGroup: number, state: string): Promise<string[]> {
    this.#assertOpen();
    this.#flushLive();
    return stateKeyCandidates(this.#store, this.#chain, stage, keyGroup, state);
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
    this.#chain.active.set(key, value, indexPrefix, undo);
  }

  /** An encoded entry (null: absent) in the given view. */
  getRaw(key: string, view: StateView = 'latest'): Promise<Buffer | null> {
    return Promise.resolve(this.getRawNow(key, view));
  }

  /** getRaw without a promise when the entry is in memory (overlays, live values, read cache). */
  getRawNow(key: string, view: StateView = 'latest'): Buffer | null | Promise<Buffer | null> {
    this.#assertOpen();
    return this.#read(key, view);
  }

  /** True when an overlay (active or frozen) holds key: a change not yet in RocksDB. */
  overlayHas(key: string): boolean {
    if (this.#live.get(key)?.dirty === true) return true;
    return this.#chain.has(key);
  }

  /**
   * The greatest live key k with prefix <= k <= bound (both latin1; entries written with
   * indexPrefix === prefix), and its value, in the given view: one reverse seek in RocksDB, merged
   * with the overlays' indexed entries; tombstones hide what they delete.
   */
  async latestAtOrBefore(prefix: string, bound: string, view: StateView = 'latest'): Promise<{ key: string; value: Buffer } | undefined> {
    this.#assertOpen();
    if (view === 'latest') this.#live.flushMap(prefix, this.#chain.active);
    const merged = view === 'latest' ? this.#chain.mergedMap(prefix) : undefined;
    return latestAtOrBefore(this.#store, merged, prefix, bound);
  }

  /** Committed entries (RocksDB) from `from` (inclusive) up to the end of prefix, in key order. */
  scanCommitted(prefix: Buffer, from: Buffer, capacity = SCAN_CAPACITY): RocksIterator {
    this.#assertOpen();
    return this.#store.iterator({ gte: Buffer.compare(from, prefix) > 0 ? from : prefix, lt: prefixUpperBound(prefix) }, { capacity, values: true });
  }

  // --- checkpoint alignment

  /** Turns the active overlay into delta checkpointId; processing continues on a new overlay. */
  freeze(checkpointId: number): void {
    this.#assertOpen();
    // Every live value changed since the last freeze is encoded now, once.
    this.#chain.freeze(checkpointId, this.#live);
  }

  /**
   * The changes of frozen delta checkpointId, for upload: per stage (by name), per key group
   * (ascending), tombstones as null, keys as latin1 strings shared with the delta (DeltaChain.frozenColumns).
   */
  frozenColumns(checkpointId: number): Array<{ stage: string; groups: KeyGroupColumns[] }> {
    this.#assertOpen();
    return this.#chain.frozenColumns(checkpointId);
  }

  /** frozenColumns() with keys as bytes, as a restore imports them (DeltaChain.frozenDelta). */
  frozenDelta(checkpointId: number): Array<{ stage: string; groups: KeyGroupEntries[] }> {
    this.#assertOpen();
    return this.#chain.frozenDelta(checkpointId);
  }

  /** Writes every delta up to checkpointId to RocksDB in one batch, then drops them from memory. */
  commit(checkpointId: number): Promise<void> {
    this.#assertOpen();
    assertCheckpointId(checkpointId);
    return this.#store.enqueueWrite(() => this.#writeDeltas(checkpointId));
  }

  /** Back to the last committed state: drops the active overlay, every delta and the read cache. */
  rollback(): void {
    this.#assertOpen();
    this.#chain.rollback();
    this.#store.cache.clear();
    this.#live.clear();
    this.#rollbacks++;
  }

  /** Approximate bytes held by the active overlay (keys + encoded values), live values changed since the last freeze included. */
  activeOverlayBytes(): number {
    return this.#chain.active.bytes + this.#live.dirtyBytes;
  }

  /** The highest checkpoint id written to RocksDB (-1: none since open). */
  get committedCheckpointId(): number {
    return this.#chain.committedId;
  }

  /** The highest checkpoint id frozen (committed ones included). */
  get frozenCheckpointId(): number {
    return this.#chain.lastFrozenId;
  }

  /** Number of keys in the active overlay, live values changed since the last freeze included (a key may count twice). */
  activeOverlaySize(): number {
    return this.#chain.active.entries.size + this.#live.dirtyCount;
  }

  // --- key-group ranges

  /** Deletes everything of one stage's key group, committed and in overlays. */
  dropKeyGroup(stage: string, keyGroup: number): Promise<void> {
    this.#assertOpen();
    return dropKeyGroup(this.#store, this.#chain, this.#live, stage, keyGroup);
  }

  /**
   * Every committed entry of one stage's key group, in key order, for a full snapshot. Runs in the
   * write queue: it sees exactly the commits, imports and drops called before it.
   */
  exportKeyGroup(stage: string, keyGroup: number): Promise<KeyGroupEntries> {
    this.#assertOpen();
    return exportKeyGroup(this.#store, stage, keyGroup);
  }

  /**
   * One stage's key group as of checkpoint checkpointId, for re-materializing it (docs/ARCHITECTURE.md,
   * "Checkpoints"): committed entries overlaid with the frozen deltas up to checkpointId
   * (worker/state/key-group-transfer.ts).
   */
  snapshotKeyGroup(stage: string, keyGroup: number, checkpointId: number): Promise<KeyGroupEntries> {
    this.#assertOpen();
    return snapshotKeyGroup(this.#store, this.#chain, stage, keyGroup, checkpointId);
  }

  /**
   * Writes entries of one key group (restored from the object store) straight into RocksDB as
   * committed state, in one batch; with replace the key group becomes exactly these entries
   * (worker/state/key-group-transfer.ts).
   */
  importKeyGroup(stage: string, group: KeyGroupEntries, options: { replace?: boolean } = {}): Promise<void> {
    this.#assertOpen();
    return importKeyGroup(this.#store, this.#chain, this.#live, stage, group, options.replace === true);
  }

  /** Approximate committed size on disk in bytes: the sum of the file sizes under path. */
  async diskBytes(): Promise<number> {
    this.#assertOpen();
    return this.#store.diskBytes();
  }

  /** Waits for pending commits, then closes RocksDB. Uncommitted overlays are lost, by design. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#store.close();
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
      if (live !== undefined && live.dirty) this.#live.flushOne(live, this.#chain.active);
      const overlaid = this.#chain.get(key);
      if (overlaid !== undefined) return overlaid;
    }
    return this.#store.read(key);
  }

  #flushLive(): void {
    this.#live.flush(this.#chain.active);
  }

  async #writeDeltas(checkpointId: number): Promise<void> {
    const deltas = this.#chain.deltasUpTo(checkpointId);
    // Deltas stay readable in memory until RocksDB has them, so the latest view never goes back.
    if (deltas.length > 0) await this.#store.writeDeltas(deltas);
    this.#chain.committed(checkpointId, deltas);
  }
}

