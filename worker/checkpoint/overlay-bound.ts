// The overlay's memory bound (docs/ARCHITECTURE.md, "State" step 6): past it, a worker asks the
// coordinator for an early checkpoint, which freezes the overlay and moves it to RocksDB once
// complete. Tasks are not paused: records ahead of the barrier must be processed for the
// checkpoint to cut at all.
//
// The keyed tasks look after every batch, and asks are at most one per ASK_EVERY_MS. An ask that
// fell in that pause used to be dropped, and if no batch came after it (the input had ended) the
// overlay stayed past its bound with nothing asking, until the next periodic checkpoint. So while
// the overlay is past its bound, the bound looks again itself once the pause is over.

/** At most one ask per this many ms; the coordinator starts the next checkpoint at once anyway. */
export const ASK_EVERY_MS = 250;

export interface OverlayBoundOptions {
  /** The bytes of changes held in memory since the last barrier. */
  bytes(): number;
  maxBytes: number;
  /** Asks the coordinator for a checkpoint now. */
  ask(bytes: number): void;
  /** @default ASK_EVERY_MS */
  askEveryMs?: number;
}

export class OverlayBound {
  readonly #o: OverlayBoundOptions;
  #lastAskMs = Number.NEGATIVE_INFINITY;
  #again: NodeJS.Timeout | undefined;
  #closed = false;
  /** Asks made; for tests. */
  asks = 0;

  constructor(options: OverlayBoundOptions) {
    this.#o = options;
  }

  /** Asks for a checkpoint when the overlay is past its bound and the last ask is old enough; otherwise looks again once it is. */
  check(): void {
    if (this.#closed) return;
    const bytes = this.#o.bytes();
    if (bytes <= this.#o.maxBytes) return;
    const everyMs = this.#o.askEveryMs ?? ASK_EVERY_MS;
    const waitMs = this.#lastAskMs + everyMs - Date.now();
    if (waitMs <= 0) {
      this.#lastAskMs = Date.now();
      this.asks++;
      this.#o.ask(bytes);
    }
    // Still past the bound after the pause (no checkpoint froze it, or the ask was lost): ask again.
    this.#again ??= setTimeout(() => {
      this.#again = undefined;
      this.check();
    }, waitMs > 0 ? waitMs : everyMs);
    this.#again.unref();
  }

  /** True while a look of its own is scheduled (the overlay was past its bound at the last look). */
  get watching(): boolean {
    return this.#again !== undefined;
  }

  close(): void {
    this.#closed = true;
    if (this.#again !== undefined) clearTimeout(this.#again);
    this.#again = undefined;
  }
}
