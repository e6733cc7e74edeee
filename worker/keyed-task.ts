// A keyed task: the actors of one keyed stage on this worker, one per owned key group.
//
// It subscribes to eddy.<job>.<stage>.<kg> for each of its key groups (a key group moves by
// moving a subscription), checks every channel's sequence, and queues batches per key group.
// A key group's batches run in order, one at a time; different key groups run concurrently so
// that their RocksDB reads share read batches. A batch is acknowledged once processed: the
// acknowledgement is the channel's flow control.
//
// Checkpoints use aligned barriers (ARCHITECTURE.md, "Checkpoints"): a channel that delivered
// barrier N is held back until barrier N has arrived on every channel into every key group of
// the task; then the task reports alignment and waits until the worker has frozen its state.
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../core/logger.ts';
import { subjects } from '../core/subjects.ts';
import { ChannelBrokenError, UserFunctionError, ensureError } from '../core/errors.ts';
import { decodeBarrier, decodeHeader, decodeRecords, decodeWatermark, BatchKind, type BatchHeader, type Record } from '../core/record-batch.ts';
import type { JobId, StageId } from '../core/ids.ts';
import type { JobManifest } from '../core/manifest.ts';
import type { StagePlan, StateDescriptor } from '../sdk/index.ts';
import { encodeAck } from './channel-sender.ts';
import { KeyedContext } from './keyed-context.ts';
import { KeyedTime, type OnTimerFn } from './keyed-time.ts';
import type { StageOutput } from './stage-output.ts';
import type { StateBackend } from './state-backend.ts';
import type { DeadLetters } from './dead-letters.ts';
import type { StageCounters } from './stage-counters.ts';

export interface KeyedTaskOptions {
  nc: NatsConnection;
  jobId: JobId;
  manifest: JobManifest;
  stage: StagePlan;
  keyGroups: readonly number[];
  /** The sending tasks of this epoch. A batch from any other sender is stale and fenced off. */
  upstreamSenders: readonly string[];
  backend: StateBackend;
  output: StageOutput;
  counters: StageCounters;
  deadLetters: DeadLetters;
  logger: Logger;
  onFailure(error: Error, keyGroup: number): void;
  /**
   * Barrier N arrived on every channel into every key group and everything before it is
   * processed. The task holds its input until the returned promise resolves.
   */
  onAligned(checkpointId: number): Promise<void>;
  /** Called after each batch: the worker checks the overlay's memory bound. */
  afterBatch(): void;
}

interface Pending {
  header: BatchHeader;
  data: Uint8Array;
  reply: string | undefined;
  channel: string;
}

type ProcessFn = (value: unknown, ctx: KeyedContext) => void | Promise<void>;

/** A queue item that is no batch: the clock's tick for timers and the TTL sweep (worker/keyed-time.ts). */
const TICK_KIND = 0;
const TICK: Pending = { header: { kind: TICK_KIND as BatchHeader['kind'], sequence: 0, keyGroup: 0, sender: '', recordCount: 0, bodyOffset: 0 }, data: new Uint8Array(0), reply: undefined, channel: '' };

export class KeyedTask {
  readonly #o: KeyedTaskOptions;
  readonly #subs: Subscription[] = [];
  readonly #senders: ReadonlySet<string>;
  /** Last accepted sequence per channel, keyed "<sender>|<keyGroup>". */
  readonly #lastSequence = new Map<string, number>();
  readonly #queues = new Map<number, Pending[]>();
  /** Key groups with a drain loop running. */
  readonly #active = new Map<number, Promise<void>>();
  /** Channels that delivered the barrier being aligned, held back until alignment. */
  readonly #held = new Set<string>();
  #aligning = -1;
  readonly #channelsPerCheckpoint: number;
  readonly #declared: ReadonlyMap<string, StateDescriptor['kind']>;
  readonly #process: ProcessFn;
  readonly #stageId: StageId;
  #failed = false;
  #stopped = false;
  /** The key group whose record is being emitted, for errors raised by chained operators. */
  #currentKeyGroup = -1;
  /** Watermarks, timers and the TTL sweep. */
  readonly #time: KeyedTime;

  constructor(options: KeyedTaskOptions) {
    this.#o = options;
    this.#stageId = options.stage.spec.id as StageId;
    this.#senders = new Set(options.upstreamSenders);
    this.#channelsPerCheckpoint = options.upstreamSenders.length * options.keyGroups.length;
    this.#declared = new Map(options.stage.spec.states.map((s) => [s.name, s.kind]));
    const op = options.stage.operators[0];
    if (op?.kind !== 'process') throw new TypeError(`keyed stage ${options.stage.spec.id} does not start with process`);
    this.#process = op.fn as unknown as ProcessFn;
    this.#time = new KeyedTime({
      stage: this.#stageId,
      backend: options.backend,
      declared: this.#declared,
      states: options.stage.spec.states,
      upstreamSenders: options.upstreamSenders,
      keyGroups: options.keyGroups,
      onTimer: op.onTimer as unknown as OnTimerFn | undefined,
      runUser: (kg, run, record) => this.#runUser(kg, run, record),
      emit: (kg, value, ts) => {
        this.#currentKeyGroup = kg;
        options.output.emit(value, ts);
      },
      emitSide: (tag, value) => options.output.emitSide(tag, value),
      forwardWatermark: (wm, idle) => options.output.sender?.sendWatermark(wm, idle),
    });
  }

  get currentKeyGroup(): number {
    return this.#currentKeyGroup;
  }

  get queuedBatches(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.length;
    return n;
  }

  start(): void {
    for (const kg of this.#o.keyGroups) {
      const subject = subjects.channel(this.#o.jobId, this.#stageId, kg);
      this.#subs.push(this.#o.nc.subscribe(subject, { callback: (err, msg) => (err ? this.#fail(err, kg) : this.#onMessage(msg)) }));
    }
    this.#time.start((kg) => {
      let queue = this.#queues.get(kg);
      if (!queue) this.#queues.set(kg, (queue = []));
      queue.push(TICK);
      this.#wake(kg, queue);
    });
  }

  #onMessage(msg: Msg): void {
    if (this.#failed || this.#stopped) return;
    let header: BatchHeader;
    try {
      header = decodeHeader(msg.data);
    } catch (e) {
      return this.#fail(new ChannelBrokenError(`undecodable batch on ${msg.subject}: ${ensureError(e).message}`), -1);
    }
    // Fencing: a sender of an earlier epoch (before a recovery or a move) is not applied.
    if (!this.#senders.has(header.sender)) return;
    const channel = `${header.sender}|${header.keyGroup}`;
    const last = this.#lastSequence.get(channel) ?? 0;
    if (header.sequence <= last) {
      // A batch seen before (a resend): acknowledge again, apply nothing.
      if (msg.reply) this.#o.nc.publish(msg.reply, encodeAck(header.keyGroup, last));
      return;
    }
    if (header.sequence !== last + 1) {
      // Core NATS dropped something (a slow-consumer cut-off, a reconnect): fail loudly.
      return this.#fail(new ChannelBrokenError(`channel ${header.sender} → ${this.#stageId} key group ${header.keyGroup}: batch ${header.sequence} arrived after ${last}; ${header.sequence - last - 1} batch(es) lost`), header.keyGroup);
    }
    this.#lastSequence.set(channel, header.sequence);
    let queue = this.#queues.get(header.keyGroup);
    if (!queue) this.#queues.set(header.keyGroup, (queue = []));
    queue.push({ header, data: msg.data, reply: msg.reply, channel });
    this.#wake(header.keyGroup, queue);
  }

  #wake(keyGroup: number, queue: Pending[]): void {
    if (this.#active.has(keyGroup) || queue.length === 0) return;
    const run = this.#drain(keyGroup, queue).finally(() => {
      this.#active.delete(keyGroup);
      // NATS delivers several messages in one synchronous loop: a batch may have been queued
      // after this loop's last look and before this callback ran. Look again.
      if (queue.some((p) => !this.#held.has(p.channel))) this.#wake(keyGroup, queue);
    });
    this.#active.set(keyGroup, run);
  }

  async #drain(keyGroup: number, queue: Pending[]): Promise<void> {
    while (!this.#failed && !this.#stopped) {
      // The first batch whose channel is not held back behind a barrier.
      const index = this.#held.size === 0 ? (queue.length > 0 ? 0 : -1) : queue.findIndex((p) => !this.#held.has(p.channel));
      if (index < 0) return;
      const item = index === 0 ? queue.shift()! : queue.splice(index, 1)[0]!;
      if (item.header.kind === BatchKind.BARRIER) {
        if (item.reply) this.#o.nc.publish(item.reply, encodeAck(keyGroup, item.header.sequence));
        this.#barrier(item.channel, decodeBarrier(item.data, item.header));
        continue;
      }
      if (item.header.kind === BatchKind.WATERMARK || item === TICK) {
        try {
          // No ticks while aligning: a timer fired half before and half after the freeze would
          // leave its deletion in one checkpoint and its effects in the next.
          if (item === TICK) await this.#time.onTick(keyGroup, this.#aligning !== -1);
          else {
            const { watermark, idle } = decodeWatermark(item.data, item.header);
            await this.#time.onWatermark(keyGroup, item.header.sender, watermark, idle);
          }
        } catch (e) {
          this.#fail(ensureError(e), keyGroup);
          return;
        }
        this.#o.afterBatch();
        if (item.reply) this.#o.nc.publish(item.reply, encodeAck(keyGroup, item.header.sequence));
        continue;
      }
      if (item.header.kind !== BatchKind.DATA) continue;
      try {
        await this.#processBatch(item.header, decodeRecords(item.data, item.header));
        this.#o.afterBatch();
        const sinksFull = this.#o.output.checkSinks();
        if (sinksFull) await sinksFull;
        // Backpressure across stages: hold this batch's ack while the next stage is behind.
        if (this.#o.output.sender?.blocked) await this.#o.output.sender.whenWritable();
      } catch (e) {
        this.#fail(ensureError(e), keyGroup);
        return;
      }
      if (item.reply) this.#o.nc.publish(item.reply, encodeAck(keyGroup, item.header.sequence));
    }
  }

  #barrier(channel: string, checkpointId: number): void {
    if (this.#aligning !== -1 && checkpointId !== this.#aligning) {
      return this.#fail(new ChannelBrokenError(`barrier ${checkpointId} on ${channel} while aligning checkpoint ${this.#aligning}`), -1);
    }
    this.#aligning = checkpointId;
    this.#held.add(channel);
    if (this.#held.size < this.#channelsPerCheckpoint) return;
    // Every channel delivered barrier N, and every key group processed what came before it
    // (a key group reaches its barriers only after its earlier batches).
    void this.#aligned(checkpointId);
  }

  async #aligned(checkpointId: number): Promise<void> {
    // Wait for key groups still finishing a batch from a channel that had not sent the barrier
    // when that batch started: impossible by construction, but the drains must be idle.
    try {
      await this.#o.onAligned(checkpointId);
    } catch (e) {
      return this.#fail(ensureError(e), -1);
    }
    this.#held.clear();
    this.#aligning = -1;
    for (const [kg, queue] of this.#queues) this.#wake(kg, queue);
  }

  async #processBatch(header: BatchHeader, records: Record[]): Promise<void> {
    this.#o.counters.recordsIn += records.length;
    // Group by key, keeping each key's records in arrival order.
    const byKey = new Map<string, Record[]>();
    for (const r of records) {
      const list = byKey.get(r.key);
      if (list) list.push(r);
      else byKey.set(r.key, [r]);
    }
    const runs: Array<Promise<void>> = [];
    for (const [key, list] of byKey) runs.push(this.#processKey(header.keyGroup, key, list));
    await Promise.all(runs);
  }

  async #processKey(keyGroup: number, key: string, records: Record[]): Promise<void> {
    const { backend, output, manifest, deadLetters, counters } = this.#o;
    // Chained operators after process() run synchronously inside emit: mark the key group there
    // so an error they throw names it.
    const emit = (value: unknown, timestamp: number) => {
      this.#currentKeyGroup = keyGroup;
      output.emit(value, timestamp);
    };
    const ctx = new KeyedContext(this.#stageId, backend, this.#declared, key, keyGroup, emit, this.#time.services(keyGroup));
    for (const r of records) {
      ctx.timestamp = r.timestamp >= 0 ? r.timestamp : undefined;
      try {
        await this.#process(r.value, ctx);
      } catch (e) {
        const err = e instanceof UserFunctionError ? e : new UserFunctionError({ jobId: this.#o.jobId, stageId: this.#stageId, operator: this.#stageId, keyGroup }, e);
        if (manifest.errorPolicy === 'fail') throw err;
        deadLetters.publish({ stageId: this.#stageId, operator: err.operator, keyGroup, reason: err.message, stack: ensureError(err.cause).stack ?? '', record: r.value }, counters);
      }
    }
  }

  /** Runs a user callback (onTimer) under the job's error policy, as records are. */
  async #runUser(keyGroup: number, run: () => void | Promise<void>, record: unknown): Promise<void> {
    const { manifest, deadLetters, counters } = this.#o;
    try {
      await run();
    } catch (e) {
      const err = e instanceof UserFunctionError ? e : new UserFunctionError({ jobId: this.#o.jobId, stageId: this.#stageId, operator: this.#stageId, keyGroup }, e);
      if (manifest.errorPolicy === 'fail') throw err;
      deadLetters.publish({ stageId: this.#stageId, operator: err.operator, keyGroup, reason: err.message, stack: ensureError(err.cause).stack ?? '', record }, counters);
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
    for (const s of this.#subs) s.unsubscribe();
    await Promise.all([...this.#active.values()].map((p) => p.catch(() => undefined)));
  }
}
