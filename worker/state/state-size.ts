// The size of a worker's local state, for `eddy workers`: the bytes of the files under its jobs'
// directories (RocksDB's SST files, WAL and manifests), measured in the background every few
// seconds. A walk costs a stat per file, so it runs on a timer and heartbeats read the last figure.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** How often the directory is measured again. */
export const STATE_SIZE_INTERVAL_MS = 5_000;

export class StateSizeProbe {
  readonly #dir: string;
  readonly #intervalMs: number;
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #measuring = false;

  constructor(dir: string, intervalMs = STATE_SIZE_INTERVAL_MS) {
    this.#dir = dir;
    this.#intervalMs = intervalMs;
  }

  /** The last measurement (0 before the first one completes). */
  get bytes(): number {
    return this.#bytes;
  }

  start(): void {
    void this.#measure();
    this.#timer = setInterval(() => void this.#measure(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #measure(): Promise<void> {
    if (this.#measuring) return;
    this.#measuring = true;
    try {
      this.#bytes = await bytesUnder(this.#dir);
    } finally {
      this.#measuring = false;
    }
  }
}

/** Sum of regular files' sizes under dir; files that vanish during the walk (compaction) count 0. */
export async function bytesUnder(dir: string): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let total = 0;
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await bytesUnder(full);
    else if (entry.isFile()) total += await stat(full).then((s) => s.size, () => 0);
  }
  return total;
}
