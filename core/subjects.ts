// Every NATS subject Eddy uses, in one place. Tokens are validated ids (core/ids.ts).
import type { JobId, StageId, WorkerId } from './ids.ts';

/**
 * Messages a worker sends the coordinator. A worker that got SIGTERM asks for its work to be
 * handed over (leave, a request) and says it is gone once it has (deregister); checkpoint-request
 * asks for an early checkpoint when its overlay passed its memory bound.
 */
export type WorkerMessageKind = 'register' | 'heartbeat' | 'failure' | 'checkpoint-ack' | 'checkpoint-request' | 'leave' | 'deregister';

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
  /**
   * Where a watch's events go (the coordinator's subscription; workers publish to it). Not an
   * _INBOX subject: workers may not publish into the coordinator's inboxes (README, "Security").
   */
  watchEvents: (watchId: string) => `eddy.wev.${watchId}`,
  /**
   * What a worker tells the coordinator: `eddy.ctl.from.<worker>.<kind>`. The sender is in the
   * subject: the coordinator subscribes with a wildcard and drops a message whose body names
   * another worker, so per-worker NATS credentials (publish eddy.ctl.from.<id>.> only) bind every
   * control message to the worker that sent it.
   */
  fromWorker: (worker: WorkerId | string, kind: WorkerMessageKind) => `eddy.ctl.from.${worker}.${kind}`,
  /** The coordinator's subscription to one kind of worker message, from any worker. */
  fromAnyWorker: (kind: WorkerMessageKind) => `eddy.ctl.from.*.${kind}`,
  /** The sending worker of a fromWorker subject (its fourth token), or undefined. */
  senderOf: (subject: string): string | undefined => {
    const parts = subject.split('.');
    return parts.length === 5 && parts[0] === 'eddy' && parts[1] === 'ctl' && parts[2] === 'from' ? parts[3] : undefined;
  },
  move: (worker: WorkerId) => `eddy.ctl.worker.${worker}.move`,
  trigger: (worker: WorkerId) => `eddy.ctl.worker.${worker}.checkpoint`,
  complete: (worker: WorkerId) => `eddy.ctl.worker.${worker}.complete`,
  deploy: (worker: WorkerId) => `eddy.ctl.worker.${worker}.deploy`,
  /** Liveness probe of a silent worker: answered at once, with nothing (coordinator/worker-registry.ts). */
  ping: (worker: WorkerId) => `eddy.ctl.worker.${worker}.ping`,
  start: (worker: WorkerId) => `eddy.ctl.worker.${worker}.start`,
  cancel: (worker: WorkerId) => `eddy.ctl.worker.${worker}.cancel`,
  /** A source split: subject partition <stream>.<p>. */
  sourcePartition: (stream: string, partition: number) => `${stream}.${partition}`,
} as const;

/**
 * Names of channel senders (record-batch headers). They carry the epoch, so a receiver fences off
 * batches of an earlier epoch; a split that changed owner at checkpoint N sends under a new name,
 * so its old reader's last barrier and its new reader's first batch never share a sequence.
 */
export const senderNames = {
  split: (partition: number, epoch: number, movedAt = 0) => `split${partition}@e${epoch}${movedAt > 0 ? `m${movedAt}` : ''}`,
  stage: (stage: string, worker: string, epoch: number) => `${stage}@${worker}@e${epoch}`,
  /**
   * The sender of a task's k-th edge (its stage's k-th keyBy or broadcast operator): each edge has
   * its own channels and ack subject. Edge 0 keeps the task's name.
   */
  edge: (task: string, edge: number) => (edge === 0 ? task : `${task}~${edge}`),
  /**
   * What a sender name says: the split (source stage) or stage (keyed stage) that sends, and the
   * edge. Stage and worker ids have no '@' or '~' (core/ids.ts), so this is unambiguous.
   */
  parse: (sender: string): { split: number; stage?: undefined; edge: number } | { split?: undefined; stage: string; edge: number } | undefined => {
    const m = /^(?:split(\d+)@e\d+(?:m\d+)?|([^@~]+)@[^@~]+@e\d+)(?:~(\d+))?$/.exec(sender);
    if (!m) return undefined;
    const edge = m[3] === undefined ? 0 : Number(m[3]);
    return m[1] !== undefined ? { split: Number(m[1]), edge } : { stage: m[2]!, edge };
  },
} as const;

/** The JetStream stream that keeps every job's dead letters. */
export const DEAD_LETTER_STREAM = 'EDDY_DLQ';
