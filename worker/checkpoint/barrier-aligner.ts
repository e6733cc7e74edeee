// Barrier alignment of one keyed task (docs/ARCHITECTURE.md, "Checkpoints"): a channel that
// delivered barrier N is held back until barrier N has arrived on every channel into every key
// group of the task; then the task reports alignment (the worker's cut, checkpoint-cut.ts) and
// its held channels wait until the worker has frozen its state.
//
// A key group reaches a barrier only after the batches before it on that channel, so once every
// channel delivered barrier N everything before it is processed. A newer barrier while aligning
// cancels the older alignment, as in Flink: that checkpoint was aborted.
import type { Logger } from '../../core/logger.ts';
import { ChannelBrokenError, ensureError } from '../../core/errors.ts';

export interface BarrierAlignerOptions {
  logger: Logger;
  /** How many channels deliver each barrier: the task's senders × its owned key groups. */
  expectedChannels(): number;
  /** The checkpoint at which a prepared move applies, if any: its alignment cannot be given up. */
  moveCheckpoint(): number | undefined;
  /** Barrier N arrived on the task's first channel: the worker's cut of N begins. @default none */
  onAligning?(checkpointId: number): void;
  /** Barrier N arrived on every channel: resolves when the held channels may go on. */
  onAligned(checkpointId: number): Promise<void>;
  /** The held channels go on: every key group's queue is looked at again. */
  resume(): void;
  fail(error: Error, keyGroup: number): void;
}

export class BarrierAligner {
  readonly #o: BarrierAlignerOptions;
  /** Channels ("<sender>|<keyGroup>") that delivered the barrier being aligned, held back until alignment. */
  readonly held = new Set<string>();
  /** How many times the held channels were let go (the held set only grows in between). */
  releases = 0;
  #aligning = -1;
  /** The newest checkpoint whose barrier this task has seen: an older barrier is stale. */
  #newestBarrier = 0;

  constructor(options: BarrierAlignerOptions) {
    this.#o = options;
  }

  /** The checkpoint being aligned, or -1. */
  get aligning(): number {
    return this.#aligning;
  }

  /** Barrier `checkpointId` arrived on `channel`, after everything before it on that channel was processed. */
  barrier(channel: string, checkpointId: number): void {
    // The barrier of a checkpoint a newer one superseded (below), on a channel that had not
    // delivered it then: nothing to align, what follows on the channel comes before the newer one.
    if (checkpointId < this.#newestBarrier || (checkpointId === this.#newestBarrier && this.#aligning === -1)) return;
    if (this.#aligning !== -1 && checkpointId !== this.#aligning) {
      // A newer barrier while aligning: checkpoint #aligning timed out and was aborted, and the
      // coordinator triggered the next one, whose barrier some sender injected without the older
      // one (its worker was still cutting it). As in Flink, the newer barrier cancels the older
      // alignment: the held channels go on (what they hold comes before the newer barrier) and
      // the older checkpoint is never cut here. A move prepared at the older checkpoint cannot
      // take effect without it: that recovers (as the coordinator does when a move's checkpoint fails).
      if (this.#o.moveCheckpoint() === this.#aligning) {
        return this.#o.fail(new ChannelBrokenError(`barrier ${checkpointId} on ${channel} while aligning checkpoint ${this.#aligning}, which moves key groups`), -1);
      }
      this.#o.logger.warn({ checkpoint: this.#aligning, newer: checkpointId, heldChannels: this.held.size }, 'alignment superseded by a newer barrier');
      this.held.clear();
      this.releases++;
      this.#aligning = -1;
      // Woken after this drain step: the key group running it may not be registered as active
      // yet (a drain's first step runs before it is recorded), and must not get a second drain.
      queueMicrotask(() => this.#o.resume());
    }
    if (this.#aligning === -1) {
      this.#aligning = checkpointId;
      this.#newestBarrier = checkpointId;
      this.#o.onAligning?.(checkpointId);
    }
    this.held.add(channel);
    if (this.held.size < this.#o.expectedChannels()) return;
    // Every channel delivered barrier N, and every key group processed what came before it
    // (a key group reaches its barriers only after its earlier batches).
    void this.#aligned(checkpointId);
  }

  async #aligned(checkpointId: number): Promise<void> {
    try {
      await this.#o.onAligned(checkpointId);
    } catch (e) {
      return this.#o.fail(ensureError(e), -1);
    }
    this.held.clear();
    this.releases++;
    this.#aligning = -1;
    this.#o.resume();
  }
}
