// Key groups in and out of the state backend, whole: the ranges a checkpoint re-materializes,
// a restore or a move imports, and a move drops (docs/ARCHITECTURE.md, "Checkpoints" and "Moves").
// One stage's key group is one contiguous key range (key-codec.ts), so each is a range scan or a
// range write, run in the committed store's write queue so that it sees exactly the commits,
// imports and drops called before it. Also the rare per key group scans of one backend (background
// sweeps, a broadcast rule applied to every key).
import type { KeyGroupEntries } from '../../core/checkpoint-format.ts';
import { EddyError, InvalidArgumentError } from '../../core/errors.ts';
import { keyGroupPrefix, prefixUpperBound } from './key-codec.ts';
import type { CommittedStore } from './committed-store.ts';
import { assertCheckpointId, type DeltaChain } from './delta-chain.ts';
import type { LiveCache } from './live-cache.ts';
import { SCAN_CAPACITY } from './rocksdb.ts';

const EMPTY = Buffer.alloc(0);

/** Deletes everything of one stage's key group, committed and in overlays. */
export async function dropKeyGroup(store: CommittedStore, chain: DeltaChain, live: LiveCache, stage: string, keyGroup: number): Promise<void> {
  const prefix = keyGroupPrefix(stage, keyGroup);
  const prefixString = prefix.toString('latin1');
  live.dropPrefix(prefixString);
  chain.dropPrefix(prefixString, true);
  await store.enqueueWrite(() => store.writeKeyGroup(prefix, [], true));
}

/** Every committed entry of one stage's key group, in key order, for a full snapshot. */
export async function exportKeyGroup(store: CommittedStore, stage: string, keyGroup: number): Promise<KeyGroupEntries> {
  const prefix = keyGroupPrefix(stage, keyGroup);
  const entries: KeyGroupEntries['entries'] = [];
  await store.enqueueWrite(async () => {
    // With values: true the iterator always yields a Buffer; ?? only satisfies the declared type.
    for await (const { key, value } of store.scan(prefix, SCAN_CAPACITY, true)) entries.push([key, value ?? EMPTY]);
  });
  return { keyGroup, entries };
}

/**
 * One stage's key group as of checkpoint checkpointId, for re-materializing it: the committed
 * entries overlaid with every frozen delta up to checkpointId, tombstones removed, in key order.
 * The active overlay and later deltas are not seen. In the write queue RocksDB and the frozen
 * deltas agree (a commit moves deltas from one to the other inside the queue). Values are shared
 * with RocksDB reads and deltas (do not mutate). Throws FAILED_PRECONDITION when checkpointId is
 * not frozen yet or RocksDB is already past it.
 */
export async function snapshotKeyGroup(store: CommittedStore, chain: DeltaChain, stage: string, keyGroup: number, checkpointId: number): Promise<KeyGroupEntries> {
  assertCheckpointId(checkpointId);
  if (checkpointId > chain.lastFrozenId) {
    throw new EddyError('FAILED_PRECONDITION', `cannot snapshot checkpoint ${checkpointId}: frozen only up to ${chain.lastFrozenId}`);
  }
  const prefix = keyGroupPrefix(stage, keyGroup);
  const prefixString = prefix.toString('latin1');
  const entries: KeyGroupEntries['entries'] = [];
  await store.enqueueWrite(async () => {
    if (checkpointId < chain.committedId) {
      throw new EddyError('FAILED_PRECONDITION', `cannot snapshot checkpoint ${checkpointId}: RocksDB already holds checkpoint ${chain.committedId}`);
    }
    // Taken before the scan: a freeze during it only adds later deltas, and RocksDB writes wait in this queue.
    const changes = chain.changesUpTo(checkpointId, prefixString);
    // With values: true the iterator always yields a Buffer; ?? only satisfies the declared type.
    for await (const { key, value } of store.scan(prefix, SCAN_CAPACITY, true)) {
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
export async function importKeyGroup(store: CommittedStore, chain: DeltaChain, live: LiveCache, stage: string, group: KeyGroupEntries, replace: boolean): Promise<void> {
  const prefix = keyGroupPrefix(stage, group.keyGroup);
  const prefixString = prefix.toString('latin1');
  for (const [key] of group.entries) {
    if (key.length <= prefix.length || !prefix.equals(key.subarray(0, prefix.length))) {
      throw new InvalidArgumentError(`a key of ${key.length} bytes imported into stage ${stage} key group ${group.keyGroup} lies outside that key group`);
    }
  }
  // Live values of the key group may be older than what is imported (clean ones were read before).
  live.dropPrefix(prefixString);
  if (replace) chain.dropPrefix(prefixString, true);
  await store.enqueueWrite(() => store.writeKeyGroup(prefix, group.entries, replace));
}

/** StateBackend.scanCommittedKeyGroup: RocksDB's entries of a key group after `after`, at most limit. */
export async function scanCommittedKeyGroup(store: CommittedStore, stage: string, keyGroup: number, after: Buffer | undefined, limit: number): Promise<Array<[Buffer, Buffer]>> {
  const prefix = keyGroupPrefix(stage, keyGroup);
  // The smallest key greater than after is after followed by a zero byte.
  const lower = after === undefined ? prefix : Buffer.concat([after, Buffer.alloc(1)]);
  const out: Array<[Buffer, Buffer]> = [];
  if (limit <= 0) return out;
  for await (const { key, value } of store.iterator({ gte: lower, lt: prefixUpperBound(prefix) }, { capacity: Math.min(SCAN_CAPACITY, limit), values: true })) {
    if (value !== null) out.push([key, value]);
    if (out.length >= limit) break;
  }
  return out;
}

/** StateBackend.stateKeyCandidates: the keys of one state in one key group in any overlay or RocksDB (live values flushed first). */
export async function stateKeyCandidates(store: CommittedStore, chain: DeltaChain, stage: string, keyGroup: number, state: string): Promise<string[]> {
  const stateBytes = Buffer.from(state, 'utf8');
  const prefix = Buffer.concat([keyGroupPrefix(stage, keyGroup), Buffer.from([stateBytes.length]), stateBytes]);
  const keys = new Set<string>();
  const keyOf = (full: Buffer): string | undefined => {
    if (full.length < prefix.length + 2) return undefined;
    const length = full.readUInt16BE(prefix.length);
    return full.toString('utf8', prefix.length + 2, prefix.length + 2 + length);
  };
  const prefixString = prefix.toString('latin1');
  for (const overlay of chain.overlays()) {
    for (const full of overlay.entries.keys()) {
      if (!full.startsWith(prefixString)) continue;
      const key = keyOf(Buffer.from(full, 'latin1'));
      if (key !== undefined) keys.add(key);
    }
  }
  let last: string | undefined;
  for await (const { key: stored } of store.scan(prefix, SCAN_CAPACITY, false)) {
    const key = keyOf(stored);
    if (key !== undefined && key !== last) keys.add((last = key));
  }
  return [...keys];
}
