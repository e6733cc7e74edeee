// The records of a keyed task's batches (keyed-task.ts): each runs the stage's process function
// (or, for a broadcast input, processBroadcastElement) with the keyed context of its key, under
// the job's error policy (error-policy.ts): under "dead-letter" a record is all-or-nothing.
//
// Records run in arrival order, synchronously while the function returns no promise; one that
// goes asynchronous lets the batch go on with other keys while later records of its key queue
// behind it (docs/ARCHITECTURE.md, "Actors, tasks and channels"). Keyed contexts, with their
// state handles, are pooled per key group and key (bounded), not built per key and batch.
import { ChannelBrokenError, type UserFunctionError } from '../../core/errors.ts';
import type { BatchHeader, Record } from '../../core/record-batch.ts';
import type { StageId } from '../../core/ids.ts';
import { decodeOrigin } from '../../core/record-origin.ts';
import type { StateDescriptor } from '../../sdk/index.ts';
import type { StateBackend } from '../state/index.ts';
import type { StageInputRef } from '../channel/index.ts';
import { KeyedContext } from './keyed-context.ts';
import type { KeyedTime } from './keyed-time.ts';
import type { StageOutput } from './stage-output.ts';
import type { StageCounters } from './stage-counters.ts';
import type { ErrorPolicy } from './error-policy.ts';
import { BroadcastContextImpl } from './broadcast-context.ts';
import { callSite, Phase } from './call-site.ts';

/**
 * Pooled keyed contexts of a task, all key groups together (their handles are built once per key,
 * not per batch). A pooled context with its handles and encoded keys is several KB on the heap
 * (~8.7 KB measured for customer-experience): 4,096 per key group let 100 k entities hold ~870 MB
 * and a job's thread, capped at 1 GB by default, collected garbage most of the time. Past the
 * bound the pools start again.
 */
export const POOLED_CONTEXTS = 16_384;

export type ProcessFn = (value: unknown, ctx: KeyedContext) => void | Promise<void>;

export interface KeyedRecordsOptions {
  stageId: StageId;
  /** The stage's index in the manifest, for the call site (call-site.ts). */
  stageIndex: number;
  backend: StateBackend;
  output: StageOutput;
  counters: StageCounters;
  errorPolicy: ErrorPolicy;
  /** The task's clock: the services (timers, features) of each key group's contexts. */
  time: KeyedTime;
  declared: ReadonlyMap<string, StateDescriptor['kind']>;
  broadcastStates: ReadonlySet<string>;
  /** The process function of each keyed input, by input index (a broadcast input's is processBroadcastElement). */
  inputFns: readonly ProcessFn[];
  /** Which input of the stage a sender's records are for. */
  inputOf(sender: string): StageInputRef | undefined;
}

export class KeyedRecords {
  readonly #o: KeyedRecordsOptions;
  readonly #stageId: StageId;
  readonly #stageIndex: number;
  readonly #inputFns: readonly ProcessFn[];
  readonly #time: KeyedTime;
  /** The key group whose record is being emitted, for errors raised by chained operators. */
  currentKeyGroup = -1;
  /** Per key group: the keyed contexts of recent keys, the services they were built with, the emit they share. */
  readonly #contexts = new Map<number, { services: object; contexts: Map<string, KeyedContext> }>();
  /** Contexts in all the pools. */
  #pooled = 0;

  constructor(options: KeyedRecordsOptions) {
    this.#o = options;
    this.#stageId = options.stageId;
    this.#stageIndex = options.stageIndex;
    this.#inputFns = options.inputFns;
    this.#time = options.time;
  }

  /** Forgets the pooled contexts of a key group (it moved away). */
  forget(keyGroup: number): void {
    this.#pooled -= this.#contexts.get(keyGroup)?.contexts.size ?? 0;
    this.#contexts.delete(keyGroup);
  }

  async processBatch(header: BatchHeader, records: Record[]): Promise<void> {
    this.#o.counters.recordsIn += records.length;
    const input = this.#o.inputOf(header.sender);
    if (input === undefined) throw new ChannelBrokenError(`stage ${this.#stageId} got a batch from sender ${header.sender}, which feeds none of its inputs`);
    const fn = this.#inputFns[input.index]!;
    if (input.kind === 'broadcast') return this.#processBroadcast(header.keyGroup, fn, records);
    const keyGroup = header.keyGroup;
    // Records run in arrival order, synchronously while the function returns no promise. A record
    // that goes asynchronous (a state read that missed the cache, or an async function) lets the
    // batch go on with other keys; later records of its key queue behind it. So each key's records
    // keep their order, and the misses of a batch's keys go out together (one RocksDB read batch).
    let inflight: Map<string, Promise<void>> | undefined;
    try {
      for (const r of records) {
        const waiting = inflight?.get(r.key);
        if (waiting !== undefined) {
          inflight!.set(r.key, waiting.then(() => this.#runRecord(keyGroup, r, fn)));
          continue;
        }
        const pending = this.#runRecord(keyGroup, r, fn);
        if (pending !== undefined) (inflight ??= new Map()).set(r.key, pending);
      }
    } catch (e) {
      // A record failed the task synchronously: the ones still in flight must not reject unheard.
      if (inflight !== undefined) for (const p of inflight.values()) p.catch(() => undefined);
      throw e;
    }
    if (inflight !== undefined) await Promise.all(inflight.values());
  }

  /** The pooled context of a key (its state handles built once), or a new one. */
  #contextOf(keyGroup: number, key: string): KeyedContext {
    const services = this.#time.services(keyGroup);
    let pool = this.#contexts.get(keyGroup);
    // Services are per key group; a new services object (a reconfigured clock) starts a new pool.
    if (pool === undefined || pool.services !== services) {
      this.#pooled -= pool?.contexts.size ?? 0;
      pool = { services, contexts: new Map() };
      this.#contexts.set(keyGroup, pool);
    }
    let ctx = pool.contexts.get(key);
    if (ctx === undefined) {
      // Bounded: with more live keys than POOLED_CONTEXTS every pool starts again.
      if (this.#pooled >= POOLED_CONTEXTS) {
        for (const other of this.#contexts.values()) other.contexts.clear();
        this.#pooled = 0;
      }
      // Chained operators after process() run synchronously inside emit: mark the key group there
      // so an error they throw names it, and the origin of the key's current record (records of
      // one key run one at a time; other keys' records may interleave while one awaits).
      const emit = (value: unknown, timestamp: number) => {
        this.currentKeyGroup = keyGroup;
        this.#o.output.setOrigin(created.origin);
        this.#o.output.emit(value, timestamp);
      };
      const created = new KeyedContext(this.#stageId, this.#o.backend, this.#o.declared, key, keyGroup, emit, services);
      ctx = created;
      // Under "dead-letter" a record is all-or-nothing: a throw anywhere (the function, an operator
      // after it, a sink's encoding) takes back its state writes and writes none of its output.
      if (this.#o.errorPolicy.atomicRecords) ctx.enableAtomicRecords();
      pool.contexts.set(key, ctx);
      this.#pooled++;
    }
    return ctx;
  }

  /** One record: undefined when it completed synchronously, else a promise of its completion. */
  #runRecord(keyGroup: number, r: Record, process: ProcessFn): Promise<void> | undefined {
    const ctx = this.#contextOf(keyGroup, r.key);
    ctx.origin = r.origin ?? -1;
    callSite.keyedRecord(this.#stageIndex, keyGroup, Phase.RECORD, ctx.origin);
    ctx.timestamp = r.timestamp >= 0 ? r.timestamp : undefined;
    let result: void | Promise<void>;
    try {
      result = process(r.value, ctx);
    } catch (e) {
      this.#recordFailed(e, keyGroup, ctx, r);
      return this.#finishRecord(ctx);
    }
    if (result !== undefined && typeof (result as { then?: unknown }).then === 'function') return this.#awaitRecord(result as Promise<void>, keyGroup, ctx, r);
    this.#recordSucceeded(keyGroup, ctx, r);
    return this.#finishRecord(ctx);
  }

  async #awaitRecord(result: Promise<void>, keyGroup: number, ctx: KeyedContext, r: Record): Promise<void> {
    try {
      await result;
    } catch (e) {
      this.#recordFailed(e, keyGroup, ctx, r);
      const features = this.#finishRecord(ctx);
      if (features !== undefined) await features;
      return;
    }
    this.#recordSucceeded(keyGroup, ctx, r);
    const features = this.#finishRecord(ctx);
    if (features !== undefined) await features;
  }

  #recordSucceeded(keyGroup: number, ctx: KeyedContext, r: Record): void {
    if (!ctx.atomic) return;
    try {
      this.#o.output.atomically(ctx.release);
      ctx.endRecord();
    } catch (e) {
      this.#recordFailed(e, keyGroup, ctx, r);
    }
  }

  /** Under "fail" the error fails the task; under "dead-letter" the record is undone and dead-lettered. */
  #recordFailed(e: unknown, keyGroup: number, ctx: KeyedContext, r: Record): void {
    const err = this.#o.errorPolicy.userError(e, keyGroup);
    if (this.#o.errorPolicy.fails) throw attribute(err, r.origin ?? -1);
    ctx.undoRecord();
    this.#o.errorPolicy.deadLetter(err, r.value, keyGroup);
  }

  /** Feature metadata and history: written per record, after the record's own state changes. */
  #finishRecord(ctx: KeyedContext): Promise<void> | undefined {
    return ctx.finishRecord();
  }

  /**
   * Broadcast records: each runs processBroadcastElement once in this key group (every key group
   * of the stage gets its own copy), in order with the key group's other batches.
   */
  async #processBroadcast(keyGroup: number, fn: ProcessFn, records: Record[]): Promise<void> {
    const { backend, output } = this.#o;
    let origin = -1;
    const emit = (value: unknown, timestamp: number) => {
      this.currentKeyGroup = keyGroup;
      output.setOrigin(origin);
      output.emit(value, timestamp);
    };
    for (const r of records) {
      origin = r.origin ?? -1;
      const bctx = new BroadcastContextImpl(this.#stageId, backend, this.#o.declared, this.#o.broadcastStates, keyGroup, emit, this.#time.services(keyGroup), r.timestamp >= 0 ? r.timestamp : undefined);
      bctx.origin = origin;
      try {
        await fn(r.value, bctx as unknown as KeyedContext);
      } catch (e) {
        const err = this.#o.errorPolicy.userError(e, keyGroup);
        if (this.#o.errorPolicy.fails) throw attribute(err, origin);
        this.#o.errorPolicy.deadLetter(err, r.value, keyGroup);
      }
    }
  }

  /** Runs a user callback (onTimer) under the job's error policy, all-or-nothing as records are. */
  async runUser(keyGroup: number, run: () => void | Promise<void>, record: unknown, ctx?: KeyedContext): Promise<void> {
    const { output } = this.#o;
    const atomic = this.#o.errorPolicy.atomicRecords && ctx !== undefined;
    if (atomic) ctx.enableAtomicRecords();
    callSite.keyedRecord(this.#stageIndex, keyGroup, Phase.TIMER);
    try {
      await run();
      if (atomic) {
        output.atomically(() => ctx.releaseOutput());
        ctx.endRecord();
      }
    } catch (e) {
      // A timer derives from no one source record: it is named by its key and time instead.
      const timer = (record as { timer?: { key: string; timestampMs: number; domain: string } }).timer;
      const operator = timer === undefined ? undefined : `onTimer of key ${JSON.stringify(timer.key)} at ${timer.timestampMs} (${timer.domain} time)`;
      const err = this.#o.errorPolicy.userError(e, keyGroup, operator);
      if (this.#o.errorPolicy.fails) throw err;
      if (atomic) ctx.undoRecord();
      this.#o.errorPolicy.deadLetter(err, record, keyGroup);
    }
  }
}

/** Names the source record a failing keyed record derives from (the coordinator counts poison records by it). */
function attribute(err: UserFunctionError, origin: number): UserFunctionError {
  err.sourcePosition ??= decodeOrigin(origin);
  return err;
}
