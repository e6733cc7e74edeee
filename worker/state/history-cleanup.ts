// Background cleanup of feature history past its retention (worker/state/feature-state.ts has the key
// layout). Each pass reads at most maxVersionsPerPass committed versions, resuming where the last
// pass stopped, and deletes superseded versions older than the retention by writing tombstones into
// the overlay: the deletions travel through the checkpoint path like any other change.
//
// Retention is event time relative to the key's newest version: for a key whose newest version is
// at N, versions before N - retentionMs are deleted, except the one current at N - retentionMs, so
// every as-of read within the retention still finds its answer. Only committed versions are read:
// a newer version still in an overlay only makes the true cutoff later, so the pass deletes less,
// never too much.
import type { Logger } from '../../core/logger.ts';
import { ensureError } from '../../core/errors.ts';
import type { StateBackend } from './state-backend.ts';
import { keyGroupPrefix } from './state-backend.ts';
import { HISTORY_STATE_PREFIX, decodeVersionTime } from './feature-state.ts';

export interface HistoryCleanupTarget {
  stage: string;
  state: string;
  retentionMs: number;
}

export interface HistoryCleanupOptions {
  backend: StateBackend;
  targets: readonly HistoryCleanupTarget[];
  keyGroups: readonly number[];
  logger: Logger;
  /** Pause between passes. @default 5000 */
  intervalMs?: number;
  /** Committed versions read per pass at most (a key with more is finished). @default 10000 */
  maxVersionsPerPass?: number;
}

/** The key prefix of one state's history in one key group: [stage][kg][len]["\0h:" + state]. */
export function historyRangePrefix(stage: string, keyGroup: number, state: string): Buffer {
  const name = Buffer.from(HISTORY_STATE_PREFIX + state, 'utf8');
  return Buffer.concat([keyGroupPrefix(stage, keyGroup), Buffer.from([name.length]), name]);
}

export class HistoryCleaner {
  readonly #o: Required<HistoryCleanupOptions>;
  /** Round robin over (target, key group), each with the key to resume from. */
  readonly #ranges: Array<{ prefix: Buffer; retentionMs: number; resumeFrom: Buffer }>;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #running: Promise<unknown> = Promise.resolve();
  deleted = 0;

  constructor(options: HistoryCleanupOptions) {
    this.#o = { intervalMs: 5000, maxVersionsPerPass: 10_000, ...options };
    this.#ranges = [];
    for (const t of options.targets) {
      for (const kg of options.keyGroups) {
        const prefix = historyRangePrefix(t.stage, kg, t.state);
        this.#ranges.push({ prefix, retentionMs: t.retentionMs, resumeFrom: prefix });
      }
    }
  }

  start(): void {
    if (this.#ranges.length === 0) return;
    const tick = () => {
      this.#running = this.pass()
        .catch((e) => this.#o.logger.warn({ err: ensureError(e) }, 'history cleanup pass failed'))
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(tick, this.#o.intervalMs).unref();
        });
    };
    this.#timer = setTimeout(tick, this.#o.intervalMs).unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** One bounded pass; returns the number of versions deleted. */
  async pass(): Promise<number> {
    let budget = this.#o.maxVersionsPerPass;
    let deleted = 0;
    for (let visited = 0; visited < this.#ranges.length && budget > 0 && !this.#stopped; visited++) {
      const range = this.#ranges[this.#next]!;
      const result = await this.#cleanRange(range, budget);
      if (this.#stopped) break;
      budget -= result.read;
      deleted += result.deleted;
      if (result.done) {
        range.resumeFrom = range.prefix;
        this.#next = (this.#next + 1) % this.#ranges.length;
      }
    }
    this.deleted += deleted;
    return deleted;
  }

  async #cleanRange(range: { prefix: Buffer; retentionMs: number; resumeFrom: Buffer }, budget: number): Promise<{ read: number; deleted: number; done: boolean }> {
    const { backend } = this.#o;
    const base = range.prefix.length;
    let read = 0;
    let deleted = 0;
    // Versions of the key being read: [latin1 key, time].
    let group: Array<[string, number]> = [];
    let groupKey: string | undefined;
    const tombstones: Array<[string, string]> = [];
    const flush = () => {
      if (group.length < 2) return;
      const newest = group[group.length - 1]![1];
      const cutoff = newest - range.retentionMs;
      let kept = -1;
      for (let i = 0; i < group.length; i++) if (group[i]![1] <= cutoff) kept = i;
      for (let i = 0; i < kept; i++) {
        const key = group[i]![0];
        // Deleted by an earlier pass, not committed yet: nothing to do.
        if (!backend.overlayHas(key)) tombstones.push([key, key.slice(0, -8)]);
      }
    };
    for await (const { key } of backend.scanCommitted(range.prefix, range.resumeFrom)) {
      const keyLength = key.readUInt16BE(base);
      const userKey = key.toString('latin1', base, base + 2 + keyLength);
      if (userKey !== groupKey) {
        flush();
        if (read >= budget) {
          // Resume at this key next time: its versions must be seen together.
          range.resumeFrom = Buffer.from(key.subarray(0, base + 2 + keyLength));
          this.#apply(tombstones);
          return { read, deleted: tombstones.length, done: false };
        }
        group = [];
        groupKey = userKey;
      }
      group.push([key.toString('latin1'), decodeVersionTime(key, key.length - 8)]);
      read++;
    }
    flush();
    deleted = tombstones.length;
    this.#apply(tombstones);
    return { read, deleted, done: true };
  }

  #apply(tombstones: Array<[string, string]>): void {
    // The runtime may have stopped (a redeploy) while the scan ran: its key groups may be moving.
    if (this.#stopped) return;
    for (const [key, indexPrefix] of tombstones) this.#o.backend.putRaw(key, null, indexPrefix);
  }
}
