// A keyed task: the actors of one keyed stage on this worker, one per owned key group.
//
// It subscribes to eddy.<job>.<stage>.<kg> for each of its key groups (a key group moves by
// moving a subscription), checks every channel's sequence, and processes batches in arrival
// order. Inside a batch, records of one key run one at a time in order, while different keys
// run concurrently so that their state reads overlap. A batch is acknowledged only once it is
// processed and its sink output is durable: the acknowledgement is the channel's flow control.
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../core/logger.ts';
import { subjects } from '../core/subjects.ts';
import { ChannelBrokenError, UserFunctionError, ensureError } from '../core/errors.ts';
import { decodeHeader, decodeRecords, BatchKind, type BatchHeader, type Record } from '../core/record-batch.ts';
import type { JobId, StageId } from '../core/ids.ts';
import type { JobManifest } from '../core/manifest.ts';
import type { StagePlan, StateDescriptor } from '../sdk/index.ts';
import { encodeAck } from './channel-sender.ts';
import { KeyedContext } from './keyed-context.ts';
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
  backend: StateBackend;
  output: StageOutput;
  counters: StageCounters;
  deadLetters: DeadLetters;
  logger: Logger;
  onFailure(error: Error, keyGroup: number): void;
}

interface Pending {
  header: BatchHeader;
  data: Uint8Array;
  reply: string | undefined;
}

type ProcessFn = (value: unknown, ctx: KeyedContext) => void | Promise<void>;

export class KeyedTask {
  readonly #o: KeyedTaskOptions;
  readonly #subs: Subscription[] = [];
  /** Last accepted sequence per channel, keyed "<sender>|<keyGroup>". */
  readonly #lastSequence = new Map<string, number>();
  readonly #queues = new Map<number, Pending[]>();
  /** Key groups with a drain loop running. */
  readonly #active = new Map<number, Promise<void>>();
  readonly #declared: ReadonlyMap<string, StateDescriptor['kind']>;
  readonly #process: ProcessFn;
  readonly #stageId: StageId;
  #failed = false;
  #stopped = false;
  /** The key group being processed, for errors raised by chained operators. */
  #currentKeyGroup = -1;

  constructor(options: KeyedTaskOptions) {
    this.#o = options;
    this.#stageId = options.stage.spec.id as StageId;
    this.#declared = new Map(options.stage.spec.states.map((s) => [s.name, s.kind]));
    const op = options.stage.operators[0];
    if (op?.kind !== 'process') throw new TypeError(`keyed stage ${options.stage.spec.id} does not start with process`);
    this.#process = op.fn as unknown as ProcessFn;
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
  }

  #onMessage(msg: Msg): void {
    if (this.#failed || this.#stopped) return;
    let header: BatchHeader;
    try {
      header = decodeHeader(msg.data);
    } catch (e) {
      return this.#fail(new ChannelBrokenError(`undecodable batch on ${msg.subject}: ${ensureError(e).message}`), -1);
    }
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
    // One queue per key group (actor): a key group's batches run in order, one at a time, while
    // different key groups run concurrently so their RocksDB reads share read batches.
    let queue = this.#queues.get(header.keyGroup);
    if (!queue) this.#queues.set(header.keyGroup, (queue = []));
    queue.push({ header, data: msg.data, reply: msg.reply });
    if (!this.#active.has(header.keyGroup)) {
      const run = this.#drain(header.keyGroup, queue).finally(() => this.#active.delete(header.keyGroup));
      this.#active.set(header.keyGroup, run);
    }
  }

  async #drain(keyGroup: number, queue: Pending[]): Promise<void> {
    while (queue.length > 0 && !this.#failed && !this.#stopped) {
      const item = queue.shift()!;
      if (item.header.kind !== BatchKind.DATA) continue;
      try {
        await this.#processBatch(item.header, decodeRecords(item.data, item.header));
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
    const ctx = new KeyedContext(this.#stageId, backend, this.#declared, key, keyGroup, emit);
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

  #fail(error: Error, keyGroup: number): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#o.onFailure(error, keyGroup);
  }

  /** Stops taking batches and waits for the one in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const s of this.#subs) s.unsubscribe();
    await Promise.all([...this.#active.values()].map((p) => p.catch(() => undefined)));
  }
}
