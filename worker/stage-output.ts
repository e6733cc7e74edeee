// What a stage does with the records its operators produce: shuffle them by key to the next
// stage's key groups, or write them to the stage's sinks.
import type { NatsConnection } from '@nats-io/transport-node';
import type { OperatorImpl, StagePlan } from '../sdk/index.ts';
import { keyGroupForKey } from '../core/key-groups.ts';
import { parseStageId, type JobId } from '../core/ids.ts';
import { UserFunctionError, ensureError, type ChannelBrokenError } from '../core/errors.ts';
import { ChannelSender } from './channel-sender.ts';
import { compileStageChain, type ChainWhere, type Emit } from './operator-chain.ts';
import { MAX_PENDING_SINK_WRITES, isExactlyOnce, openSinks, type CheckpointOutput, type Sink } from './sinks.ts';
import type { DeadLetters } from './dead-letters.ts';
import type { StageCounters } from './stage-counters.ts';
import type { CompiledWorkerOptions } from './options.ts';

export interface StageOutputOptions {
  nc: NatsConnection;
  jobId: JobId;
  stage: StagePlan;
  /** The stateless operators that follow the stage's own first operator (or all, for a source). */
  chained: readonly OperatorImpl[];
  senderTask: string;
  maxParallelism: number;
  counters: StageCounters;
  deadLetters: DeadLetters;
  where: ChainWhere;
  worker: CompiledWorkerOptions;
  onBroken(error: ChannelBrokenError): void;
  /** What happens to a record whose user function throws after an asyncMap (as in the task). @default "fail" */
  errorPolicy?: 'fail' | 'dead-letter';
  /**
   * A failure outside the task's own processing: an asyncMap's last attempt failed under
   * onFailure "fail", or an operator after it threw under the "fail" policy. @default rethrown
   * from the completion (an unhandled rejection): give it whenever the stage has an asyncMap
   */
  onFailure?(error: Error): void;
  /** Records the size of each batch sent (metrics). @default none */
  recordBatchSize?(records: number): void;
}

export interface StageOutput {
  /** Runs the chained operators, then shuffles or sinks. Throws UserFunctionError. */
  emit: Emit;
  /** Writes a value (with its event time, when it has one) to the sinks of side output `tag` (none: dropped, as the job declared no sink for it). */
  emitSide(tag: string, value: unknown, timestampMs?: number): void;
  /** Null when the stage ends in sinks. */
  sender: ChannelSender | null;
  sinks: Sink[];
  /** Resolves when sink output so far is durable. */
  flushSinks(): Promise<void>;
  /**
   * Cheap per-batch check: throws a sink's asynchronous failure, and waits for the sinks only
   * when too many writes are unconfirmed (bounded memory, no per-batch round trip), or while an
   * asyncMap of the chain is at capacity.
   */
  checkSinks(): Promise<void> | undefined;
  /**
   * Barrier N: forwards it downstream after every record emitted before it (with an asyncMap in
   * the chain, once those have left it; synchronously otherwise) and returns the exactly-once
   * output written before it: checkpoint N's output.
   */
  barrier(checkpointId: number): CheckpointOutput[] | Promise<CheckpointOutput[]>;
  /** Forwards a watermark (or idleness) downstream, after every record emitted before it. */
  watermark(watermarkMs: number, idle: boolean): void;
  /** Resolves once no record is inside an asyncMap of the chain (at once without one). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export function createStageOutput(o: StageOutputOptions): StageOutput {
  const { spec } = o.stage;
  let terminal: Emit;
  let sender: ChannelSender | null = null;
  let chained = o.chained;
  // Part names of files sinks: the stage and the task (worker, or the split for a source).
  const task = `${spec.id}-${spec.kind === 'source' ? o.senderTask.split('@')[0]! : o.worker.workerId}`;
  const sinks = openSinks(o.nc, spec.sinks, task);
  if (spec.shuffleTo !== undefined) {
    const keyBy = chained[chained.length - 1];
    if (keyBy?.kind !== 'keyBy') throw new TypeError(`stage ${spec.id} shuffles to ${spec.shuffleTo} but does not end with keyBy`);
    chained = chained.slice(0, -1);
    const selector = keyBy.fn as (v: unknown) => unknown;
    const s = new ChannelSender({
      nc: o.nc,
      jobId: o.jobId,
      toStage: parseStageId(spec.shuffleTo),
      senderTask: o.senderTask,
      maxParallelism: o.maxParallelism,
      maxBatchRecords: o.worker.maxBatchRecords,
      batchLingerMs: o.worker.batchLingerMs,
      channelWindow: o.worker.channelWindow,
      ackTimeoutMs: o.worker.ackTimeoutMs,
      onBroken: o.onBroken,
      ...(o.recordBatchSize !== undefined && { recordBatchSize: o.recordBatchSize }),
    });
    sender = s;
    o.counters.senders.push(s);
    terminal = (value, timestamp) => {
      let raw: unknown;
      try {
        raw = selector(value);
      } catch (e) {
        throw new UserFunctionError({ jobId: o.jobId, stageId: spec.id, operator: keyBy.name, keyGroup: o.where.keyGroup() }, e);
      }
      // A record without a key cannot be routed: it is a bad record, not a crash.
      if ((typeof raw !== 'string' && typeof raw !== 'number') || raw === '' || (typeof raw === 'number' && !Number.isFinite(raw))) {
        o.deadLetters.publish({ stageId: spec.id, operator: keyBy.name, reason: `missing key: ${keyBy.name} returned ${raw === '' ? 'an empty string' : String(raw)}`, record: value }, o.counters);
        return;
      }
      const key = String(raw);
      o.counters.recordsOut++;
      s.send(keyGroupForKey(key, o.maxParallelism), { key, timestamp, value });
    };
  } else {
    const mainSinks = sinks.filter((_, i) => spec.sinks[i]!.sideOutput === undefined);
    terminal = (value, timestamp) => {
      o.counters.recordsOut++;
      for (const sink of mainSinks) sink.write(value, timestamp);
    };
  }
  const sideSinks = new Map<string, Sink[]>();
  spec.sinks.forEach((s, i) => {
    if (s.sideOutput !== undefined) sideSinks.set(s.sideOutput, [...(sideSinks.get(s.sideOutput) ?? []), sinks[i]!]);
  });
  const onFailure = (e: Error): void => {
    if (o.onFailure) o.onFailure(e);
    else throw e;
  };
  const chain = compileStageChain(chained, terminal, o.where, {
    onError: (e, record, keyGroup) => {
      if (!(e instanceof UserFunctionError) || o.errorPolicy !== 'dead-letter') return onFailure(e);
      o.deadLetters.publish({ stageId: spec.id, operator: e.operator, ...(keyGroup >= 0 && { keyGroup }), reason: e.message, stack: ensureError(e.cause).stack ?? '', record }, o.counters);
    },
    fail: (e) => onFailure(e),
    deadLetter: (e, record) => {
      o.deadLetters.publish({ stageId: spec.id, operator: e.operator, ...(e.keyGroup >= 0 && { keyGroup: e.keyGroup }), reason: e.message, stack: ensureError(e.cause).stack ?? '', record }, o.counters);
    },
  });
  const async = chain.async;
  const takeOutput = (checkpointId: number): CheckpointOutput[] => {
    const out: CheckpointOutput[] = [];
    for (const sink of sinks) if (isExactlyOnce(sink)) for (const x of sink.take(checkpointId)) out.push(x);
    return out;
  };
  const cut = (checkpointId: number): CheckpointOutput[] => {
    sender?.flush();
    sender?.sendBarrier(checkpointId);
    return takeOutput(checkpointId);
  };
  return {
    emit: chain.emit,
    emitSide: (tag, value, timestampMs) => {
      for (const sink of sideSinks.get(tag) ?? []) sink.write(value, timestampMs);
    },
    sender,
    sinks,
    flushSinks: async () => {
      for (const sink of sinks) await sink.flush();
    },
    checkSinks: () => {
      for (const sink of sinks) {
        if (sink.failure) throw sink.failure;
        if (sink.pending > MAX_PENDING_SINK_WRITES) return Promise.all(sinks.map((x) => x.flush())).then(() => undefined);
      }
      // An asyncMap at capacity: take no more input until it has room (backpressure).
      if (async?.full) return async.whenReady();
      return undefined;
    },
    barrier: (checkpointId) => {
      if (async === undefined) return cut(checkpointId);
      return new Promise((resolve, reject) => async.marker(() => {
        try {
          resolve(cut(checkpointId));
        } catch (e) {
          reject(ensureError(e));
        }
      }));
    },
    watermark: (watermarkMs, idle) => {
      if (async === undefined) sender?.sendWatermark(watermarkMs, idle);
      else async.marker(() => sender?.sendWatermark(watermarkMs, idle));
    },
    settled: () => (async === undefined ? Promise.resolve() : new Promise<void>((resolve) => async.marker(resolve))),
    close: async () => {
      async?.close();
      await sender?.close();
      // Let confirmations of what was written arrive before the inbox goes away.
      await Promise.all(sinks.map((x) => x.flush().catch(() => undefined)));
      for (const sink of sinks) sink.close();
    },
  };
}
