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
import { KeyFilter } from './key-filter.ts';
import { ReadBatcher } from './read-batcher.ts';
import { ReadCache } from './read-cache.ts';
import { RocksDB, SCAN_CAPACITY, type RocksDatabase, type RocksIterator } from './rocksdb.ts';

/** Past this many keys RocksDB is read for every miss: no filter (it would take over 64 MB). */
const MAX_KEY_FILTER_KEYS = 2 ** 25;

export interface CommittedStoreStats {
  readBatches: number;
  keyFilterOn: boolean;
  filteredReads: number;
  filterRebuilds: number;
  writeYields: number;
  /** Entries (puts and deletes) commits wrote to RocksDB. */
  writtenEntries: number;
  /** RocksDB iterators opened (range reads and scans). */
  iterators: number;
}

export class CommittedStore {
  readonly #db: RocksDatabase;
  readonly #path: string;
  /** Committed values and maps read recently (dropped or updated by every write here). */
  readonly cache: ReadCache;
  readonly #reads: ReadBatcher;
  // Commits and range deletes are applied one at a time, in call order.
  #writeTail: Promise<void> = Promise.resolve();
  /**
   * Every key RocksDB may hold (key-filter.ts), added before the write that puts it; undefined
   * when off (RocksDB was not empty when opened, or holds too many keys). A read of a key it does
   * not hold is answered absent without RocksDB.
   */
  #filter: KeyFilter | undefined;
  /** The filter a scan is filling, from the keys RocksDB held when it began; writes since go into both. */
  #nextFilter: KeyFilter | undefined;
  readonly #minFilterKeys: number;
  /** Keys the last rebuild's scan found: the next filter is sized from it. */
  #lastScanned = 0;
  /** Reads answered absent by the key filter (no RocksDB read). */
  #filteredReads = 0;
  /** Key filter rebuilds completed. */
  #filterRebuilds = 0;
  /** Turns given to the event loop while write batches were built (every WRITE_SLICE entries). */
  #writeYields = 0;
  #writtenEntries = 0;
  #iterators = 0;
  /** The key filter's rebuild scan under way (close() waits for it). */
  #filterScan: Promise<void> = Promise.resolve();
  #closing = false;

  private constructor(db: RocksDatabase, path: string, readCacheEntries: number, filterKeys: number | undefined) {
    this.#db = db;
    this.#path = path;
    this.cache = new ReadCache(readCacheEntries);
    this.#reads = new ReadBatcher(db, this.cache);
    this.#minFilterKeys = filterKeys ?? 0;
    this.#filter = filterKeys === undefined ? undefined : new KeyFilter(filterKeys);
  }

  /**
   * Opens (creates) RocksDB at path. keyFilterKeys: the key filter's smallest size (0: no filter);
   * the filter is on only when the directory is new or empty, so that every key RocksDB holds is
   * one written here.
   */
  static async open(path: string, readCacheEntries: number, keyFilterKeys: number, writeBufferMb: number): Promise<CommittedStore> {
    const created = await mkdir(path, { recursive: true });
    const empty = created !== undefined || (await readdir(path)).length === 0;
    const db = new RocksDB(path, { writeBufferSize: writeBufferMb * 2 ** 20 });
    await db.ready();
    return new CommittedStore(db, path, readCacheEntries, empty && keyFilterKeys > 0 ? keyFilterKeys : undefined);
  }

  /** The committed value of an encoded key (null: absent): from the cache, else in the tick's read batch. */
  read(key: string): Entry | Promise<Entry> {
    const cached = this.cache.getValue(key);
    if (cached !== undefined) return cached;
    if (this.#filter !== undefined && !this.#filter.mayContainString(key)) {
      this.#filteredReads++;
      return null;
    }
    return this.#reads.read(key);
  }

  /** A key about to be put: into the filter, and the one being built. Call before the write. */
  #notePut(key: string | Uint8Array): void {
    const filter = this.#filter;
    if (filter === undefined) return;
    if (typeof key === 'string') {
      filter.addString(key);
      this.#nextFilter?.addString(key);
    } else {
      filter.addBytes(key);
      this.#nextFilter?.addBytes(key);
    }
  }

  /**
   * After a write: a filter that took as many keys as it was sized for is rebuilt from a scan of
   * RocksDB (deleted keys drop out of it), sized for twice the keys the last scan found. Call in
   * the write queue, after the write, and await what it returns there: the scan's iterator opens
   * (a RocksDB iterator reads a snapshot taken when it opens) while nothing is being written, and
   * every key put after that goes into the new filter too. The scan itself runs on.
   */
  #maybeRebuildFilter(): Promise<void> | undefined {
    const filter = this.#filter;
    if (filter === undefined || this.#nextFilter !== undefined || filter.added <= filter.capacity) return undefined;
    const keys = Math.max(this.#minFilterKeys, 2 * this.#lastScanned);
    if (keys > MAX_KEY_FILTER_KEYS) {
      this.#filter = undefined;
      return undefined;
    }
    const next = new KeyFilter(keys);
    let iterator: AsyncIterator<{ key: Buffer; value: Buffer | null }>;
    let opened: Promise<IteratorResult<{ key: Buffer; value: Buffer | null }>>;
    try {
      iterator = this.#db.iterator({ gte: Buffer.alloc(0) }, { capacity: SCAN_CAPACITY, values: false })[Symbol.asyncIterator]();
      opened = iterator.next();
    } catch {
      // No rebuild now (the old filter stays a superset): a write is never failed by one.
      return undefined;
    }
    this.#nextFilter = next;
    const scan = async (): Promise<void> => {
      let scanned = 0;
      for (let item = await opened; item.done !== true && !this.#closing; item = await iterator.next()) {
        next.addBytes(item.value.key);
        scanned++;
      }
      if (this.#closing) {
        await iterator.return?.();
        return;
      }
      this.#lastScanned = scanned;
      if (this.#filter !== undefined) {
        this.#filter = next;
        this.#filterRebuilds++;
      }
    };
    // A failed scan keeps the old filter, still a superset of RocksDB's keys.
    this.#filterScan = scan()
      .catch(() => undefined)
      .finally(() => {
        this.#nextFilter = undefined;
      });
    return opened.then(
      () => undefined,
      () => undefined,
    );
  }

  /** What the store counted so far (for tests): read batches sent, reads the key filter answered, its rebuilds, turns given while building write batches. */
  get stats(): CommittedStoreStats {
    return { readBatches: this.#reads.batches, keyFilterOn: this.#filter !== undefined, filteredReads: this.#filteredReads, filterRebuilds: this.#filterRebuilds, writeYields: this.#writeYields, writtenEntries: this.#writtenEntries, iterators: this.#iterators };
  }

  /** Committed entries in a key range, in key order (reverse when asked). */
  iterator(range: { gte: Buffer; lt?: Buffer; lte?: Buffer }, options: { capacity: number; values: boolean; reverse?: boolean; limit?: number }): RocksIterator {
    this.#iterators++;
    return this.#db.iterator(range, options);
  }

  /** Committed entries under a prefix, in key order. */
  scan(prefix: Buffer, capacity: number, values: boolean): RocksIterator {
    this.#iterators++;
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
    // Oldest delta first: within one batch the later operation on a key wins. Building a batch of
    // many entries takes ms of the job's thread: it lets other work run every WRITE_SLICE entries
    // (the deltas stay readable above RocksDB until the commit ends; a key group dropped meanwhile
    // loses its entries from them, and its range delete follows this write in the queue).
    let built = 0;
    const slices = new WriteSlices();
    for (const delta of deltas) {
      for (const [key, value] of delta.overlay.entries) {
        if (value === null) batch.tryDelete(Buffer.from(key, 'latin1'));
        else {
          this.#notePut(key);
          batch.tryPut(Buffer.from(key, 'latin1'), value);
        }
        if ((++built & CLOCK_EVERY_MASK) === 0 && slices.due()) await this.#yield(slices);
      }
    }
    await batch.flush();
    this.#writtenEntries += built;
    this.cache.bumpEpoch();
    // Map entries are indexed by their map's prefix: exactly the cached maps this commit changed.
    for (const delta of deltas) this.cache.applyCommitted(delta.overlay);
    await this.#maybeRebuildFilter();
  }

  /**
   * Writes one key group's entries in one batch (tombstones delete), the key group's range deleted
   * first with `replace`, and drops the key group from the cache. Call in the write queue.
   */
  async writeKeyGroup(prefix: Buffer, entries: KeyGroupEntries['entries'], replace: boolean): Promise<void> {
    const batch = this.#db.write({ capacity: entries.length + 1, autoDestroy: true });
    if (replace) batch.tryDeleteRange(prefix, prefixUpperBound(prefix));
    const slices = new WriteSlices();
    for (let i = 0; i < entries.length; i++) {
      const [key, value] = entries[i]!;
      if (value === null) batch.tryDelete(asBuffer(key));
      else {
        this.#notePut(key);
        batch.tryPut(asBuffer(key), asBuffer(value));
      }
      if (((i + 1) & CLOCK_EVERY_MASK) === 0 && slices.due()) await this.#yield(slices);
    }
    await batch.flush();
    this.cache.dropPrefix(prefix.toString('latin1'));
    await this.#maybeRebuildFilter();
  }

  /** Gives the event loop a turn in the middle of building a write batch. */
  async #yield(slices: WriteSlices): Promise<void> {
    this.#writeYields++;
    await new Promise((resolve) => setImmediate(resolve));
    slices.resumed();
  }

  /** Approximate committed size on disk in bytes: the sum of the file sizes under the path. */
  diskBytes(): Promise<number> {
    return directoryBytes(this.#path);
  }

  /** Waits for pending writes, then closes RocksDB (which waits for the read batches and iterators still open). */
  async close(): Promise<void> {
    await this.#writeTail;
    this.#closing = true;
    await this.#filterScan;
    await this.#db.close();
  }
}

/** A write batch being built reads the clock every 256 entries (a mask: 255). */
const CLOCK_EVERY_MASK = 255;
/** The shortest stretch of building a write batch between two turns of the event loop. */
const WRITE_SLICE_MS = 4;

/**
 * When a write batch being built gives the event loop a turn: after a slice of at least
 * WRITE_SLICE_MS and at least a third of the time the write has taken so far. On a loaded job
 * thread one turn of the loop can take hundreds of ms (every key group's drain runs its stretch
 * in it). With a fixed slice per turn a commit of 105 k entries waited 22 s for 51 turns, while the
 * coordinator, which starts the next checkpoint once every worker has committed, waited for it and
 * the next delta grew tenfold. Growing slices keep a write to about a quarter of the thread while
 * it waits for turns and end it within a few turns, however long they are.
 */
class WriteSlices {
  readonly #start = performance.now();
  #sliceEnd = this.#start + WRITE_SLICE_MS;

  /** True when this slice is used up: the caller yields, then calls resumed(). */
  due(): boolean {
    return performance.now() >= this.#sliceEnd;
  }

  resumed(): void {
    const now = performance.now();
    this.#sliceEnd = now + Math.max(WRITE_SLICE_MS, (now - this.#start) / 3);
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
