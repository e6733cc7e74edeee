// Bounded-out-of-orderness watermarks of one source split (sdk/options.ts WatermarkOptions): the
// watermark is (largest event time read) - maxOutOfOrdernessMs - 1, as in Flink, and a split that
// reads nothing for idleTimeoutMs is idle until its next record. A split's task (a JetStream split,
// source-task.ts, or a generator split, generator-task.ts) polls this every watermarkIntervalMs
// (startSplitWatermarks) and sends what it returns in-band on every channel.
import type { EventTimeSpec } from '../../core/manifest.ts';
import { ensureError } from '../../core/errors.ts';
import type { Clock } from '../state/index.ts';

export interface WatermarkUpdate {
  watermark: number;
  idle: boolean;
}

export class WatermarkGenerator {
  readonly #spec: EventTimeSpec;
  readonly #clock: Clock;
  #maxTimestamp = Number.NEGATIVE_INFINITY;
  #lastRecordAtMs: number;
  #idle = false;
  #sentWatermark = Number.NEGATIVE_INFINITY;
  #sentIdle = false;

  constructor(spec: EventTimeSpec, clock: Clock = Date.now) {
    this.#spec = spec;
    this.#clock = clock;
    // A split that never reads a record becomes idle idleTimeoutMs after it starts.
    this.#lastRecordAtMs = clock();
  }

  /** Restarts from the largest event time read before a restore (a checkpoint's sourceEventTimes). */
  restore(maxTimestampMs: number): void {
    if (maxTimestampMs > this.#maxTimestamp) this.#maxTimestamp = maxTimestampMs;
  }

  /** The largest event time read (-Infinity before the first record). */
  get maxTimestamp(): number {
    return this.#maxTimestamp;
  }

  onRecord(timestampMs: number): void {
    if (timestampMs > this.#maxTimestamp) this.#maxTimestamp = timestampMs;
    this.#lastRecordAtMs = this.#clock();
    this.#idle = false;
  }

  /** The split's current watermark (-Infinity before its first record). */
  get watermark(): number {
    return this.#maxTimestamp - this.#spec.maxOutOfOrdernessMs - 1;
  }

  /** What was last sent (undefined before anything was): sent again after a move's barrier. */
  lastSent(): WatermarkUpdate | undefined {
    if (this.#sentWatermark === Number.NEGATIVE_INFINITY && !this.#sentIdle) return undefined;
    return { watermark: this.#sentWatermark, idle: this.#sentIdle };
  }

  /** What to send now, or undefined when nothing changed since the last poll that sent. */
  poll(): WatermarkUpdate | undefined {
    const idleTimeoutMs = this.#spec.idleTimeoutMs;
    if (!this.#idle && idleTimeoutMs !== undefined && this.#clock() - this.#lastRecordAtMs >= idleTimeoutMs) this.#idle = true;
    const watermark = this.watermark;
    if (this.#idle === this.#sentIdle && (this.#idle || watermark <= this.#sentWatermark)) return undefined;
    this.#sentIdle = this.#idle;
    if (watermark > this.#sentWatermark) this.#sentWatermark = watermark;
    return { watermark: this.#sentWatermark, idle: this.#idle };
  }
}

/** A split's watermarks while it runs: the generator its records feed, and the clock that polls it. */
export interface SplitWatermarks {
  generator: WatermarkGenerator;
  /** Polls the generator; cleared when the split stops or fails. */
  timer: NodeJS.Timeout;
}

/**
 * Starts a split's watermarks: a generator restored to the largest event time read before (the
 * watermark does not go back at a restore), polled every watermarkIntervalMs. What a poll
 * returns goes to `send` while `running()`: between two records, since a split emits each record
 * synchronously, and so after every record sent before it. A throw of `send` goes to `fail`.
 */
export function startSplitWatermarks(spec: EventTimeSpec, restoredMaxMs: number, send: (watermark: number, idle: boolean) => void, running: () => boolean, fail: (error: Error) => void): SplitWatermarks {
  const generator = new WatermarkGenerator(spec);
  generator.restore(restoredMaxMs);
  const timer = setInterval(() => {
    const update = generator.poll();
    if (update === undefined || !running()) return;
    try {
      send(update.watermark, update.idle);
    } catch (e) {
      fail(ensureError(e));
    }
  }, spec.watermarkIntervalMs);
  timer.unref();
  return { generator, timer };
}
