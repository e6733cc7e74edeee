// Every NATS subject Eddy uses, in one place. Tokens are validated ids (core/ids.ts).
import type { JobId, StageId, WorkerId } from './ids.ts';

export const subjects = {
  /** Keyed shuffle: record batches for one key group of one stage. Its owner is subscribed. */
  channel: (job: JobId, stage: StageId, keyGroup: number) => `eddy.${job}.${stage}.${keyGroup}`,
  /** Acknowledgements of channel batches, back to the sending task. */
  channelAck: (job: JobId, senderTask: string) => `eddy.ack.${job}.${senderTask}`,
  /** Feature queries, answered by the owner of the key group. */
  query: (job: JobId, keyGroup: number) => `eddy.q.${job}.${keyGroup}`,
  /** Feature watches: interest registered with (and renewed at) the owner of the key group. */
  watch: (job: JobId, keyGroup: number) => `eddy.w.${job}.${keyGroup}`,
  /** Dead letters of a job: malformed or failing records, with the reason in headers. */
  deadLetter: (job: JobId) => `eddy.dlq.${job}`,
  deadLetterAll: 'eddy.dlq.>',
  register: 'eddy.ctl.register',
  heartbeat: 'eddy.ctl.heartbeat',
  failure: 'eddy.ctl.failure',
  checkpointAck: 'eddy.ctl.checkpoint.ack',
  /** A worker whose overlay passed its memory bound asks for an early checkpoint. */
  checkpointRequest: 'eddy.ctl.checkpoint.request',
  trigger: (worker: WorkerId) => `eddy.ctl.worker.${worker}.checkpoint`,
  complete: (worker: WorkerId) => `eddy.ctl.worker.${worker}.complete`,
  deploy: (worker: WorkerId) => `eddy.ctl.worker.${worker}.deploy`,
  start: (worker: WorkerId) => `eddy.ctl.worker.${worker}.start`,
  cancel: (worker: WorkerId) => `eddy.ctl.worker.${worker}.cancel`,
  /** A source split: subject partition <stream>.<p>. */
  sourcePartition: (stream: string, partition: number) => `${stream}.${partition}`,
} as const;

/** The JetStream stream that keeps every job's dead letters. */
export const DEAD_LETTER_STREAM = 'EDDY_DLQ';
