// A generator split: makes its share of a generator source's events (sdk/generator.ts) inside
// the worker — split p of P makes events n = p, p + P, p + 2P, … — runs the source stage's
// chained operators and shuffles by key, like a source actor reading a stream (source-task.ts).
// Its position is how many events it has made: a checkpoint records it (as count + 1, the
// "next sequence" of the source protocol) and a restore or a move goes on from there, making the
// very same events again, so exactly-once holds as it does for a JetStream split.
//
// Events are made in slices, synchronously, yielding to the event loop between slices so that
// barrier triggers, acknowledgements and watermark ticks get their turn; a barrier therefore
// always falls between two events. Once a bounded split has made its share it sends a final
// watermark (END_OF_INPUT_WATERMARK), so the windows and timers downstream fire, as Flink does
// at the end of a bounded source.
//
// An event's source position is (split, n-th event of the split, from 1): a failure on it (here or
// in a later stage, through the record's origin) names it, and a poison event is skipped at that
// position as a JetStream record is (docs/ARCHITECTURE.md, "Poison records").
import type { Logger } from '../../core/logger.ts';
import { UserFunctionError, ensureError } from '../../core/errors.ts';
import type { JobManifest, SourceSpec } from '../../core/manifest.ts';
import type { StagePlan } from '../../sdk/plan.ts';
import { splitShare } from '../../sdk/generator.ts';
import type { StageOutput } from './stage-output.ts';
import type { CheckpointOutput } from '../sink/index.ts';
import type { DeadLetters } from './dead-letters.ts';
import { callSite } from './call-site.ts';
import { encodeOrigin } from '../../core/record-origin.ts';
import type { SkippedRecord } from '../../core/control.ts';
import { startSplitWatermarks, type WatermarkGenerator } from './watermark-generator.ts';
import type { StageCounters } from './stage-counters.ts';
import type { ErrorPolicy } from './error-policy.ts';
import type { SourceTaskState } from './source-task.ts';

/** What the job runtime needs of a split reader, a JetStream split or a generator split. */
export interface SourceReader {
  readonly state: SourceTaskState;
  readonly partition: number;
  /** The last JetStream message read (metrics); generator splits have none. */
  readonly lastMessage?: { info: { timestampNanos: number; pending: number } } | undefined;
  start(): Promise<void>;
  injectBarrier(checkpointId: number): { nextSequence: number; maxEventTimeMs: number; output: CheckpointOutput[] | Promise<CheckpointOutput[]> };
  /** Sends the split's current watermark again (after the barrier of a move: see SourceTask). */
  resendWatermark(): void;
  halt(): void;
  stop(): Promise<void>;
}

/** The watermark a finished bounded split sends: past every timer and window (hex14 keys hold it). */
export const END_OF_INPUT_WATERMARK = Number.MAX_SAFE_INTEGER;

/**
 * Events made between two yields to the event loop: at most SLICE, and for at most SLICE_MS.
 * A channel batch holds what one turn sent to its key group (worker/channel/channel-sender.ts),
 * so a longer turn makes fuller batches: with 512 events a turn, Nexmark q5's 60,727 window
 * records went in 32,400 batches of ~2; with 2,048, in 11,982 (docs/BENCHMARKS.md).
 */
const SLICE = 4096;
const SLICE_MS = 10;

export interface GeneratorTaskOptions {
  manifest: JobManifest;
  stageId: string;
  source: SourceSpec;
  /** The split's index in the job's flat split space (positions, sender names). */
  partition: number;
  /** The split's index among its source's splits: it makes events n ≡ streamPartition (mod partitions). */
  streamPartition: number;
  /** 1 + the number of events this split made before (the checkpoint's position); 1 from the start. */
  startSequence: number;
  generator: NonNullable<StagePlan['generator']>;
  output: StageOutput;
  counters: StageCounters;
  deadLetters: DeadLetters;
  /** What becomes of a record whose user code throws (shared with the stage's output). */
  errorPolicy: ErrorPolicy;
  logger: Logger;
  onFailure(error: Error): void;
  /**
   * Poison events of this split, by position (the n-th event it makes, from 1): dead-lettered with
   * their reason and not processed. @default none
   */
  skipped?: ReadonlyMap<number, SkippedRecord>;
}

export class GeneratorTask implements SourceReader {
  readonly #o: GeneratorTaskOptions;
  #state: SourceTaskState = 'CREATED';
  #loop: Promise<void> | undefined;
  #watermarks: WatermarkGenerator | undefined;
  #watermarkTimer: NodeJS.Timeout | undefined;
  /** Every event made and the end-of-input watermark sent. */
  #finished = false;
  /** Events this split has made since the start of the job (not of this run). */
  #made: number;
  readonly lastMessage = undefined;

  constructor(options: GeneratorTaskOptions) {
    this.#o = options;
    this.#made = Math.max(0, options.startSequence - 1);
  }

  get state(): SourceTaskState {
    return this.#state;
  }

  get partition(): number {
    return this.#o.partition;
  }

  async start(): Promise<void> {
    if (this.#state !== 'CREATED') return;
    this.#state = 'RUNNING';
    const output = this.#o.output;
    const { generator, timer } = startSplitWatermarks(this.#o.source.eventTime!, this.#maxEventTimeMs(), (wm, idle) => output.watermark(wm, idle), () => this.#state === 'RUNNING', (e) => this.#fail(e));
    this.#watermarks = generator;
    this.#watermarkTimer = timer;
    this.#o.logger.info({ partition: this.#o.partition, made: this.#made }, 'generator split started');
    this.#loop = this.#run().catch((e) => this.#fail(ensureError(e)));
  }

  async #run(): Promise<void> {
    const { output, counters, deadLetters, manifest, stageId, source, streamPartition, generator } = this.#o;
    const gen = source.generator!;
    const splits = source.partitions;
    const share = splitShare(gen.events, splits, streamPartition);
    const policy = this.#o.errorPolicy;
    const watermarks = this.#watermarks!;
    // Pacing: the split's share of the rate, from where this run started.
    const perMs = gen.ratePerSec / splits / 1000;
    const startedMs = performance.now();
    const madeAtStart = this.#made;
    const stageIndex = manifest.stages.findIndex((st) => st.id === stageId);
    const split = this.#o.partition;
    const skipped = this.#o.skipped;
    while (this.#state === 'RUNNING' && this.#made < share) {
      let end = Math.min(share, this.#made + SLICE);
      if (gen.paced) {
        const due = madeAtStart + Math.floor((performance.now() - startedMs) * perMs);
        if (due <= this.#made) {
          await delay(Math.min(50, Math.max(1, (this.#made + 1 - madeAtStart) / perMs - (performance.now() - startedMs))));
          continue;
        }
        end = Math.min(end, due);
      }
      const sliceEndMs = performance.now() + SLICE_MS;
      while (this.#made < end && this.#state === 'RUNNING') {
        if ((this.#made & 255) === 0 && performance.now() > sliceEndMs) break;
        const n = streamPartition + this.#made * splits;
        const value = generator.eventAt(n);
        const timestamp = generator.timeAt(n);
        const sequence = ++this.#made;
        counters.recordsIn++;
        watermarks.onRecord(timestamp);
        // For the watchdog of an isolated job (worker/call-site.ts): which event holds the thread.
        callSite.sourceRecord(stageIndex, split, sequence);
        const poison = skipped !== undefined && skipped.size > 0 ? skipped.get(sequence) : undefined;
        if (poison !== undefined) {
          deadLetters.publish({ stageId: poison.stageId || stageId, reason: `poison record: failed ${poison.attempts} attempts, skipped; last failure: ${poison.reason}`, stack: poison.stack, record: value, source: { stream: source.stream, sequence } }, counters);
          continue;
        }
        output.setOrigin(encodeOrigin(split, sequence));
        try {
          // Under "dead-letter" an event is all-or-nothing, as a source record is (source-task.ts).
          if (policy.atomicRecords) output.atomically(() => output.emit(value, timestamp));
          else output.emit(value, timestamp);
        } catch (e) {
          if (e instanceof UserFunctionError) e.sourcePosition ??= { split, sequence };
          if (!(e instanceof UserFunctionError) || policy.fails) throw e;
          policy.deadLetter(e, value, -1, { stream: source.stream, sequence });
        }
        if (output.sender?.blocked) await output.sender.whenWritable();
      }
      const sinksFull = output.checkSinks();
      if (sinksFull) await sinksFull;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (this.#state !== 'RUNNING') return;
    output.sender?.flush();
    await output.flushSinks();
    // The end of a bounded split: every event is out, so event time may run to its end.
    clearInterval(this.#watermarkTimer);
    this.#finished = true;
    if (this.#state === 'RUNNING' && output.sender) output.watermark(END_OF_INPUT_WATERMARK, false);
    this.#o.logger.info({ partition: this.#o.partition, made: this.#made }, 'generator split finished');
  }

  /**
   * Cuts checkpoint N at this split: the events made so far are before the barrier. Safe at any
   * callback: events are emitted synchronously, so none is half-processed.
   */
  injectBarrier(checkpointId: number): { nextSequence: number; maxEventTimeMs: number; output: CheckpointOutput[] | Promise<CheckpointOutput[]> } {
    return { nextSequence: this.#made + 1, maxEventTimeMs: this.#maxEventTimeMs(), output: this.#o.output.barrier(checkpointId) };
  }

  /** The event time of the last event made: a split's event time only grows with n. */
  #maxEventTimeMs(): number {
    if (this.#made === 0) return Number.NEGATIVE_INFINITY;
    return this.#o.generator.timeAt(this.#o.streamPartition + (this.#made - 1) * this.#o.source.partitions);
  }

  /** After the barrier of a move: the new owners of moved key groups start at -Infinity. */
  resendWatermark(): void {
    if (this.#state !== 'RUNNING' || !this.#o.output.sender) return;
    if (this.#finished) return this.#o.output.watermark(END_OF_INPUT_WATERMARK, false);
    const last = this.#watermarks?.lastSent();
    if (last !== undefined) this.#o.output.watermark(last.watermark, last.idle);
  }

  #fail(error: Error): void {
    if (this.#state === 'STOPPED' || this.#state === 'FAILED') return;
    clearInterval(this.#watermarkTimer);
    this.#state = 'FAILED';
    this.#o.onFailure(error);
  }

  /** Stops making events at once (the split is handed over right after a barrier). */
  halt(): void {
    if (this.#state === 'RUNNING' || this.#state === 'CREATED') this.#state = 'STOPPED';
  }

  async stop(): Promise<void> {
    if (this.#state === 'RUNNING' || this.#state === 'CREATED') this.#state = 'STOPPED';
    clearInterval(this.#watermarkTimer);
    await this.#loop;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
