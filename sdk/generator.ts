// Generator sources: records made inside the job, not read from a stream, so that a benchmark
// measures the engine and not a producer (as Flink's datagen and Nexmark sources do). A generator
// is a pure function of the event number n (0, 1, 2, …) over the whole source: split p of P makes
// the events n ≡ p (mod P), in increasing n, and its checkpointed position is how many it has made.
// A restore, or a move of the split to another worker, goes on from that position and makes the
// same events again: the source is replayable like a JetStream split, so exactly-once holds. The
// union of the splits is the same sequence whatever P is, and event time (a function of n) moves
// forward in step on every split, so watermarks do not hold each other back.
import type { GeneratorSpec } from '../core/manifest.ts';

export type { GeneratorSpec };

/** As WatermarkOptions in sdk/options.ts (kept apart so that the builder, sdk/job.ts, may import this module). */
export interface GeneratorWatermarkOptions {
  /** @default 0: a split makes its events in time order */
  maxOutOfOrdernessMs?: number;
  idleTimeoutMs?: number;
  /** @default 200 */
  intervalMs?: number;
}

/** What job.source() takes to read from a generator instead of a stream. */
export interface GeneratorSource<T> {
  readonly kind: 'generator';
  /** The source's name: its stage is `source-<name>`, its splits `<name>.<p>`. */
  readonly name: string;
  /** Splits (source actors), each making every P-th event. */
  readonly partitions: number;
  /** The manifest's view: JSON, no code. */
  readonly spec: GeneratorSpec;
  /** Event n of the whole sequence; pure (the same n gives the same event on every worker, every time). */
  readonly eventAt: (n: number) => T;
  /** Event time of event n in ms since the epoch, non-decreasing in n. */
  readonly timeAt: (n: number) => number;
  /** Watermarks of each split. @default { maxOutOfOrdernessMs: 0 } (events come in time order) */
  readonly watermark?: GeneratorWatermarkOptions;
}

export interface DatagenOptions<T> {
  /** The source's name. @default "datagen" */
  name?: string;
  /** Events in all (over every split); 0 for no end. */
  events: number;
  /** Splits. @default 4 */
  partitions?: number;
  /** Events per second of event time: event n happens at baseTimeMs + n * 1000 / rate. @default 10000 */
  rate?: number;
  /** Emit at `rate` by the wall clock instead of as fast as the job takes them. @default false */
  paced?: boolean;
  /** Event time of event 0, ms since the epoch. Fixed (not "now") so that a replay makes the same times. @default 1767225600000 (2026-01-01) */
  baseTimeMs?: number;
  /** Event n. Must be a pure function of n (use `n` to seed any randomness, e.g. seededRandom). */
  generate: (n: number) => T;
  /** JSON shown in the manifest, naming what the generator makes (it is compared, not run). */
  params?: Record<string, string | number | boolean>;
  watermark?: GeneratorWatermarkOptions;
}

/** 2026-01-01T00:00:00Z. */
export const DEFAULT_BASE_TIME_MS = 1_767_225_600_000;

/** A generator source of records `generate(n)`; see the file comment for how splits share the work. */
export function datagen<T>(options: DatagenOptions<T>): GeneratorSource<T> {
  if (typeof options.generate !== 'function') throw new TypeError('datagen: generate must be a function of the event number');
  const spec = compileGeneratorSpec('datagen', options, options.params ?? {});
  const base = options.baseTimeMs ?? DEFAULT_BASE_TIME_MS;
  const rate = spec.ratePerSec;
  return {
    kind: 'generator',
    name: options.name ?? 'datagen',
    partitions: options.partitions ?? 4,
    spec,
    eventAt: options.generate,
    timeAt: (n) => base + Math.floor((n * 1000) / rate),
    ...(options.watermark && { watermark: options.watermark }),
  };
}

/** The manifest part of a generator, validated. */
export function compileGeneratorSpec(kind: string, o: { events: number; rate?: number; paced?: boolean; partitions?: number; baseTimeMs?: number }, params: Record<string, string | number | boolean>): GeneratorSpec {
  if (!Number.isSafeInteger(o.events) || o.events < 0) throw new TypeError(`${kind}: events must be a non-negative integer (0: no end), got ${String(o.events)}`);
  const rate = o.rate ?? 10_000;
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0) throw new TypeError(`${kind}: rate must be a positive number of events per second, got ${String(o.rate)}`);
  if (o.partitions !== undefined && (!Number.isInteger(o.partitions) || o.partitions < 1 || o.partitions > 1024)) throw new TypeError(`${kind}: partitions must be 1..1024`);
  if (o.baseTimeMs !== undefined && (!Number.isSafeInteger(o.baseTimeMs) || o.baseTimeMs < 0)) throw new TypeError(`${kind}: baseTimeMs must be a non-negative integer`);
  return { kind, events: o.events, ratePerSec: rate, paced: o.paced ?? false, params: { ...params, ...(o.baseTimeMs !== undefined && { baseTimeMs: o.baseTimeMs }) } };
}

/** How many of `events` events split p of P makes (events 0 means no end). */
export function splitShare(events: number, partitions: number, split: number): number {
  if (events === 0) return Number.POSITIVE_INFINITY;
  return split < events ? Math.floor((events - 1 - split) / partitions) + 1 : 0;
}

/**
 * A small, fast random sequence seeded by (seed, n): the randomness of event n. mulberry32 over
 * a murmur3-style mix of both numbers, so neighbouring n give unrelated sequences.
 */
export class SeededRandom {
  #state = 0;

  constructor(seed = 0, n = 0) {
    this.reset(seed, n);
  }

  /** Starts the sequence of (seed, n) again; reusing one instance avoids an allocation per event. */
  reset(seed: number, n: number): this {
    let h = Math.imul((seed ^ 0x9e3779b9) >>> 0, 0x85ebca6b) ^ (n >>> 0);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h ^= Math.floor(n / 4294967296);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    this.#state = (h ^ (h >>> 16)) >>> 0;
    return this;
  }

  /** 32 random bits. */
  nextUint32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** In [0, 1). */
  nextDouble(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [0, bound). */
  nextInt(bound: number): number {
    return Math.floor(this.nextDouble() * bound);
  }
}
