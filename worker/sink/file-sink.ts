// A files sink: NDJSON part files in the job's object store, exactly-once as Flink's FileSink
// (docs/ARCHITECTURE.md, "Sources and sinks"). Records are appended to an open part per partition
// directory; a part is closed when it reaches rollSizeBytes, when it is rollIntervalMs old, and
// at every checkpoint barrier. At barrier N the parts closed since barrier N-1 become part of
// checkpoint N: the worker stages them under the checkpoint (worker/checkpoint/checkpoint-writer.ts), and
// the coordinator copies them to their final names once N completes (coordinator/file-commit.ts).
// Until then nothing is visible; a recovery drops what was written after the last completed
// checkpoint (it is in memory or staged under an uncompleted checkpoint) and the replayed input
// writes it again, into parts of a later checkpoint.
import type { FilesSinkSpec } from '../../core/manifest.ts';

/** A closed part file of a files sink, to be staged with its checkpoint and committed when it completes. */
export interface FilePart {
  file: { finalKey: string; bytes: Uint8Array; records: number };
}

interface OpenPart {
  dir: string;
  /** Filled chunks of UTF-8 lines, then the first `used` bytes of `chunk`. */
  full: Buffer[];
  chunk: Buffer;
  used: number;
  bytes: number;
  records: number;
  openedAtMs: number;
}

/**
 * A part's lines are written into chunks of bytes as they come: a part lives until the next
 * barrier, and a string per line held that long was copied by every scavenge of the young
 * generation and then promoted (~140 of the ~880 bytes an event that customer-experience's worker
 * promoted; bench/profile.ts gc). Chunks start small and double up to the largest, so that many
 * partitions open at once (a replay of many days) waste at most about what they hold.
 */
const FIRST_CHUNK_BYTES = 1024;
const LARGEST_CHUNK_BYTES = 64 * 1024;

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** An ExactlyOnceSink (worker/sink/sinks.ts). */
export class FileSink {
  readonly exactlyOnce = true;
  readonly pending = 0;
  readonly failure = undefined;
  readonly #spec: FilesSinkSpec;
  /** Names the task in part names: the stage and the worker (keyed) or split (source). */
  readonly #task: string;
  readonly #open = new Map<string, OpenPart>();
  #closed: OpenPart[] = [];
  /** Last partition directory computed, and the time bucket it is for (no Date per record). */
  #bucket = Number.NaN;
  #bucketDir = '';

  constructor(spec: FilesSinkSpec, task: string) {
    this.#spec = spec;
    this.#task = task;
  }

  write(value: unknown, timestampMs?: number): void {
    this.#append(JSON.stringify(value) + '\n', this.#dirOf(timestampMs ?? Date.now()));
  }

  /** The line and its partition directory; throws for a value or a time that cannot be written. */
  prepare(value: unknown, timestampMs?: number): unknown {
    return { line: JSON.stringify(value) + '\n', dir: this.#dirOf(timestampMs ?? Date.now()) };
  }

  commit(prepared: unknown): void {
    const { line, dir } = prepared as { line: string; dir: string };
    this.#append(line, dir);
  }

  #append(line: string, dir: string): void {
    const now = Date.now();
    let part = this.#open.get(dir);
    if (part === undefined) {
      part = { dir, full: [], chunk: Buffer.allocUnsafe(FIRST_CHUNK_BYTES), used: 0, bytes: 0, records: 0, openedAtMs: now };
      this.#open.set(dir, part);
    }
    const length = Buffer.byteLength(line);
    if (part.used + length > part.chunk.length) {
      part.full.push(part.chunk.subarray(0, part.used));
      part.chunk = Buffer.allocUnsafe(Math.max(Math.min(2 * part.chunk.length, LARGEST_CHUNK_BYTES), length));
      part.used = 0;
    }
    part.used += part.chunk.write(line, part.used, length, 'utf8');
    part.bytes += length;
    part.records++;
    if (part.bytes >= this.#spec.rollSizeBytes || now - part.openedAtMs >= this.#spec.rollIntervalMs) {
      this.#open.delete(dir);
      this.#closed.push(part);
    }
  }

  #dirOf(timestampMs: number): string {
    const by = this.#spec.partitionBy;
    if (by === 'none') return '';
    const bucket = Math.floor(timestampMs / (by === 'day' ? DAY_MS : HOUR_MS));
    if (bucket !== this.#bucket) {
      const iso = new Date(bucket * (by === 'day' ? DAY_MS : HOUR_MS)).toISOString();
      this.#bucket = bucket;
      this.#bucketDir = by === 'day' ? `dt=${iso.slice(0, 10)}` : `dt=${iso.slice(0, 10)}/hr=${iso.slice(11, 13)}`;
    }
    return this.#bucketDir;
  }

  /**
   * Barrier N: closes every open part and hands over the parts of checkpoint N with their final
   * keys `<path>/<dir>/part-<N>-<task>-<i>.ndjson` (N zero-padded, so names sort by checkpoint).
   */
  take(checkpointId: number): FilePart[] {
    for (const part of this.#open.values()) this.#closed.push(part);
    this.#open.clear();
    const closed = this.#closed;
    this.#closed = [];
    const n = String(checkpointId).padStart(12, '0');
    return closed.map((p, i) => ({
      file: {
        finalKey: [this.#spec.path, p.dir, `part-${n}-${this.#task}-${i}.ndjson`].filter((s) => s !== '').join('/'),
        bytes: Buffer.concat([...p.full, p.chunk.subarray(0, p.used)], p.bytes),
        records: p.records,
      },
    }));
  }

  async flush(): Promise<void> {}
  close(): void {}
}
