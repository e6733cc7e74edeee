// The slice of rocksdb-native the state backend uses, typed here, and the iterator read-ahead
// sizes measured for it.

import { createRequire } from 'node:module';

// rocksdb-native ships no types: the slice of its API used here, checked against its index.js
// and lib/batch.js (3.18). Loaded with require so that no ambient declaration is needed.
export interface RocksReadBatch { get(key: Buffer): Promise<Buffer | null>; flush(): Promise<void> }
export interface RocksWriteBatch {
  tryPut(key: Buffer, value: Buffer): void;
  tryDelete(key: Buffer): void;
  tryDeleteRange(start: Buffer, end: Buffer): void;
  flush(): Promise<void>;
}
export type RocksIterator = AsyncIterable<{ key: Buffer; value: Buffer | null }>;
export interface RocksDatabase {
  ready(): Promise<void>;
  read(options: { capacity: number; autoDestroy: boolean }): RocksReadBatch;
  write(options: { capacity: number; autoDestroy: boolean }): RocksWriteBatch;
  iterator(range: { gte: Buffer; lt?: Buffer; lte?: Buffer }, options: { capacity: number; values: boolean; reverse?: boolean; limit?: number }): RocksIterator;
  close(): Promise<void>;
}
/** Options of the default column family used here (rocksdb-native's lib/column-family.js). */
export interface RocksOptions { writeBufferSize?: number }
export const RocksDB = createRequire(import.meta.url)('rocksdb-native') as new (path: string, options?: RocksOptions) => RocksDatabase;

// Iterator read-ahead: the default of 8 makes scans ~1.6x slower (docs/STACK-NOTES.md).
export const SCAN_CAPACITY = 1024;
// hasMap usually stops at the first key; a small read-ahead avoids fetching a whole page.
export const PROBE_CAPACITY = 16;
