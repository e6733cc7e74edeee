// The state backend's options (worker/state/state-backend.ts): defaults, units and validation.
import { InvalidArgumentError } from '../../core/errors.ts';

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
  /**
   * The smallest size, in keys, of the filter of keys RocksDB may hold (worker/state/key-filter.ts:
   * a read of a key never written needs no RocksDB read); 0 turns it off. @default 1_048_576
   */
  keyFilterKeys?: number;
  /** RocksDB's memtable size in MB; it keeps up to two, so this bounds ~2× its memory for writes. @default 64 */
  writeBufferMb?: number;
}

export interface CompiledStateBackendOptions {
  path: string;
  readCacheEntries: number;
  liveEntries: number;
  keyFilterKeys: number;
  writeBufferMb: number;
}

export const DEFAULT_READ_CACHE_ENTRIES = 100_000;
/** ~1.3 MB of bits; the filter grows with the keys a rebuild finds. */
export const DEFAULT_KEY_FILTER_KEYS = 1 << 20;
/** ~250 B each with a small object value: about 125 MB when full. */
export const DEFAULT_LIVE_ENTRIES = 500_000;
/** rocksdb-native's default memtable size. */
export const DEFAULT_WRITE_BUFFER_MB = 64;

export function compileStateBackendOptions(options: StateBackendOptions): CompiledStateBackendOptions {
  if (typeof options.path !== 'string' || options.path === '') throw new InvalidArgumentError('state backend path must be a non-empty string');
  const readCacheEntries = options.readCacheEntries ?? DEFAULT_READ_CACHE_ENTRIES;
  if (!Number.isSafeInteger(readCacheEntries) || readCacheEntries < 0) {
    throw new InvalidArgumentError(`readCacheEntries must be a non-negative integer, got ${String(readCacheEntries)}`);
  }
  const liveEntries = options.liveEntries ?? DEFAULT_LIVE_ENTRIES;
  if (!Number.isSafeInteger(liveEntries) || liveEntries < 0) throw new InvalidArgumentError(`liveEntries must be a non-negative integer, got ${String(liveEntries)}`);
  const keyFilterKeys = options.keyFilterKeys ?? DEFAULT_KEY_FILTER_KEYS;
  if (!Number.isSafeInteger(keyFilterKeys) || keyFilterKeys < 0) throw new InvalidArgumentError(`keyFilterKeys must be a non-negative integer, got ${String(keyFilterKeys)}`);
  const writeBufferMb = options.writeBufferMb ?? DEFAULT_WRITE_BUFFER_MB;
  if (!Number.isSafeInteger(writeBufferMb) || writeBufferMb < 1 || writeBufferMb > 4096) throw new InvalidArgumentError(`writeBufferMb must be an integer from 1 to 4096, got ${String(writeBufferMb)}`);
  return { path: options.path, readCacheEntries, liveEntries, keyFilterKeys, writeBufferMb };
}
