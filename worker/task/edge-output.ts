// The edges of a stage's operator tree that leave the stage (docs/ARCHITECTURE.md, "Actors, tasks
// and channels"): a keyBy sends each record to its key's key group of the next stage, a broadcast
// to every key group, each through a channel sender of its own; and the stage's senders driven as
// one (barriers and watermarks go on every edge).
import { keyGroupForKey } from '../../core/key-groups.ts';
import { UserFunctionError } from '../../core/errors.ts';
import type { ChannelSender } from '../channel/index.ts';
import type { ChainWhere, Emit } from './operator-chain.ts';
import type { DeadLetter, DeadLetters } from './dead-letters.ts';
import type { StageCounters } from './stage-counters.ts';
import { publishDeadLetter, sendTo, type HeldOutput } from './held-output.ts';
import { keyProblem } from './record-decoding.ts';

/** What an edge needs of its stage's output. */
export interface EdgeContext {
  jobId: string;
  stageId: string;
  maxParallelism: number;
  counters: StageCounters;
  deadLetters: DeadLetters;
  where: ChainWhere;
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

/** A keyBy operator: the record goes to its key's key group of the target stage. */
export function keyByEdge(o: EdgeContext, name: string, selector: (v: unknown) => unknown, s: ChannelSender, held: HeldOutput, originOf: () => number): Emit {
  const stageId = o.stageId;
  return (value, timestamp) => {
    let raw: unknown;
    try {
      raw = selector(value);
    } catch (e) {
      throw new UserFunctionError({ jobId: o.jobId, stageId, operator: name, keyGroup: o.where.keyGroup() }, e);
    }
    // A record without a key cannot be routed: it is a bad record, not a crash.
    const problem = keyProblem(raw);
    const list = held.list;
    if (problem !== undefined) {
      const letter: DeadLetter = { stageId, operator: name, reason: `missing key: ${name} returned ${problem}`, record: value };
      if (list === undefined) o.deadLetters.publish(letter, o.counters);
      else list.push(publishDeadLetter, o, letter, undefined);
      return;
    }
    const key = String(raw);
    o.counters.recordsOut++;
    const record = { key, timestamp, value, origin: originOf() };
    if (list === undefined) s.send(keyGroupForKey(key, o.maxParallelism), record);
    else list.push(sendTo, s, keyGroupForKey(key, o.maxParallelism), record);
  };
}

/**
 * A broadcast operator: the record goes to every key group of the target stage, in-band on the
 * usual channels, so barriers, alignment, moves and recovery treat it like any record. It costs
 * maxParallelism copies per record: meant for rules and configuration, not for data.
 */
export function broadcastEdge(o: EdgeContext, s: ChannelSender, held: HeldOutput, originOf: () => number): Emit {
  return (value, timestamp) => {
    o.counters.recordsOut++;
    const record = { key: '', timestamp, value, origin: originOf() };
    const list = held.list;
    for (let kg = 0; kg < o.maxParallelism; kg++) {
      if (list === undefined) s.send(kg, record);
      else list.push(sendTo, s, kg, record);
    }
  };
}

/** The stage's senders as one (null: the stage sends to no other stage; one sender is itself). */
export function combinedSender(senders: readonly ChannelSender[]): OutputSender | null {
  if (senders.length === 0) return null;
  if (senders.length === 1) return senders[0]!;
  return {
    flush: () => senders.forEach((s) => s.flush()),
    sendBarrier: (id) => senders.forEach((s) => s.sendBarrier(id)),
    sendWatermark: (wm, idle) => senders.forEach((s) => s.sendWatermark(wm, idle)),
    get blocked() {
      return senders.some((s) => s.blocked);
    },
    whenWritable: () => Promise.all(senders.map((s) => s.whenWritable())).then(() => undefined),
    whenDrained: () => Promise.all(senders.map((s) => s.whenDrained())).then(() => undefined),
  };
}
