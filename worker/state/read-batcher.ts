// Reads of committed values issued in the same tick share one RocksDB read batch (one crossing
// into the native side), and a key read twice in a tick is read once. What comes back fills the
// read cache, unless RocksDB changed while the batch was out (ReadCache epoch).
import { EddyError } from '../../core/errors.ts';
import type { Entry } from './overlay.ts';
import type { ReadCache } from './read-cache.ts';
import type { RocksDatabase } from './rocksdb.ts';

type PendingRead = { key: string; resolve: (value: Entry) => void; reject: (error: unknown) => void };

export class ReadBatcher {
  readonly #db: RocksDatabase;
  readonly #cache: ReadCache;
  #pending: PendingRead[] = [];
  readonly #pendingByKey = new Map<string, Promise<Entry>>();
  /** RocksDB read batches sent so far (each is one crossing into the native side and back). */
  batches = 0;

  constructor(db: RocksDatabase, cache: ReadCache) {
    this.#db = db;
    this.#cache = cache;
  }

  /** The committed value of an encoded key (latin1), null when absent. */
  read(key: string): Promise<Entry> {
    const pending = this.#pendingByKey.get(key);
    if (pending !== undefined) return pending;
    const read = new Promise<Entry>((resolve, reject) => this.#pending.push({ key, resolve, reject }));
    this.#pendingByKey.set(key, read);
    if (this.#pending.length === 1) queueMicrotask(() => this.#flush());
    return read;
  }

  #flush(): void {
    this.batches++;
    const reads = this.#pending;
    this.#pending = [];
    this.#pendingByKey.clear();
    const epoch = this.#cache.epoch;
    let values: Promise<[Array<Buffer | null>, void]>;
    try {
      const batch = this.#db.read({ capacity: reads.length, autoDestroy: true });
      const gets = reads.map((read) => batch.get(Buffer.from(read.key, 'latin1')));
      values = Promise.all([Promise.all(gets), batch.flush()]);
    } catch (error) {
      values = Promise.reject(error);
    }
    values.then(
      ([found]) => {
        const fill = epoch === this.#cache.epoch;
        for (let i = 0; i < reads.length; i++) {
          const read = reads[i]!;
          const value = found[i] ?? null;
          if (fill) this.#cache.setValue(read.key, value);
          read.resolve(value);
        }
      },
      (error: unknown) => {
        const failure = new EddyError('INTERNAL', `RocksDB read of ${reads.length} state keys failed`, { cause: error });
        for (const read of reads) read.reject(failure);
      },
    );
  }
}
