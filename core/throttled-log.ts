// Log lines for things an outsider can make happen as often as they like — forged control
// messages, forged record batches — at most `burst` per interval per kind, with a count: a flood
// of forgeries must not become a flood of log lines (disk, CPU, the operator's attention). The
// first `burst` of a kind in an interval are logged at once; later ones are counted and logged
// together when the interval ends, with the last one's details.
import type { Logger } from './logger.ts';

/** How often one kind of rejection is logged, at most. @default 10 s */
export const DEFAULT_REJECTION_LOG_INTERVAL_MS = 10_000;

interface Kind {
  name: string;
  /** When this kind's current interval began. */
  windowStartMs: number;
  /** Lines logged in the current interval. */
  logged: number;
  /** Rejections since then, not logged yet. */
  suppressed: number;
  /** Every rejection of this kind so far. */
  total: number;
  last: { fields: Record<string, unknown>; message: string } | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class ThrottledLog {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #burst: number;
  readonly #kinds = new Map<string, Kind>();

  constructor(logger: Logger, options: { intervalMs?: number; burst?: number } = {}) {
    this.#logger = logger;
    this.#intervalMs = options.intervalMs ?? DEFAULT_REJECTION_LOG_INTERVAL_MS;
    this.#burst = options.burst ?? 1;
  }

  /** Counts one rejection of `kind` and logs it (warn), unless one of its kind was logged within the interval. */
  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    let k = this.#kinds.get(kind);
    if (k === undefined) this.#kinds.set(kind, (k = { name: kind, windowStartMs: 0, logged: 0, suppressed: 0, total: 0, last: undefined, timer: undefined }));
    k.total++;
    const now = Date.now();
    if (now - k.windowStartMs >= this.#intervalMs && k.timer === undefined) {
      k.windowStartMs = now;
      k.logged = 0;
    }
    if (k.logged < this.#burst) {
      k.logged++;
      this.#logger.warn({ ...fields, kind, count: 1, total: k.total }, message);
      return;
    }
    k.suppressed++;
    k.last = { fields, message };
    const flush = k;
    k.timer ??= setTimeout(() => this.#flush(flush), Math.max(0, k.windowStartMs + this.#intervalMs - now)).unref();
  }

  /** Rejections of `kind` so far (all kinds when absent). */
  total(kind?: string): number {
    if (kind !== undefined) return this.#kinds.get(kind)?.total ?? 0;
    let n = 0;
    for (const k of this.#kinds.values()) n += k.total;
    return n;
  }

  /** Logs what is suppressed now (when stopping). */
  close(): void {
    for (const k of this.#kinds.values()) this.#flush(k);
  }

  #flush(k: Kind): void {
    clearTimeout(k.timer);
    k.timer = undefined;
    if (k.suppressed === 0 || k.last === undefined) return;
    // The summary opens a new interval: the next rejection waits for its end.
    k.windowStartMs = Date.now();
    k.logged = this.#burst;
    this.#logger.warn({ ...k.last.fields, kind: k.name, count: k.suppressed, total: k.total }, k.last.message);
    k.suppressed = 0;
    k.last = undefined;
  }
}
