// Time in a keyed task: input watermarks per key group, event- and processing-time timers, and
// the background TTL sweep. The task calls in from each key group's drain loop, so everything
// here runs in order with that key group's records (an actor processes one thing at a time):
//   - a WATERMARK batch → onWatermark: the key group's watermark may advance; due event-time
//     timers fire; the task's watermark (minimum over its key groups) goes downstream.
//   - a clock tick (a local queue item every tickIntervalMs) → onTick: due processing-time timers
//     fire, and one key group per tick round sweeps a bounded number of entries for TTL.
import type { Logger } from '../../core/logger.ts';
import type { StateSpec } from '../../core/manifest.ts';
import type { StateDescriptor } from '../../sdk/index.ts';
import { ChannelWatermarks } from '../channel/index.ts';
import { KeyedContext, type KeyedServices } from './keyed-context.ts';
import type { StateBackend } from '../state/index.ts';
import type { Clock } from '../state/index.ts';
import { TtlSweeper } from '../state/index.ts';
import { TimerService, type TimeDomain } from './timer-service.ts';

/** Trace lines about fired timers, at most one per this many ms per stage and worker. */
const TRACE_FIRED_EVERY_MS = 200;

export type OnTimerFn = (timestampMs: number, ctx: KeyedContext) => void | Promise<void>;

export interface KeyedTimeOptions {
  stage: string;
  backend: StateBackend;
  declared: ReadonlyMap<string, StateDescriptor['kind']>;
  states: readonly StateSpec[];
  upstreamSenders: readonly string[];
  keyGroups: readonly number[];
  /** The process function's onTimer; timers registered without one fire into nothing. */
  onTimer: OnTimerFn | undefined;
  /** Runs a user callback for one key with the task's error policy (fail, or dead-letter `record`); ctx: the callback's context. */
  runUser(keyGroup: number, run: () => void | Promise<void>, record: unknown, ctx?: KeyedContext): Promise<void>;
  /** Emits a record of a key group downstream with its timestamp. */
  emit(keyGroup: number, value: unknown, timestampMs: number): void;
  /** Writes a side output of the stage (ctx.output). */
  emitSide(tag: string, value: unknown, timestampMs: number, keyGroup: number, origin: number): void;
  /** Sends the task's watermark to the next stage (when there is one). */
  forwardWatermark(watermark: number, idle: boolean): void;
  /** Feature bookkeeping every context of the task carries (features, watches). @default none */
  featureServices?: Pick<KeyedServices, 'features' | 'watches' | 'broadcastStates'>;
  /**
   * Logs, at trace level, a watermark that fired event-time timers in a key group ("event-time
   * timers fired"; at most one line per TRACE_FIRED_EVERY_MS): what a test waits for to fault a
   * worker right after a window fired. @default none
   */
  logger?: Logger;
  /** @default Date.now */
  clock?: Clock;
  /** @default 100 */
  tickIntervalMs?: number;
  /** Committed entries the TTL sweep looks at per tick. @default 1000 */
  sweepEntriesPerTick?: number;
}

export class KeyedTime {
  readonly timers: TimerService;
  readonly #o: KeyedTimeOptions;
  readonly #clock: Clock;
  readonly #watermarks: ChannelWatermarks;
  readonly #sweeper: TtlSweeper;
  readonly #services = new Map<number, KeyedServices>();
  #ticker: NodeJS.Timeout | undefined;
  readonly #tickQueued = new Set<number>();
  #sweepTurn = 0;
  #forwarded = Number.NEGATIVE_INFINITY;
  /** Key groups firing event-time timers now, with the watermark they had before (what they hold the task to). */
  readonly #firing = new Map<number, number>();
  /** The task's key groups (a move changes them). */
  #keyGroups: readonly number[];
  #forwardedIdle = false;
  /** When "event-time timers fired" was last logged (performance.now()). */
  #tracedMs = Number.NEGATIVE_INFINITY;

  constructor(options: KeyedTimeOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
    this.timers = new TimerService(options.backend, options.stage);
    this.#keyGroups = options.keyGroups;
    this.#watermarks = new ChannelWatermarks(options.upstreamSenders, options.keyGroups);
    this.#sweeper = new TtlSweeper(options.backend, options.stage, options.states, this.#clock);
  }

  /** What a KeyedContext of this key group needs. */
  services(keyGroup: number): KeyedServices {
    let services = this.#services.get(keyGroup);
    if (services === undefined) {
      services = { ...this.#o.featureServices, timers: this.timers, clock: this.#clock, watermark: () => this.#watermarks.watermark(keyGroup), emitSide: this.#o.emitSide };
      this.#services.set(keyGroup, services);
    }
    return services;
  }

  watermark(keyGroup: number): number {
    return this.#watermarks.watermark(keyGroup);
  }

  /** Starts the clock: enqueue(keyGroup) must put a tick in that key group's queue. */
  start(enqueueTick: (keyGroup: number) => void): void {
    // Without onTimer nothing can fire, and without TTL state there is nothing to sweep: no clock.
    if (this.#o.onTimer === undefined && !this.#sweeper.enabled) return;
    const intervalMs = this.#o.tickIntervalMs ?? 100;
    this.#ticker = setInterval(() => {
      for (const kg of this.#keyGroups) {
        // One tick at a time per key group: a slow key group does not pile them up.
        if (this.#tickQueued.has(kg)) continue;
        this.#tickQueued.add(kg);
        enqueueTick(kg);
      }
    }, intervalMs);
    this.#ticker.unref();
  }

  stop(): void {
    clearInterval(this.#ticker);
  }

  /**
   * A move at a checkpoint boundary changed the task's key groups or upstream senders. Timers of
   * key groups that came or went are forgotten from the cache (an incoming key group's timers
   * arrive with its state).
   */
  reconfigure(keyGroups: readonly number[], senders: readonly string[]): void {
    const before = new Set(this.#keyGroups);
    const after = new Set(keyGroups);
    for (const kg of before) {
      if (after.has(kg)) continue;
      this.timers.forgetKeyGroup(kg);
      this.#tickQueued.delete(kg); // its queue, with the tick, went with it
    }
    for (const kg of after) if (!before.has(kg)) this.timers.forgetKeyGroup(kg);
    this.#keyGroups = [...keyGroups];
    this.#watermarks.reconfigure(senders, keyGroups);
  }

  /** Sends the task's forwarded watermark again (after a move's barrier: the next stage's new owners start at -Infinity). */
  resendForwarded(): void {
    if (this.#forwarded === Number.NEGATIVE_INFINITY && !this.#forwardedIdle) return;
    this.#o.forwardWatermark(this.#forwarded, this.#forwardedIdle);
  }

  async onWatermark(keyGroup: number, sender: string, watermark: number, idle: boolean): Promise<void> {
    const before = this.#watermarks.watermark(keyGroup);
    const advanced = this.#watermarks.update(keyGroup, sender, watermark, idle);
    if (advanced !== undefined) {
      // Key groups fire in their own queues, concurrently: until this one's timers up to the new
      // watermark have run (and emitted), the task must not forward past its old one, or a
      // downstream stage sees the watermark before this key group's output for it.
      this.#firing.set(keyGroup, before);
      try {
        await this.#fire('event', keyGroup, advanced);
      } finally {
        this.#firing.delete(keyGroup);
      }
    }
    // Watermarks arrive per split, interval and key group: look at every key group only when this
    // one moved, or when idleness may have changed what the task forwards.
    if (advanced === undefined && !idle && !this.#forwardedIdle) return;
    let task = this.#watermarks.minimum();
    for (const held of this.#firing.values()) task = Math.min(task, held);
    const allIdle = this.#watermarks.allIdle();
    if (task > this.#forwarded || allIdle !== this.#forwardedIdle) {
      this.#forwarded = Math.max(task, this.#forwarded);
      this.#forwardedIdle = allIdle;
      this.#o.forwardWatermark(this.#forwarded, allIdle);
    }
  }

  /** A tick of the clock reached the key group's queue; skip: only note it (the task is aligning a checkpoint). */
  async onTick(keyGroup: number, skip = false): Promise<void> {
    this.#tickQueued.delete(keyGroup);
    if (skip) return;
    await this.#fire('processing', keyGroup, this.#clock());
    if (!this.#sweeper.enabled || this.#keyGroups[this.#sweepTurn % this.#keyGroups.length] !== keyGroup) return;
    const result = await this.#sweeper.sweep(keyGroup, this.#o.sweepEntriesPerTick ?? 1000);
    if (result.finished) this.#sweepTurn++;
  }

  async #fire(domain: TimeDomain, keyGroup: number, upToMs: number): Promise<void> {
    const onTimer = this.#o.onTimer;
    const fired = await this.timers.fire(domain, keyGroup, upToMs, async (key, timestampMs) => {
      if (onTimer === undefined) return;
      const ctx = new KeyedContext(this.#o.stage, this.#o.backend, this.#o.declared, key, keyGroup, (value, ts) => this.#o.emit(keyGroup, value, ts), this.services(keyGroup));
      // Event-time output carries the timer's time (as in Flink); processing time is no event time.
      ctx.timestamp = domain === 'event' ? timestampMs : undefined;
      ctx.timeDomain = domain;
      await this.#o.runUser(keyGroup, () => onTimer(timestampMs, ctx), { timer: { key, timestampMs, domain } }, ctx);
    });
    if (fired > 0 && domain === 'event' && this.#o.logger?.isLevelEnabled('trace') === true && performance.now() - this.#tracedMs >= TRACE_FIRED_EVERY_MS) {
      this.#tracedMs = performance.now();
      this.#o.logger.trace({ keyGroup, watermark: upToMs, fired }, 'event-time timers fired');
    }
  }
}
