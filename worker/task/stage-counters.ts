import type { StageCounters as CountedTotals } from '../../core/control.ts';

/** Per-stage counters of one job on one worker, reported in heartbeats. */
export class StageCounters {
  readonly stageId: string;
  recordsIn = 0;
  recordsOut = 0;
  deadLetters = 0;
  /** The stage's channel senders on this worker, whose full-window waits are its backpressure. */
  readonly senders: Array<{ readonly backpressureMs: number }> = [];

  constructor(stageId: string) {
    this.stageId = stageId;
  }

  /** Milliseconds the stage's senders waited with full channel windows, summed. */
  get backpressureMs(): number {
    let ms = 0;
    for (const s of this.senders) ms += s.backpressureMs;
    return Math.round(ms);
  }

  /** records in and out and dead letters now: what a checkpoint cut counts (worker/checkpoint/checkpoint-cut.ts). */
  totals(): CountedTotals {
    return { stageId: this.stageId, recordsIn: this.recordsIn, recordsOut: this.recordsOut, deadLetters: this.deadLetters, backpressureMs: 0, senders: 0 };
  }

  snapshot() {
    return { stageId: this.stageId, recordsIn: this.recordsIn, recordsOut: this.recordsOut, deadLetters: this.deadLetters, backpressureMs: this.backpressureMs, senders: this.senders.length };
  }
}
