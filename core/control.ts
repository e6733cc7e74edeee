// Control-plane message types (mirroring proto/eddy/v1/control.proto) and their codecs.
import { controlCodec } from './proto.ts';
import { parseWorkerId, type WorkerId } from './ids.ts';
import { excerpt } from './errors.ts';
import { subjects } from './subjects.ts';
import type { Logger } from './logger.ts';

/**
 * A control message that claims to come from someone it cannot come from: another worker's id,
 * a worker not assigned what it reports on, an epoch that is not the job's. Logged and dropped;
 * never acted upon (README, "Security").
 */
export class ForgedMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForgedMessageError';
  }
}

/** Logs a control message that was dropped: forged ones as such, for operators to notice. */
export function logRejected(logger: Logger, e: unknown, what: string): void {
  if (e instanceof ForgedMessageError) logger.warn({ what, err: e.message }, 'forged control message rejected');
  else logger.warn({ err: e instanceof Error ? e.message : String(e) }, `bad ${what} ignored`);
}

/**
 * The worker a message from `eddy.ctl.from.<worker>.<kind>` comes from, checked against the id
 * its body claims: with per-worker NATS credentials only that worker can publish there.
 */
export function checkSender(subject: string, claimed: string): WorkerId {
  const sender = subjects.senderOf(subject);
  if (sender === undefined || sender !== claimed) throw new ForgedMessageError(`a message on ${excerpt(subject)} claims to come from worker ${excerpt(claimed)}`);
  return parseWorkerId(claimed);
}

export interface StageCounters {
  stageId: string;
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
  /** Milliseconds the stage's channel senders on the worker waited with full windows, summed. */
  backpressureMs: number;
  /** Channel senders of the stage on the worker (what backpressureMs is summed over). */
  senders: number;
}
/** Counters of a worker's stages at one checkpoint cut (cumulative since its runtime started). */
export interface CutCounters { checkpointId: number; stages: StageCounters[] }
export interface JobCounters {
  jobId: string;
  /** Since the job's runtime on the worker started. */
  stages: StageCounters[];
  /** The runtime's epoch. @default 0 (unknown: counted as the job's current epoch) */
  epoch?: number;
  /** The counters at each checkpoint the runtime cut since the last it knows completed (that one included). */
  cuts?: CutCounters[];
}
export interface Register { workerId: string; pid: number; host: string }
export interface RegisterReply { heartbeatIntervalMs: number }
export interface Heartbeat {
  workerId: string;
  sentAtUnixMs: number;
  jobs: JobCounters[];
  runningJobs: string[];
  stateBytes: number;
  /** Resident set size of the worker process (0 from a worker that does not report it). */
  rssBytes?: number;
  /** CPU used since the previous heartbeat, in cores (0 from a worker that does not report it). */
  cpuCores?: number;
}
export interface ControlKeyGroupRange { start: number; end: number }
export interface SourcePosition {
  split: number;
  nextSequence: number;
  /** The largest event time read before the barrier, when the split has read one (watermarks restart from it). */
  maxEventTimeMs?: number;
  hasMaxEventTime?: boolean;
}
export interface RestoreFrom { metadataKey: string; checkpointId: number }
export interface DeployTasks {
  jobId: string;
  manifestJson: string;
  bundleSha256: string;
  bundleKey: string;
  epoch: number;
  keyGroups: ControlKeyGroupRange[];
  sourceSplits: number[];
  workers: string[];
  restore: RestoreFrom | null;
  startPositions: SourcePosition[];
  checkpointIntervalMs: number;
}
export interface TriggerCheckpoint {
  jobId: string;
  checkpointId: number;
  epoch: number;
  /** Key groups whose owner also uploads a full snapshot of them at this checkpoint. */
  rematerializeKeyGroups: number[];
}
export interface SectionRef { keyGroup: number; offset: number; length: number; crc32: number }
export interface DeltaRef { stageId: string; key: string; sections: SectionRef[] }
export interface CheckpointPart {
  checkpointId: number;
  deltas: DeltaRef[];
  outputKey: string;
  outputCount: number;
  /** Snapshots of key groups at checkpointId (one object per stage): each replaces its key group's chain. */
  bases: DeltaRef[];
  /** Files-sink part files staged for this checkpoint: committed to their final keys once it completes. */
  files?: FileCommit[];
  /** What the worker's stages counted between its previous cut and this one (added to the checkpoint's totals). */
  counters?: StageCounters[];
}
export interface FileCommit { stagedKey: string; finalKey: string; records: number }
export interface CheckpointAck { jobId: string; checkpointId: number; epoch: number; workerId: string; sources: SourcePosition[]; parts: CheckpointPart[]; error: string }
export interface CheckpointComplete { jobId: string; checkpointId: number; epoch: number; sources: SourcePosition[] }
export interface MoveTasks {
  jobId: string;
  epoch: number;
  checkpointId: number;
  keyGroups: ControlKeyGroupRange[];
  sourceSplits: number[];
  workers: string[];
  movedSplits: number[];
  splitSenders: string[];
  previousWorkers: string[];
  previousSplitSenders: string[];
}
export interface Leave { workerId: string }
export interface CancelTasks { jobId: string }
export interface StartTasks { jobId: string }
export interface Ack { ok: boolean; error: string }
export interface TaskFailure { jobId: string; workerId: string; stageId: string; keyGroup: number; message: string; stack: string; atUnixMs: number; userCode: boolean; epoch: number }
export interface QueryRequest { feature: string; entityIds: string[]; view: number; epoch: number; asOfUnixMs: number; hasAsOf: boolean }
export interface QueryValue { entityId: string; found: boolean; valueJson: string; eventTimeUnixMs: number; hasEventTime: boolean; uncommitted: boolean; beyondRetention: boolean }
export interface QueryReply {
  values: QueryValue[];
  error: string;
  checkpointId: number;
  /** The answering worker and its assignment epoch, checked by the router against the key group's owner. */
  workerId?: string;
  epoch?: number;
}

export interface WatchRegister { watchId: string; feature: string; entityIds: string[]; leaseMs: number; inbox: string }
export interface WatchEvent { watchId: string; epoch: number; checkpointId: number; initial: boolean; values: QueryValue[]; keyGroup: number }

export const codecs = {
  register: controlCodec<Register>('Register'),
  registerReply: controlCodec<RegisterReply>('RegisterReply'),
  heartbeat: controlCodec<Heartbeat>('Heartbeat'),
  deploy: controlCodec<DeployTasks>('DeployTasks'),
  cancel: controlCodec<CancelTasks>('CancelTasks'),
  start: controlCodec<StartTasks>('StartTasks'),
  trigger: controlCodec<TriggerCheckpoint>('TriggerCheckpoint'),
  checkpointAck: controlCodec<CheckpointAck>('CheckpointAck'),
  complete: controlCodec<CheckpointComplete>('CheckpointComplete'),
  move: controlCodec<MoveTasks>('MoveTasks'),
  leave: controlCodec<Leave>('Leave'),
  ack: controlCodec<Ack>('Ack'),
  failure: controlCodec<TaskFailure>('TaskFailure'),
  queryRequest: controlCodec<QueryRequest>('QueryRequest'),
  queryReply: controlCodec<QueryReply>('QueryReply'),
  watchRegister: controlCodec<WatchRegister>('WatchRegister'),
  watchEvent: controlCodec<WatchEvent>('WatchEvent'),
} as const;
