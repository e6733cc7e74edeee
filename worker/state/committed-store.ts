// The committed half of the state backend (docs/ARCHITECTURE.md, "State"): RocksDB, which holds
// exactly the last completed checkpoint, with the read cache of committed values and maps and
// the read batching (reads issued in one tick share one RocksDB read batch). Writes (commits,
// imports, range deletes) run one at a time, in call order, in the write queue; a scan that must
// see exactly the writes called before it (an export, a snapshot) runs in the queue too.
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyGroupEntries } from '../../core/checkpoint-format.ts';
import { prefixUpperBound } from './key-codec.ts';
import type { Entry } from './overlay.ts';
import type { Delta } from './delta-chain.ts';
import { ReadBatcher } from './read-batcher.ts';
import { ReadCache } from './read-cache.ts';
import { RocksDB, type RocksDatabase, type RocksIterator } from './rocksdb.ts';

export class CommittedStore {
  readonly #db: RocksDatabase;
  readonly #path: string;
  /** Committed values and maps read recently (dropped or updated by every write here). */
  readonly cache: ReadCache;
  readonly #reads: ReadBatcher;
  // Commits and range deletes are applied one at a time, in call order.
  #writeTail: Promise<void> = Promise.resolve();

  private constructor(db: RocksDatabase, path: string, readCacheEntries: number) {
    this.#db = db;
    this.#path = path;
    this.cache = new ReadCache(readCacheEntries);
    this.#reads = new ReadBatcher(db, this.cache);
  }

  static async open(path: string, readCacheEntries: number): Promise<CommittedStore> {
    await mkdir(path, { recursive: true });
    const db = new RocksDB(path);
    await db.ready();
    return new CommittedStore(db, path, readCacheEntries);
  }

  /** The committed value of an encoded key (null: absent): from the cache, else in the tick's read batch. */
  read(key: string): Entry | Promise<Entry> {
    const cached = this.cache.getValue(key);
    if (cached !== undefined) return cached;
    return this.#reads.read(key);
  }

  /** RocksDB read batches sent so far. */
  get readBatches(): number {
    return this.#reads.batches;
  }

  /** Committed entries in a key range, in key order (reverse when asked). */
  iterator(range: { gte: Buffer; lt?: Buffer; lte?: Buffer }, options: { capacity: number; values: boolean; reverse?: boolean; limit?: number }): RocksIterator {
    return this.#db.iterator(range, options);
  }

  /** Committed entries under a prefix, in key order. */
  scan(prefix: Buffer, capacity: number, values: boolean): RocksIterator {
    return this.#db.iterator({ gte: prefix, lt: prefixUpperBound(prefix) }, { capacity, values });
  }

  /** Runs `operation` after every write called before it, before any called after it. */
  enqueueWrite(operation: () => Promise<void>): Promise<void> {
    const run = this.#writeTail.then(operation);
    this.#writeTail = run.catch(() => undefined);
    return run;
  }

  /** Writes deltas (oldest first) in one batch; the cache takes their entries. Call in the write queue. */
  async writeDeltas(deltas: readonly Delta[]): Promise<void> {
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
    await batch.flush();
    this.cache.bumpEpoch();
    // Map entries are indexed by their map's prefix: exactly the cached maps this commit changed.
    for (const delta of deltas) this.cache.applyCommitted(delta.overlay.entries, delta.overlay.mapIndex.keys());
  }

  /**
   * Writes one key group's entries in one batch (tombstones delete), the key group's range deleted
   * first with `replace`, and drops the key group from the cache. Call in the write queue.
   */
  async writeKeyGroup(prefix: Buffer, entries: KeyGroupEntries['entries'], replace: boolean): Promise<void> {
    const batch = this.#db.write({ capacity: entries.length + 1, autoDestroy: true });
    if (replace) batch.tryDeleteRange(prefix, prefixUpperBound(prefix));
    for (const [key, value] of entries) {
      if (value === null) batch.tryDelete(asBuffer(key));
      else batch.tryPut(asBuffer(key), asBuffer(value));
    }
    await batch.flush();
    this.cache.dropPrefix(prefix.toString('latin1'));
  }

  /** Approximate committed size on disk in bytes: the sum of the file sizes under the path. */
  diskBytes(): Promise<number> {
    return directoryBytes(this.#path);
  }

  /** Waits for pending writes, then closes RocksDB (which waits for the read batches and iterators still open). */
  async close(): Promise<void> {
    await this.#writeTail;
    await this.#db.close();
  }
}

/** A Buffer view of the same bytes (no copy). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
