// Control-plane messages between the coordinator and workers over NATS, and their codecs. The
// types are generated from proto/eddy/control/v1/control.proto (`npm run proto:gen`, with 64-bit integers
// as numbers, as the codecs decode them): the .proto is the one source of truth. A decoded message
// has every field (proto3 defaults filled in), which is the `__Output` shape exported here; a
// codec's encode takes the generated input shape, where any field may be left out.
import { headers as natsHeaders, type Msg, type MsgHdrs } from '@nats-io/transport-node';
import { controlCodec } from './proto.ts';
import { parseWorkerId, type WorkerId } from './ids.ts';
import { excerpt } from './errors.ts';
import { subjects } from './subjects.ts';
import type { Logger } from './logger.ts';
import { ThrottledLog } from './throttled-log.ts';
import type { Register as RegisterInput } from '../proto/gen/eddy/control/v1/Register.ts';
import type { RegisterReply as RegisterReplyInput } from '../proto/gen/eddy/control/v1/RegisterReply.ts';
import type { Heartbeat as HeartbeatInput } from '../proto/gen/eddy/control/v1/Heartbeat.ts';
import type { DeployTasks as DeployTasksInput } from '../proto/gen/eddy/control/v1/DeployTasks.ts';
import type { CancelTasks as CancelTasksInput } from '../proto/gen/eddy/control/v1/CancelTasks.ts';
import type { StartTasks as StartTasksInput } from '../proto/gen/eddy/control/v1/StartTasks.ts';
import type { TriggerCheckpoint as TriggerCheckpointInput } from '../proto/gen/eddy/control/v1/TriggerCheckpoint.ts';
import type { CheckpointAck as CheckpointAckInput } from '../proto/gen/eddy/control/v1/CheckpointAck.ts';
import type { CheckpointComplete as CheckpointCompleteInput } from '../proto/gen/eddy/control/v1/CheckpointComplete.ts';
import type { MoveTasks as MoveTasksInput } from '../proto/gen/eddy/control/v1/MoveTasks.ts';
import type { Leave as LeaveInput } from '../proto/gen/eddy/control/v1/Leave.ts';
import type { Ack as AckInput } from '../proto/gen/eddy/control/v1/Ack.ts';
import type { TaskFailure as TaskFailureInput } from '../proto/gen/eddy/control/v1/TaskFailure.ts';
import type { QueryRequest as QueryRequestInput } from '../proto/gen/eddy/control/v1/QueryRequest.ts';
import type { QueryReply as QueryReplyInput } from '../proto/gen/eddy/control/v1/QueryReply.ts';
import type { WatchRegister as WatchRegisterInput } from '../proto/gen/eddy/control/v1/WatchRegister.ts';
import type { WatchEvent as WatchEventInput } from '../proto/gen/eddy/control/v1/WatchEvent.ts';
import type { StageCounters__Output as StageCountersMessage } from '../proto/gen/eddy/control/v1/StageCounters.ts';
import type { CutCounters__Output as CutCountersMessage } from '../proto/gen/eddy/control/v1/CutCounters.ts';
import type { JobCounters__Output as JobCountersMessage } from '../proto/gen/eddy/control/v1/JobCounters.ts';
import type { Register__Output as RegisterMessage } from '../proto/gen/eddy/control/v1/Register.ts';
import type { RegisterReply__Output as RegisterReplyMessage } from '../proto/gen/eddy/control/v1/RegisterReply.ts';
import type { Heartbeat__Output as HeartbeatMessage } from '../proto/gen/eddy/control/v1/Heartbeat.ts';
import type { KeyGroupRange__Output as ControlKeyGroupRangeMessage } from '../proto/gen/eddy/control/v1/KeyGroupRange.ts';
import type { SourcePosition__Output as SourcePositionMessage } from '../proto/gen/eddy/control/v1/SourcePosition.ts';
import type { RestoreFrom__Output as RestoreFromMessage } from '../proto/gen/eddy/control/v1/RestoreFrom.ts';
import type { DeployTasks__Output as DeployTasksMessage } from '../proto/gen/eddy/control/v1/DeployTasks.ts';
import type { TriggerCheckpoint__Output as TriggerCheckpointMessage } from '../proto/gen/eddy/control/v1/TriggerCheckpoint.ts';
import type { SectionRef__Output as SectionRefMessage } from '../proto/gen/eddy/control/v1/SectionRef.ts';
import type { DeltaRef__Output as DeltaRefMessage } from '../proto/gen/eddy/control/v1/DeltaRef.ts';
import type { CheckpointPart__Output as CheckpointPartMessage } from '../proto/gen/eddy/control/v1/CheckpointPart.ts';
import type { FileCommit__Output as FileCommitMessage } from '../proto/gen/eddy/control/v1/FileCommit.ts';
import type { CheckpointAck__Output as CheckpointAckMessage } from '../proto/gen/eddy/control/v1/CheckpointAck.ts';
import type { CheckpointComplete__Output as CheckpointCompleteMessage } from '../proto/gen/eddy/control/v1/CheckpointComplete.ts';
import type { MoveTasks__Output as MoveTasksMessage } from '../proto/gen/eddy/control/v1/MoveTasks.ts';
import type { Leave__Output as LeaveMessage } from '../proto/gen/eddy/control/v1/Leave.ts';
import type { CancelTasks__Output as CancelTasksMessage } from '../proto/gen/eddy/control/v1/CancelTasks.ts';
import type { StartTasks__Output as StartTasksMessage } from '../proto/gen/eddy/control/v1/StartTasks.ts';
import type { Ack__Output as AckMessage } from '../proto/gen/eddy/control/v1/Ack.ts';
import type { TaskFailure__Output as TaskFailureMessage } from '../proto/gen/eddy/control/v1/TaskFailure.ts';
import type { QueryRequest__Output as QueryRequestMessage } from '../proto/gen/eddy/control/v1/QueryRequest.ts';
import type { QueryValue__Output as QueryValueMessage } from '../proto/gen/eddy/control/v1/QueryValue.ts';
import type { QueryReply__Output as QueryReplyMessage } from '../proto/gen/eddy/control/v1/QueryReply.ts';
import type { WatchRegister__Output as WatchRegisterMessage } from '../proto/gen/eddy/control/v1/WatchRegister.ts';
import type { WatchEvent__Output as WatchEventMessage } from '../proto/gen/eddy/control/v1/WatchEvent.ts';
import type { SkippedRecord__Output as SkippedRecordMessage } from '../proto/gen/eddy/control/v1/SkippedRecord.ts';

/**
 * Fields added to a message after it was first used: decoding fills them in, code that builds the
 * message in memory (tests, restored metadata, replies of older paths) may leave them out.
 */
type WithOptional<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

export type StageCounters = StageCountersMessage;
/** Counters of a worker's stages at one checkpoint cut (cumulative since its runtime started). */
export type CutCounters = CutCountersMessage;
export type JobCounters = WithOptional<JobCountersMessage, 'epoch' | 'cuts'>;
export type Register = WithOptional<RegisterMessage, 'channelPublicKey' | 'servingAddress'>;
export type RegisterReply = RegisterReplyMessage;
export type Heartbeat = WithOptional<HeartbeatMessage, 'channelPublicKey' | 'servingAddress'>;
export type ControlKeyGroupRange = ControlKeyGroupRangeMessage;
export type SourcePosition = WithOptional<SourcePositionMessage, 'maxEventTimeMs' | 'hasMaxEventTime'>;
export type RestoreFrom = RestoreFromMessage;
export type DeployTasks = WithOptional<DeployTasksMessage, 'skippedRecords' | 'sealedChannelKey'> & {
  /** The opened channel key (core/channel-key.ts): set by the worker that opened it, never on the wire. */
  channelKey?: Uint8Array;
};
/** A poison record every worker of the job skips (DeployTasks.skipped_records). */
export type SkippedRecord = SkippedRecordMessage;
export type TriggerCheckpoint = TriggerCheckpointMessage;
export type SectionRef = SectionRefMessage;
export type DeltaRef = DeltaRefMessage;
export type CheckpointPart = WithOptional<CheckpointPartMessage, 'counters'>;
export type FileCommit = FileCommitMessage;
export type CheckpointAck = Omit<CheckpointAckMessage, 'sources' | 'parts'> & { sources: SourcePosition[]; parts: CheckpointPart[] };
export type CheckpointComplete = CheckpointCompleteMessage;
export type MoveTasks = MoveTasksMessage;
export type Leave = LeaveMessage;
export type CancelTasks = CancelTasksMessage;
export type StartTasks = StartTasksMessage;
export type Ack = AckMessage;
export type TaskFailure = WithOptional<TaskFailureMessage, 'hasSourcePosition' | 'split' | 'sequence'>;
export type QueryRequest = QueryRequestMessage;
export type QueryValue = WithOptional<QueryValueMessage, 'feature'>;
export type QueryReply = WithOptional<QueryReplyMessage, 'workerId' | 'epoch' | 'unavailableKeyGroups' | 'unavailableReason'>;
export type WatchRegister = WatchRegisterMessage;
export type WatchEvent = WatchEventMessage;

export const codecs = {
  register: controlCodec<RegisterInput, Register>('Register'),
  registerReply: controlCodec<RegisterReplyInput, RegisterReply>('RegisterReply'),
  heartbeat: controlCodec<HeartbeatInput, Heartbeat>('Heartbeat'),
  deploy: controlCodec<DeployTasksInput, DeployTasks>('DeployTasks'),
  cancel: controlCodec<CancelTasksInput, CancelTasks>('CancelTasks'),
  start: controlCodec<StartTasksInput, StartTasks>('StartTasks'),
  trigger: controlCodec<TriggerCheckpointInput, TriggerCheckpoint>('TriggerCheckpoint'),
  checkpointAck: controlCodec<CheckpointAckInput, CheckpointAck>('CheckpointAck'),
  complete: controlCodec<CheckpointCompleteInput, CheckpointComplete>('CheckpointComplete'),
  move: controlCodec<MoveTasksInput, MoveTasks>('MoveTasks'),
  leave: controlCodec<LeaveInput, Leave>('Leave'),
  ack: controlCodec<AckInput, Ack>('Ack'),
  failure: controlCodec<TaskFailureInput, TaskFailure>('TaskFailure'),
  queryRequest: controlCodec<QueryRequestInput, QueryRequest>('QueryRequest'),
  queryReply: controlCodec<QueryReplyInput, QueryReply>('QueryReply'),
  watchRegister: controlCodec<WatchRegisterInput, WatchRegister>('WatchRegister'),
  watchEvent: controlCodec<WatchEventInput, WatchEvent>('WatchEvent'),
} as const;

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

/** Forged control messages logged at once per kind and interval; the rest are counted (core/throttled-log.ts). */
const REJECTION_BURST = 5;
const throttles = new WeakMap<Logger, ThrottledLog>();

/**
 * Logs a control message that was dropped: forged ones as such, for operators to notice, but
 * throttled per kind (`what`), with a count: anybody who may publish there can send a flood.
 */
export function logRejected(logger: Logger, e: unknown, what: string, fields: Record<string, unknown> = {}): void {
  let throttle = throttles.get(logger);
  if (throttle === undefined) throttles.set(logger, (throttle = new ThrottledLog(logger, { burst: REJECTION_BURST })));
  const err = e instanceof Error ? e.message : String(e);
  if (e instanceof ForgedMessageError) throttle.warn(`forged ${what}`, { ...fields, what, err }, 'forged control message rejected');
  else throttle.warn(`bad ${what}`, { ...fields, err }, `bad ${what} ignored`);
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

/**
 * The leader epoch (the coordinator's lease term, coordinator/leader-lease.ts) rides in this header
 * of every coordinator→worker command: a worker refuses a command of an older epoch than it has
 * seen, so a deposed leader that wakes up cannot steer workers its successor took over.
 */
export const LEADER_EPOCH_HEADER = 'Eddy-Leader-Epoch';

export function leaderEpochHeaders(leaderEpoch: number): MsgHdrs {
  const h = natsHeaders();
  h.set(LEADER_EPOCH_HEADER, String(leaderEpoch));
  return h;
}

/** The leader epoch a command carries; 0 when it carries none. */
export function leaderEpochOf(msg: Msg): number {
  const n = Number(msg.headers?.get(LEADER_EPOCH_HEADER) ?? 0);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}
