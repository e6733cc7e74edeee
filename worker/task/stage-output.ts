// What a stage does with the records its operators produce. A stage's operators form a tree
// (core/manifest.ts): each takes the output (or a side output) of an earlier one, and ends in
// sinks, or in a keyBy or broadcast operator that sends to a keyed stage through a channel
// sender of its own. This compiles the tree into nested emit functions, once per task.
//
// An asyncMap in the tree (worker/task/async-operator.ts) emits later than it is called. Barriers and
// watermarks (markers) therefore travel the same tree: a marker passes a synchronous operator at
// once and an asyncMap once every record before it has left it, and is forwarded on an edge (or
// cut at a sink) when it reaches it. A branch without an asyncMap gets the marker synchronously,
// so a tree without one behaves exactly as before: no promise, no per-record cost.
//
// The pieces: the edges that leave the stage (edge-output.ts), a record's all-or-nothing output
// (held-output.ts), markers through the tree (stage-markers.ts), the chained operators
// (operator-chain.ts) and asyncMap (async-operator.ts).
import type { NatsConnection } from '@nats-io/transport-node';
import type { StagePlan } from '../../sdk/plan.ts';
import { parseStageId, type JobId } from '../../core/ids.ts';
import { senderNames } from '../../core/subjects.ts';
import { UserFunctionError, ensureError, type ChannelBrokenError } from '../../core/errors.ts';
import { ChannelSender, type BatchSigner } from '../channel/index.ts';
import { compileChain, type ChainWhere, type Emit } from './operator-chain.ts';
import { AsyncOperator } from './async-operator.ts';
import { MAX_PENDING_SINK_WRITES, openSinks, type CheckpointOutput, type Sink } from '../sink/index.ts';
import type { DeadLetters } from './dead-letters.ts';
import type { StageCounters } from './stage-counters.ts';
import type { CompiledWorkerOptions } from '../options.ts';
import type { ThrottledLog } from '../../core/throttled-log.ts';
import type { ErrorPolicy } from './error-policy.ts';
import { broadcastEdge, combinedSender, keyByEdge, type EdgeContext, type OutputSender } from './edge-output.ts';
import { commitSink, HeldOutput, pushAsync } from './held-output.ts';
import { nodesAfter, StageMarkers, type MarkerNode } from './stage-markers.ts';

export type { OutputSender } from './edge-output.ts';

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
  /** The task's dead letters: the same object its task publishes to, taken at each barrier. */
  deadLetters: DeadLetters;
  where: ChainWhere;
  worker: CompiledWorkerOptions;
  onBroken(error: ChannelBrokenError): void;
  /** Records the size of each batch sent to a stage (metrics). @default none */
  recordBatchSize?(toStage: string): (records: number) => void;
  /** What happens to a record whose user function throws after an asyncMap: the task's own policy. */
  errorPolicy: ErrorPolicy;
  /**
   * A failure outside the task's own processing: an asyncMap's last attempt failed under
   * onFailure "fail", or an operator after it threw under the "fail" policy. @default rethrown
   * from the completion (an unhandled rejection): give it whenever the stage has an asyncMap
   */
  onFailure?(error: Error): void;
  /** Signs the stage's outgoing batches (worker/channel/batch-signing.ts). @default unsigned */
  signer?: BatchSigner;
  /** Where forged acknowledgements are counted and logged (throttled). @default counted only */
  rejections?: ThrottledLog;
}

export interface StageOutput {
  /**
   * A source stage: takes a source record into the operator tree. A keyed stage: takes what
   * the process operator emits. Throws UserFunctionError.
   */
  emit: Emit;
  /** The process operator's side output `tag`, with its event time (-1: none); none declared downstream: dropped. */
  emitSide(tag: string, value: unknown, timestamp: number): void;
  /** Null when the stage sends to no other stage. */
  sender: OutputSender | null;
  sinks: Sink[];
  /** Resolves when sink output so far is durable. */
  flushSinks(): Promise<void>;
  /**
   * Cheap per-batch check: throws a sink's asynchronous failure, and waits for the sinks only
   * when too many writes are unconfirmed (bounded memory, no per-batch round trip), or while an
   * asyncMap of the stage is at capacity.
   */
  checkSinks(): Promise<void> | undefined;
  /**
   * Barrier N: forwards it on every edge after every record emitted before it (past an asyncMap,
   * once those have left it; synchronously otherwise) and returns the exactly-once output written
   * before it, dead letters included: checkpoint N's output.
   */
  barrier(checkpointId: number): CheckpointOutput[] | Promise<CheckpointOutput[]>;
  /** Forwards a watermark (or idleness) on every edge, after every record emitted before it. */
  watermark(watermarkMs: number, idle: boolean): void;
  /** Resolves once no record is inside an asyncMap of the stage (at once without one). */
  settled(): Promise<void>;
  /**
   * Runs `run` (which emits one record's output) all-or-nothing: what reaches the stage's sinks,
   * channels and asyncMaps is held (sinks encode it at once, so an encoding error throws here)
   * and written only when run returns; when run throws, nothing is written and the error is
   * rethrown (a sink's as a UserFunctionError naming the sink). Nested calls join the outer one.
   */
  atomically(run: () => void): void;
  /**
   * The source position (core/record-origin.ts) of the record whose output is emitted next: it
   * travels with every record sent to another stage. The task sets it before each record (-1:
   * none, e.g. a timer's output).
   */
  setOrigin(origin: number): void;
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
  // Part names of files sinks: the stage and the task (worker, or the split for a source).
  const task = `${spec.id}-${spec.kind === 'source' ? o.senderTask.split('@')[0]! : o.worker.workerId}`;
  const sinks = openSinks(o.nc, spec.sinks, task);
  const senders: ChannelSender[] = [];
  /** The channel sender of each keyBy/broadcast operator, by operator index. */
  const senderOf = new Map<number, ChannelSender>();
  /** The asyncMap of each asyncMap operator, by operator index. */
  const asyncOf = new Map<number, AsyncOperator>();
  const onFailure = (e: Error): void => {
    if (o.onFailure) o.onFailure(e);
    else throw e;
  };
  const policy = o.errorPolicy;
  /** A record's writes while it runs atomically (held-output.ts). */
  const held = new HeldOutput();
  const edges: EdgeContext = { jobId: o.jobId, stageId: spec.id, maxParallelism: o.maxParallelism, counters: o.counters, deadLetters: o.deadLetters, where: o.where };
  /** The origin of the record being emitted (setOrigin). */
  let origin = -1;
  const originOf = (): number => origin;
  const sinkName = (i: number): string => {
    const s = spec.sinks[i]!;
    return `${s.kind} sink ${'subject' in s ? s.subject : 'path' in s ? s.path : 'subjectPrefix' in s ? s.subjectPrefix : i}`;
  };
  const writeSink = (i: number): Emit => {
    const sink = sinks[i]!;
    return (value, ts) => {
      const list = held.list;
      if (list === undefined) return sink.write(value, ts >= 0 ? ts : undefined);
      let prepared: unknown;
      try {
        prepared = sink.prepare(value, ts >= 0 ? ts : undefined);
      } catch (e) {
        throw new UserFunctionError({ jobId: o.jobId, stageId: spec.id, operator: sinkName(i), keyGroup: o.where.keyGroup() }, e);
      }
      list.push(commitSink, sink, prepared, undefined);
    };
  };
  const atomically = (run: () => void): void => held.atomically(run);
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
      if (s.input === from && s.sideOutput === side) out.push(side === undefined ? countOut(writeSink(i)) : writeSink(i));
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
        watermarkLingerMs: o.worker.watermarkLingerMs,
        channelWindow: o.worker.channelWindow,
        ackTimeoutMs: o.worker.ackTimeoutMs,
        onBroken: o.onBroken,
        ...(o.recordBatchSize !== undefined && { recordBatchSize: o.recordBatchSize(to.stage) }),
        ...(o.signer !== undefined && { signer: o.signer }),
        ...(o.rejections !== undefined && { rejections: o.rejections }),
      });
      senders.push(s);
      senderOf.set(j, s);
      o.counters.senders.push(s);
      entries[j] = op.kind === 'keyBy' ? keyByEdge(edges, impl.name, impl.fn as (v: unknown) => unknown, s, held, originOf) : broadcastEdge(edges, s, held, originOf);
      continue;
    }
    if (op.kind === 'asyncMap') {
      if (impl.async === undefined) throw new TypeError(`asyncMap ${op.name} has no options`);
      // Its results are records of their own: all-or-nothing like a record from the input.
      const next = fanOut(targetsOf(j, undefined));
      // Its results come out later, while another record runs: each carries its own record's origin.
      const after = (v: unknown, ts: number, from: number): void => {
        const saved = origin;
        origin = from;
        try {
          next(v, ts);
        } finally {
          origin = saved;
        }
      };
      const operator = new AsyncOperator(op.name, impl.fn as never, impl.async, policy.atomicRecords ? (v, ts, from) => atomically(() => after(v, ts, from)) : after, {
        jobId: o.jobId,
        stageId: spec.id,
        keyGroup: o.where.keyGroup,
        origin: originOf,
        onError: (e, record, keyGroup) => {
          if (!(e instanceof UserFunctionError) || !policy.atomicRecords) return onFailure(e);
          policy.deadLetter(e, record, keyGroup);
        },
        fail: (e) => onFailure(e),
        deadLetter: (e, record) => policy.deadLetter(e, record, e.keyGroup),
      });
      asyncOf.set(j, operator);
      entries[j] = (v, ts) => {
        const list = held.list;
        if (list === undefined) operator.push(v, ts);
        else list.push(pushAsync, operator, v, ts);
      };
      continue;
    }
    entries[j] = compileChain([impl], fanOut(targetsOf(j, undefined)), o.where);
  }
  const rootFrom = spec.kind === 'keyed' ? 0 : undefined;
  const roots: MarkerNode[] = nodesAfter(spec, rootFrom, undefined);
  const sideTargets = new Map<string, Emit>();
  if (spec.kind === 'keyed') {
    const tags = new Set([...spec.operators.map((op) => op.sideOutput), ...spec.sinks.map((s) => s.sideOutput)]);
    for (const tag of tags) {
      if (tag === undefined) continue;
      sideTargets.set(tag, fanOut(targetsOf(0, tag)));
      roots.push(...nodesAfter(spec, 0, tag));
    }
  }
  const asyncs = [...asyncOf.values()];
  const markers = new StageMarkers(spec, roots, sinks, senderOf, asyncOf, o.deadLetters);
  const sender: OutputSender | null = combinedSender(senders);
  return {
    emit: fanOut(targetsOf(spec.kind === 'keyed' ? 0 : undefined, undefined)),
    emitSide: (tag, value, timestamp) => sideTargets.get(tag)?.(value, timestamp),
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
      const full = asyncs.find((a) => a.full);
      if (full !== undefined) return full.whenReady();
      return undefined;
    },
    barrier: (checkpointId) => {
      if (asyncs.length === 0) return markers.cut(checkpointId, () => undefined);
      return new Promise((resolve, reject) => {
        try {
          markers.cut(checkpointId, resolve);
        } catch (e) {
          reject(ensureError(e));
        }
      });
    },
    watermark: (watermarkMs, idle) => markers.send((s) => s.sendWatermark(watermarkMs, idle), () => undefined, () => undefined),
    atomically,
    setOrigin: (o) => {
      origin = o;
    },
    settled: () => (asyncs.length === 0 ? Promise.resolve() : new Promise<void>((resolve) => markers.send(() => undefined, () => undefined, resolve))),
    close: async () => {
      for (const a of asyncs) a.close();
      for (const s of senders) await s.close();
      // Let confirmations of what was written arrive before the inbox goes away.
      await Promise.all(sinks.map((x) => x.flush().catch(() => undefined)));
      for (const sink of sinks) sink.close();
    },
  };
}
