// A keyed task: the actors of one keyed stage on this worker, one per owned key group.
//
// Its channel receiver (worker/channel/channel-receiver.ts) subscribes to the key groups' channels
// and hands over batches in sequence; the task queues them per key group. A key group's batches
// run in order, one at a time; different key groups run concurrently so that their RocksDB reads
// share read batches. A batch is acknowledged once processed: the acknowledgement is the
// channel's flow control.
//
// Checkpoints use aligned barriers (docs/ARCHITECTURE.md, "Checkpoints"; the alignment is
// worker/checkpoint/barrier-aligner.ts): a channel that delivered barrier N is held back until
// barrier N has arrived on every channel into every key group of the task; then the task reports
// alignment and waits until the worker has frozen its state.
//
// Key groups move between workers at a checkpoint boundary while the others keep running
// (docs/ARCHITECTURE.md, "Moves"). The worker prepares a move
// at N before barrier N exists: an incoming key group is subscribed at once, ignores what its
// old owner still processes, and starts each channel at that channel's barrier N; what follows
// is held (and acknowledged, so that senders' windows do not stall the key groups that keep
// running) until the key group's state at N is loaded. An outgoing key group is processed up
// to barrier N and then let go, its held batches unacknowledged: they belong to the new owner.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../core/logger.ts';
import { ensureError } from '../../core/errors.ts';
import { decodeBarrier, decodeRecords, decodeWatermark, BatchKind, type BatchHeader } from '../../core/record-batch.ts';
import type { JobId, StageId } from '../../core/ids.ts';
import type { JobManifest } from '../../core/manifest.ts';
import type { StateDescriptor } from '../../sdk/index.ts';
import type { StagePlan } from '../../sdk/plan.ts';
import { ChannelReceiver, type BatchSigner, type ReceivedBatch } from '../channel/index.ts';
import { BarrierAligner } from '../checkpoint/index.ts';
import type { ThrottledLog } from '../../core/throttled-log.ts';
import { featureStates, type FeatureStateSpec } from '../state/index.ts';
import type { WatchRegistry } from '../query/index.ts';
import { KeyedTime, type OnTimerFn } from './keyed-time.ts';
import type { StageOutput } from './stage-output.ts';
import type { StateBackend } from '../state/index.ts';
import type { StageCounters } from './stage-counters.ts';
import type { StageInputRef } from '../channel/index.ts';
import { broadcastStateNames } from './broadcast-context.ts';
import { KeyedRecords, type ProcessFn } from './keyed-records.ts';
import type { ErrorPolicy } from './error-policy.ts';
import { betweenBatches } from './between-batches.ts';

export interface KeyedTaskOptions {
  nc: NatsConnection;
  jobId: JobId;
  manifest: JobManifest;
  stage: StagePlan;
  keyGroups: readonly number[];
  /** The sending tasks of this epoch, of every input. A batch from any other sender is stale and fenced off. */
  upstreamSenders: readonly string[];
  /** The senders that carry event time: the watermark is the minimum over them. @default upstreamSenders */
  watermarkSenders?: readonly string[];
  /** Which input of the stage a sender's records are for. @default input 0, keyed */
  inputOf?: (sender: string) => StageInputRef | undefined;
  backend: StateBackend;
  output: StageOutput;
  counters: StageCounters;
  /** What becomes of a record whose user code throws (shared with the stage's output). */
  errorPolicy: ErrorPolicy;
  logger: Logger;
  onFailure(error: Error, keyGroup: number): void;
  /**
   * Barrier N arrived on the first channel of the task: the worker's cut of N begins, and a cut of
   * an older checkpoint still in progress is abandoned (that checkpoint was aborted). @default none
   */
  onAligning?(checkpointId: number): void;
  /**
   * Barrier N arrived on every channel into every key group and everything before it is
   * processed. The task holds its input until the returned promise resolves (at once when the
   * worker had abandoned N for a newer checkpoint).
   */
  onAligned(checkpointId: number): Promise<void>;
  /** Called after each batch: the worker checks the overlay's memory bound and flushes watches. */
  afterBatch(): void;
  /** Feature watches of this runtime: told about every record that changed a feature state. */
  watches?: WatchRegistry;
  /** Verifies every batch's signature (worker/channel/batch-signing.ts). @default batches are not signed */
  signer?: BatchSigner;
  /** Where forged batches are counted and logged (throttled). @default the task's logger, unthrottled */
  rejections?: ThrottledLog;
}

type Pending = ReceivedBatch;

/** Longest stretch a task's drain loops run without letting timers and I/O in. */
const YIELD_EVERY_MS = 20;

/** A queue item that is no batch: the clock's tick for timers and the TTL sweep (worker/task/keyed-time.ts). */
const TICK_KIND = 0;
const TICK: Pending = { header: { kind: TICK_KIND as BatchHeader['kind'], sequence: 0, keyGroup: 0, sender: '', recordCount: 0, bodyOffset: 0, watermarkOffset: -1 }, data: new Uint8Array(0), reply: undefined, channel: '' };

export class KeyedTask {
  readonly #o: KeyedTaskOptions;
  /** The receiving half of the channels into the task's key groups. */
  readonly #receiver: ChannelReceiver;
  /** Barrier alignment over those channels. */
  readonly #aligner: BarrierAligner;
  /** Key groups counted in alignment: owned, loaded or not. */
  readonly #owned: Set<number>;
  /** Owned key groups whose state is not loaded yet: their batches wait. */
  readonly #loading = new Set<number>();
  #move: { checkpointId: number; incoming: number[]; outgoing: number[]; senders: string[]; watermarkSenders: string[] } | undefined;
  readonly #queues = new Map<number, Pending[]>();
  /** Key groups with a drain loop running. */
  readonly #active = new Map<number, Promise<void>>();
  /** Channels that delivered the barrier being aligned (the aligner's): held back until alignment. */
  readonly #held: ReadonlySet<string>;
  /**
   * Per key group, where the search for a runnable batch starts while channels are held: every
   * queued batch before it belongs to a held channel. Held channels only grow until the aligner
   * lets them go (its `releases` count) and batches are only appended, so the index stays true
   * until then; without it each step of a long queue behind a barrier rescanned the queue
   * (quadratic, 26 % of a Nexmark q4 worker's CPU under load).
   */
  readonly #scanFrom = new Map<number, number>();
  #scanRelease = 0;
  readonly #declared: ReadonlyMap<string, StateDescriptor['kind']>;
  readonly #features: ReadonlyMap<string, FeatureStateSpec>;
  readonly #broadcastStates: ReadonlySet<string>;
  readonly #stageId: StageId;
  #failed = false;
  #stopped = false;
  /** When a drain loop last yielded to the event loop (performance.now()). */
  #lastYieldMs = 0;
  /** Watermarks, timers and the TTL sweep. */
  readonly #time: KeyedTime;
  /** Runs the records of the task's batches, and its timers' callbacks, under the error policy. */
  readonly #records: KeyedRecords;

  constructor(options: KeyedTaskOptions) {
    this.#o = options;
    this.#stageId = options.stage.spec.id as StageId;
    this.#owned = new Set(options.keyGroups);
    this.#receiver = new ChannelReceiver({
      nc: options.nc,
      jobId: options.jobId,
      stageId: this.#stageId,
      senders: options.upstreamSenders,
      ...(options.signer !== undefined && { signer: options.signer }),
      ...(options.rejections !== undefined && { rejections: options.rejections }),
      logger: options.logger,
      deliver: (batch) => this.#enqueue(batch),
      fail: (error, keyGroup) => this.#fail(error, keyGroup),
      closed: () => this.#failed || this.#stopped,
    });
    this.#aligner = new BarrierAligner({
      logger: options.logger,
      expectedChannels: () => this.#receiver.senders.size * this.#owned.size,
      moveCheckpoint: () => this.#move?.checkpointId,
      ...(options.onAligning !== undefined && { onAligning: (id: number) => options.onAligning!(id) }),
      onAligned: (id) => options.onAligned(id),
      resume: () => {
        for (const [kg, queue] of this.#queues) this.#wake(kg, queue);
      },
      fail: (error, keyGroup) => this.#fail(error, keyGroup),
    });
    this.#held = this.#aligner.held;
    this.#declared = new Map(options.stage.spec.states.map((s) => [s.name, s.kind]));
    this.#features = featureStates(options.stage.spec);
    const op = options.stage.operators[0];
    if (op?.kind !== 'process') throw new TypeError(`keyed stage ${options.stage.spec.id} does not start with process`);
    this.#broadcastStates = broadcastStateNames(options.stage.spec);
    this.#time = new KeyedTime({
      stage: this.#stageId,
      backend: options.backend,
      declared: this.#declared,
      states: options.stage.spec.states,
      upstreamSenders: options.watermarkSenders ?? options.upstreamSenders,
      keyGroups: options.keyGroups,
      onTimer: op.onTimer as unknown as OnTimerFn | undefined,
      runUser: (kg, run, record, ctx) => this.#records.runUser(kg, run, record, ctx),
      emit: (kg, value, ts) => {
        this.#records.currentKeyGroup = kg;
        // A timer's output derives from no one source record.
        options.output.setOrigin(-1);
        options.output.emit(value, ts);
      },
      // As emit: the key group and origin of the context that emitted (records of one key run
      // one at a time), even after an await while another key's record runs.
      emitSide: (tag, value, ts, kg, origin) => {
        this.#records.currentKeyGroup = kg;
        options.output.setOrigin(origin);
        options.output.emitSide(tag, value, ts);
      },
      // Cached per key group by KeyedTime: no services object per key and batch.
      featureServices: { features: this.#features, broadcastStates: this.#broadcastStates, ...(options.watches && { watches: options.watches }) },
      forwardWatermark: (wm, idle) => options.output.watermark(wm, idle),
      logger: options.logger,
    });
    this.#records = new KeyedRecords({
      stageId: this.#stageId,
      stageIndex: options.manifest.stages.findIndex((st) => st.id === options.stage.spec.id),
      backend: options.backend,
      output: options.output,
      counters: options.counters,
      errorPolicy: options.errorPolicy,
      time: this.#time,
      declared: this.#declared,
      broadcastStates: this.#broadcastStates,
      inputFns: (op.inputs ?? [op.fn]) as unknown as ProcessFn[],
      inputOf: options.inputOf ?? (() => ({ index: 0, kind: 'keyed' })),
    });
  }

  get currentKeyGroup(): number {
    return this.#records.currentKeyGroup;
  }

  get queuedBatches(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.length;
    return n;
  }

  start(): void {
    for (const kg of this.#owned) this.#receiver.subscribe(kg);
    this.#time.start((kg) => {
      let queue = this.#queues.get(kg);
      if (!queue) this.#queues.set(kg, (queue = []));
      queue.push(TICK);
      this.#wake(kg, queue);
    });
  }

  /**
   * Key groups and upstream senders change at barrier N: subscribe the incoming key groups now
   * (before barrier N can exist) and make sure the server has the subscriptions.
   */
  async prepareMove(checkpointId: number, keyGroups: readonly number[], senders: readonly string[], sendersBefore: readonly string[], watermarkSenders: readonly string[] = senders): Promise<void> {
    const next = new Set(keyGroups);
    const incoming = [...next].filter((kg) => !this.#owned.has(kg));
    const outgoing = [...this.#owned].filter((kg) => !next.has(kg));
    this.#move = { checkpointId, incoming, outgoing, senders: [...senders], watermarkSenders: [...watermarkSenders] };
    await this.#receiver.prepareMove(checkpointId, incoming, senders, sendersBefore);
  }

  /**
   * The worker cut checkpoint N (every key group of this task aligned on it, state frozen):
   * outgoing key groups are let go, incoming ones counted from now on and held until loaded.
   */
  applyMove(checkpointId: number): void {
    const move = this.#move;
    if (!move || move.checkpointId !== checkpointId) return;
    this.#move = undefined;
    this.#receiver.applyMove(move.outgoing, move.senders);
    for (const kg of move.outgoing) {
      this.#queues.delete(kg);
      this.#scanFrom.delete(kg);
      this.#records.forget(kg);
      this.#owned.delete(kg);
    }
    for (const kg of move.incoming) {
      this.#owned.add(kg);
      this.#loading.add(kg);
    }
    this.#time.reconfigure([...this.#owned], move.watermarkSenders);
    // After barrier N downstream: the next stage's key groups that moved start at -Infinity.
    this.#time.resendForwarded();
  }

  /** The state of these incoming key groups at the move's checkpoint is loaded: replay what waited. */
  activate(keyGroups: readonly number[]): void {
    for (const kg of keyGroups) {
      this.#loading.delete(kg);
      this.#time.timers.forgetKeyGroup(kg);
      const queue = this.#queues.get(kg);
      if (queue) this.#wake(kg, queue);
    }
  }

  /** Where the alignment in progress stands (for the log when a checkpoint is slow). */
  alignmentStatus(): { checkpoint: number; heldChannels: number; expectedChannels: number; missing: string[]; loading: number; queued: number } {
    const missing: string[] = [];
    const senders = this.#receiver.senders;
    for (const s of senders) {
      for (const kg of this.#owned) {
        if (!this.#held.has(`${s}|${kg}`)) missing.push(`${s}|${kg}`);
        if (missing.length >= 5) break;
      }
      if (missing.length >= 5) break;
    }
    return { checkpoint: this.#aligner.aligning, heldChannels: this.#held.size, expectedChannels: senders.size * this.#owned.size, missing, loading: this.#loading.size, queued: this.queuedBatches };
  }

  /** The task's event-time watermark: the least over its loaded key groups; undefined before any. */
  get watermarkMs(): number | undefined {
    let min = Number.POSITIVE_INFINITY;
    for (const kg of this.#owned) if (!this.#loading.has(kg)) min = Math.min(min, this.#time.watermark(kg));
    return Number.isFinite(min) ? min : undefined;
  }

  get loadingKeyGroups(): number {
    return this.#loading.size;
  }

  /** Key groups that process records (owned and loaded). */
  get activeKeyGroups(): number[] {
    return [...this.#owned].filter((kg) => !this.#loading.has(kg));
  }

  /** A batch in sequence from the receiver: queued for its key group. */
  #enqueue(batch: ReceivedBatch): void {
    const keyGroup = batch.header.keyGroup;
    let queue = this.#queues.get(keyGroup);
    if (!queue) this.#queues.set(keyGroup, (queue = []));
    queue.push(batch);
    if (!this.#owned.has(keyGroup) || this.#loading.has(keyGroup)) {
      // Held for a key group whose state is on its way: acknowledged now, so the sender's window
      // keeps moving for the key groups that run (it is flow control, not durability: a
      // failure rolls everything back to the last checkpoint anyway).
      if (batch.reply) this.#receiver.ack(batch.reply, batch.header.sender, keyGroup, batch.header.sequence);
      return;
    }
    this.#wake(keyGroup, queue);
  }

  #wake(keyGroup: number, queue: Pending[]): void {
    // A stopped or failed task leaves its queue as it is: #drain would return at once, and its
    // finally would wake it again, a microtask loop that starves the event loop for good (the
    // worker stops heartbeating and answering).
    if (this.#failed || this.#stopped) return;
    if (this.#active.has(keyGroup) || queue.length === 0 || this.#loading.has(keyGroup) || !this.#owned.has(keyGroup) || this.#queues.get(keyGroup) !== queue) return;
    const run: Promise<void> = this.#drain(keyGroup, queue).finally(() => {
      // A drain of a queue dropped by a move may end after a new one of its key group began.
      if (this.#active.get(keyGroup) === run) this.#active.delete(keyGroup);
      // NATS delivers several messages in one synchronous loop: a batch may have been queued
      // after this loop's last look and before this callback ran. Look again.
      if (this.#queues.get(keyGroup) === queue && this.#runnable(keyGroup, queue) >= 0) this.#wake(keyGroup, queue);
    });
    this.#active.set(keyGroup, run);
  }

  /** The index of the first queued batch whose channel is not held behind a barrier, or -1. */
  #runnable(keyGroup: number, queue: readonly Pending[]): number {
    if (this.#held.size === 0) return queue.length > 0 ? 0 : -1;
    if (this.#scanRelease !== this.#aligner.releases) {
      this.#scanFrom.clear();
      this.#scanRelease = this.#aligner.releases;
    }
    for (let i = this.#scanFrom.get(keyGroup) ?? 0; i < queue.length; i++) {
      if (!this.#held.has(queue[i]!.channel)) {
        this.#scanFrom.set(keyGroup, i);
        return i;
      }
    }
    this.#scanFrom.set(keyGroup, queue.length);
    return -1;
  }

  async #drain(keyGroup: number, queue: Pending[]): Promise<void> {
    // Until the key group moves away: applyMove drops its queue at the cut of N, possibly while
    // this loop awaits a step after barrier N (a clock tick behind it). What follows the barrier
    // belongs to the new owner and is never run here, even once the held channels are let go.
    while (!this.#failed && !this.#stopped && this.#queues.get(keyGroup) === queue) {
      // The first batch whose channel is not held back behind a barrier.
      const index = this.#runnable(keyGroup, queue);
      if (index < 0) return;
      const item = index === 0 ? queue.shift()! : queue.splice(index, 1)[0]!;
      if (item.header.kind === BatchKind.BARRIER) {
        if (item.reply) this.#receiver.ack(item.reply, item.header.sender, keyGroup, item.header.sequence);
        this.#aligner.barrier(item.channel, decodeBarrier(item.data, item.header));
        continue;
      }
      if (item.header.kind === BatchKind.WATERMARK || item === TICK) {
        try {
          // No ticks while aligning: a timer fired half before and half after the freeze would
          // leave its deletion in one checkpoint and its effects in the next.
          if (item === TICK) await this.#time.onTick(keyGroup, this.#aligner.aligning !== -1);
          else {
            const { watermark, idle } = decodeWatermark(item.data, item.header);
            await this.#time.onWatermark(keyGroup, item.header.sender, watermark, idle);
          }
        } catch (e) {
          this.#fail(ensureError(e), keyGroup);
          return;
        }
        this.#o.afterBatch();
        if (item.reply) this.#receiver.ack(item.reply, item.header.sender, keyGroup, item.header.sequence);
        continue;
      }
      if (item.header.kind !== BatchKind.DATA) continue;
      try {
        await this.#records.processBatch(item.header, decodeRecords(item.data, item.header));
        // A watermark that rode on the batch holds after its records (core/record-batch.ts).
        if (item.header.watermarkOffset >= 0) {
          const { watermark, idle } = decodeWatermark(item.data, item.header);
          await this.#time.onWatermark(keyGroup, item.header.sender, watermark, idle);
        }
        this.#o.afterBatch();
        const sinksFull = this.#o.output.checkSinks();
        if (sinksFull) await sinksFull;
        // Backpressure across stages: hold this batch's ack while the next stage is behind.
        if (this.#o.output.sender?.blocked) await this.#o.output.sender.whenWritable();
      } catch (e) {
        this.#fail(ensureError(e), keyGroup);
        return;
      }
      if (item.reply) this.#receiver.ack(item.reply, item.header.sender, keyGroup, item.header.sequence);
      betweenBatches();
      // State reads that hit memory resolve as microtasks, so a long queue would be drained in one
      // go, starving timers (heartbeats) and the socket: give the event loop a turn now and then.
      if (performance.now() - this.#lastYieldMs > YIELD_EVERY_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        this.#lastYieldMs = performance.now();
      }
    }
  }

  #fail(error: Error, keyGroup: number): void {
    if (this.#failed || this.#stopped) return;
    this.#failed = true;
    this.#o.onFailure(error, keyGroup);
  }

  /** Stops taking batches and waits for the ones in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#time.stop();
    this.#receiver.close();
    await Promise.all([...this.#active.values()].map((p) => p.catch(() => undefined)));
  }
}
