// What a stage does with the records its operators produce. A stage's operators form a tree
// (core/manifest.ts): each takes the output (or a side output) of an earlier one, and ends in
// sinks, or in a keyBy or broadcast operator that sends to a keyed stage through a channel
// sender of its own. This compiles the tree into nested emit functions, once per task.
import type { NatsConnection } from '@nats-io/transport-node';
import type { StagePlan } from '../sdk/index.ts';
import { keyGroupForKey } from '../core/key-groups.ts';
import { parseStageId, type JobId } from '../core/ids.ts';
import { senderNames } from '../core/subjects.ts';
import { UserFunctionError, type ChannelBrokenError } from '../core/errors.ts';
import { ChannelSender } from './channel-sender.ts';
import { compileChain, type ChainWhere, type Emit } from './operator-chain.ts';
import { MAX_PENDING_SINK_WRITES, isExactlyOnce, openSinks, type CheckpointOutput, type Sink } from './sinks.ts';
import type { DeadLetters } from './dead-letters.ts';
import type { StageCounters } from './stage-counters.ts';
import type { CompiledWorkerOptions } from './options.ts';

export interface StageOutputOptions {
  nc: NatsConnection;
  jobId: JobId;
  stage: StagePlan;
  /**
   * The task's sender name; the channel sender of the stage's k-th keyBy/broadcast operator is
   * senderNames.edge(senderTask, k), so that every edge has its own channels and ack subject.
   */
  senderTask: string;
  maxParallelism: number;
  counters: StageCounters;
  deadLetters: DeadLetters;
  where: ChainWhere;
  worker: CompiledWorkerOptions;
  onBroken(error: ChannelBrokenError): void;
  /** Records the size of each batch sent to a stage (metrics). @default none */
  recordBatchSize?(toStage: string): (records: number) => void;
}

/** The channel senders of a stage's edges, driven as one (barriers and watermarks go on every edge). */
export interface OutputSender {
  flush(): void;
  sendBarrier(checkpointId: number): void;
  sendWatermark(watermark: number, idle: boolean): void;
  /** True while any edge's records wait behind full windows. */
  readonly blocked: boolean;
  whenWritable(): Promise<void>;
  whenDrained(): Promise<void>;
}

export interface StageOutput {
  /**
   * A source stage: takes a source record into the operator tree. A keyed stage: takes what
   * the process operator emits. Throws UserFunctionError.
   */
  emit: Emit;
  /** The process operator's side output `tag` (none declared downstream: dropped). */
  emitSide(tag: string, value: unknown): void;
  /** Null when the stage sends to no other stage. */
  sender: OutputSender | null;
  sinks: Sink[];
  /** Resolves when sink output so far is durable. */
  flushSinks(): Promise<void>;
  /**
   * Cheap per-batch check: throws a sink's asynchronous failure, and waits for the sinks only
   * when too many writes are unconfirmed (bounded memory, no per-batch round trip).
   */
  checkSinks(): Promise<void> | undefined;
  /** Takes the exactly-once output written since the last barrier: checkpoint N's output. */
  takeCheckpointOutput(): CheckpointOutput[];
  close(): Promise<void>;
}

const drop: Emit = () => undefined;

/** One function calling each of targets (the common single target is returned as is). */
function fanOut(targets: Emit[]): Emit {
  if (targets.length === 0) return drop;
  if (targets.length === 1) return targets[0]!;
  return (value, ts) => {
    for (const t of targets) t(value, ts);
  };
}

export function createStageOutput(o: StageOutputOptions): StageOutput {
  const { spec, operators } = o.stage;
  const sinks = openSinks(o.nc, spec.sinks);
  const senders: ChannelSender[] = [];
  const countOut = (next: Emit): Emit => (value, ts) => {
    o.counters.recordsOut++;
    next(value, ts);
  };
  /** What takes operator `from`'s output (undefined: the source stage's records), or its side output `side`. */
  const targetsOf = (from: number | undefined, side: string | undefined): Emit[] => {
    const out: Emit[] = [];
    spec.operators.forEach((op, j) => {
      if (op.kind !== 'process' && op.input === from && op.sideOutput === side) out.push(entries[j]!);
    });
    spec.sinks.forEach((s, i) => {
      if (s.input === from && s.sideOutput === side) {
        const sink = sinks[i]!;
        out.push(side === undefined ? countOut((value) => sink.write(value)) : (value) => sink.write(value));
      }
    });
    return out;
  };
  // Entry of each operator, built from the last: an operator's consumers come after it.
  const entries: Array<Emit | undefined> = new Array(spec.operators.length);
  let edge = spec.operators.filter((op) => op.kind === 'keyBy' || op.kind === 'broadcast').length;
  for (let j = spec.operators.length - 1; j >= 0; j--) {
    const op = spec.operators[j]!;
    const impl = operators[j]!;
    if (op.kind === 'process') continue;
    if (op.kind === 'keyBy' || op.kind === 'broadcast') {
      const to = op.to!;
      const s = new ChannelSender({
        nc: o.nc,
        jobId: o.jobId,
        toStage: parseStageId(to.stage),
        senderTask: senderNames.edge(o.senderTask, --edge),
        maxParallelism: o.maxParallelism,
        maxBatchRecords: o.worker.maxBatchRecords,
        batchLingerMs: o.worker.batchLingerMs,
        channelWindow: o.worker.channelWindow,
        ackTimeoutMs: o.worker.ackTimeoutMs,
        onBroken: o.onBroken,
        ...(o.recordBatchSize !== undefined && { recordBatchSize: o.recordBatchSize(to.stage) }),
      });
      senders.push(s);
      o.counters.senders.push(s);
      entries[j] = op.kind === 'keyBy' ? shuffle(o, impl.name, impl.fn as (v: unknown) => unknown, s) : broadcast(o, s);
      continue;
    }
    entries[j] = compileChain([impl], fanOut(targetsOf(j, undefined)), o.where);
  }
  const sideTargets = new Map<string, Emit>();
  if (spec.kind === 'keyed') {
    const tags = new Set([...spec.operators.map((op) => op.sideOutput), ...spec.sinks.map((s) => s.sideOutput)]);
    for (const tag of tags) if (tag !== undefined) sideTargets.set(tag, fanOut(targetsOf(0, tag)));
  }
  const sender: OutputSender | null = senders.length === 0 ? null : senders.length === 1 ? senders[0]! : {
    flush: () => senders.forEach((s) => s.flush()),
    sendBarrier: (id) => senders.forEach((s) => s.sendBarrier(id)),
    sendWatermark: (wm, idle) => senders.forEach((s) => s.sendWatermark(wm, idle)),
    get blocked() {
      return senders.some((s) => s.blocked);
    },
    whenWritable: () => Promise.all(senders.map((s) => s.whenWritable())).then(() => undefined),
    whenDrained: () => Promise.all(senders.map((s) => s.whenDrained())).then(() => undefined),
  };
  return {
    emit: fanOut(targetsOf(spec.kind === 'keyed' ? 0 : undefined, undefined)),
    emitSide: (tag, value) => sideTargets.get(tag)?.(value, -1),
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
      return undefined;
    },
    takeCheckpointOutput: () => {
      const out: CheckpointOutput[] = [];
      for (const sink of sinks) if (isExactlyOnce(sink)) for (const o of sink.take()) out.push(o);
      return out;
    },
    close: async () => {
      for (const s of senders) await s.close();
      // Let confirmations of what was written arrive before the inbox goes away.
      await Promise.all(sinks.map((x) => x.flush().catch(() => undefined)));
      for (const sink of sinks) sink.close();
    },
  };
}

/** A keyBy operator: the record goes to its key's key group of the target stage. */
function shuffle(o: StageOutputOptions, name: string, selector: (v: unknown) => unknown, s: ChannelSender): Emit {
  const stageId = o.stage.spec.id;
  return (value, timestamp) => {
    let raw: unknown;
    try {
      raw = selector(value);
    } catch (e) {
      throw new UserFunctionError({ jobId: o.jobId, stageId, operator: name, keyGroup: o.where.keyGroup() }, e);
    }
    // A record without a key cannot be routed: it is a bad record, not a crash.
    if ((typeof raw !== 'string' && typeof raw !== 'number') || raw === '' || (typeof raw === 'number' && !Number.isFinite(raw))) {
      o.deadLetters.publish({ stageId, operator: name, reason: `missing key: ${name} returned ${raw === '' ? 'an empty string' : String(raw)}`, record: value }, o.counters);
      return;
    }
    const key = String(raw);
    o.counters.recordsOut++;
    s.send(keyGroupForKey(key, o.maxParallelism), { key, timestamp, value });
  };
}

/**
 * A broadcast operator: the record goes to every key group of the target stage, in-band on the
 * usual channels, so barriers, alignment, moves and recovery treat it like any record. It costs
 * maxParallelism copies per record: meant for rules and configuration, not for data.
 */
function broadcast(o: StageOutputOptions, s: ChannelSender): Emit {
  return (value, timestamp) => {
    o.counters.recordsOut++;
    const record = { key: '', timestamp, value };
    for (let kg = 0; kg < o.maxParallelism; kg++) s.send(kg, record);
  };
}
