// Watermarks of a keyed task's input channels (docs/ARCHITECTURE.md, "Event time"): a key group's
// watermark is the minimum over the channels into it (one per upstream sender) that are not
// idle. An idle channel (a source split quiet for idleTimeoutMs) stops holding time back until
// it sends a watermark again. When every channel is idle the watermark moves to the largest of
// their watermarks (what each promised before going quiet). Watermarks never go back.
//
// After a restore every channel starts at -Infinity; each source split's generator restarts from
// the largest event time the checkpoint recorded for it and sends that watermark first (README,
// "Event time"), so the key groups' watermarks come back to where the checkpoint left them.

interface ChannelMark {
  watermark: number;
  idle: boolean;
}

export class ChannelWatermarks {
  readonly #channels = new Map<number, Map<string, ChannelMark>>();
  readonly #current = new Map<number, number>();

  constructor(senders: readonly string[], keyGroups: readonly number[]) {
    for (const kg of keyGroups) {
      this.#channels.set(kg, new Map(senders.map((s) => [s, { watermark: Number.NEGATIVE_INFINITY, idle: false }])));
      this.#current.set(kg, Number.NEGATIVE_INFINITY);
    }
  }

  /**
   * Key groups or senders changed (a move at a checkpoint boundary): channels that stay keep
   * their watermarks; a new key group or a new sender's channel starts at -Infinity.
   */
  reconfigure(senders: readonly string[], keyGroups: readonly number[]): void {
    const keep = new Set(keyGroups);
    for (const kg of [...this.#channels.keys()]) {
      if (!keep.has(kg)) {
        this.#channels.delete(kg);
        this.#current.delete(kg);
      }
    }
    for (const kg of keyGroups) {
      const old = this.#channels.get(kg);
      this.#channels.set(kg, new Map(senders.map((s) => [s, old?.get(s) ?? { watermark: Number.NEGATIVE_INFINITY, idle: false }])));
      if (!this.#current.has(kg)) this.#current.set(kg, Number.NEGATIVE_INFINITY);
    }
  }

  /** The key group's watermark (-Infinity before every active channel sent one). */
  watermark(keyGroup: number): number {
    return this.#current.get(keyGroup) ?? Number.NEGATIVE_INFINITY;
  }

  /**
   * Records a channel's watermark (or its idleness). Returns the key group's new watermark when it
   * advanced, undefined otherwise. A sender this task does not know is ignored.
   */
  update(keyGroup: number, sender: string, watermark: number, idle: boolean): number | undefined {
    const channels = this.#channels.get(keyGroup);
    const mark = channels?.get(sender);
    if (channels === undefined || mark === undefined) return undefined;
    // A channel's own watermark never goes back either (an idle marker repeats the last one).
    if (watermark > mark.watermark) mark.watermark = watermark;
    mark.idle = idle;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const m of channels.values()) {
      if (!m.idle && m.watermark < min) min = m.watermark;
      if (m.watermark > max) max = m.watermark;
    }
    // When the last active channel turns idle, nothing holds time back any more: move to the
    // largest watermark of all channels (Flink's StatusWatermarkValve does the same). Otherwise a
    // channel that went idle first would be stuck below the one that went idle last.
    const target = min === Number.POSITIVE_INFINITY ? max : min;
    const current = this.#current.get(keyGroup)!;
    if (target <= current) return undefined;
    this.#current.set(keyGroup, target);
    return target;
  }

  /** True when every channel into every key group is idle. */
  allIdle(): boolean {
    for (const channels of this.#channels.values()) for (const m of channels.values()) if (!m.idle) return false;
    return this.#channels.size > 0;
  }

  /** The minimum over the key groups: the watermark the task forwards downstream. */
  minimum(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const wm of this.#current.values()) if (wm < min) min = wm;
    return min === Number.POSITIVE_INFINITY ? Number.NEGATIVE_INFINITY : min;
  }
}
