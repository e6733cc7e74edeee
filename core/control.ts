// Control-plane message types (mirroring proto/eddy/v1/control.proto) and their codecs.
import { controlCodec } from './proto.ts';

export interface StageCounters { stageId: string; recordsIn: number; recordsOut: number; deadLetters: number }
export interface JobCounters { jobId: string; stages: StageCounters[] }
export interface Register { workerId: string; pid: number; host: string }
export interface RegisterReply { heartbeatIntervalMs: number }
export interface Heartbeat { workerId: string; sentAtUnixMs: number; jobs: JobCounters[]; runningJobs: string[] }
export interface ControlKeyGroupRange { start: number; end: number }
export interface DeployTasks {
  jobId: string;
  manifestJson: string;
  bundleSha256: string;
  bundleKey: string;
  epoch: number;
  keyGroups: ControlKeyGroupRange[];
  sourceSplits: number[];
}
export interface CancelTasks { jobId: string }
export interface StartTasks { jobId: string }
export interface Ack { ok: boolean; error: string }
export interface TaskFailure { jobId: string; workerId: string; stageId: string; keyGroup: number; message: string; stack: string; atUnixMs: number }
export interface QueryRequest { feature: string; entityIds: string[]; view: number; epoch: number }
export interface QueryValue { entityId: string; found: boolean; valueJson: string }
export interface QueryReply { values: QueryValue[]; error: string }

export const codecs = {
  register: controlCodec<Register>('Register'),
  registerReply: controlCodec<RegisterReply>('RegisterReply'),
  heartbeat: controlCodec<Heartbeat>('Heartbeat'),
  deploy: controlCodec<DeployTasks>('DeployTasks'),
  cancel: controlCodec<CancelTasks>('CancelTasks'),
  start: controlCodec<StartTasks>('StartTasks'),
  ack: controlCodec<Ack>('Ack'),
  failure: controlCodec<TaskFailure>('TaskFailure'),
  queryRequest: controlCodec<QueryRequest>('QueryRequest'),
  queryReply: controlCodec<QueryReply>('QueryReply'),
} as const;
