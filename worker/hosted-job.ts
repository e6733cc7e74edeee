// What the worker's control plane (worker/worker.ts) needs of a job it runs: the JobRuntime
// itself (jobs in the worker's thread) or an IsolatedJob (each job in a thread of its own).
import type { CheckpointComplete, JobCounters, MoveTasks, QueryReply, QueryRequest } from '../core/control.ts';

/**
 * A direct read's outcome (worker/query/query-responder.ts, serve): `response`, the eddy.v2
 * GetFeaturesResponse's bytes, when every id was answered; otherwise the reply says why not (its
 * error, or the key groups not served here).
 */
export interface ServedQuery {
  reply: QueryReply;
  response?: Uint8Array;
}

export interface HostedJob {
  readonly jobId: string;
  readonly epoch: number;
  readonly state: 'DEPLOYED' | 'RUNNING' | 'FAILED' | 'STOPPED';
  readonly keyGroups: readonly number[];
  readonly sourceSplits: number;
  readonly moving: boolean;
  /** The job's key groups in all (its manifest's maxParallelism). */
  readonly maxParallelism: number;
  counters(): JobCounters;
  start(): Promise<void>;
  trigger(checkpointId: number, rematerialize: readonly number[]): void | Promise<void>;
  complete(c: CheckpointComplete): Promise<void>;
  prepareMove(m: MoveTasks): Promise<void>;
  stop(): Promise<void>;
  /**
   * A feature read asked directly (the worker's serving endpoint, worker/query/serving-endpoint.ts):
   * the NATS query subjects' lookup, a complete answer encoded as the eddy.v2 response's bytes
   * (QueryResponder.serve, worker/query/query-responder.ts); never rejects.
   */
  serve(request: QueryRequest): Promise<ServedQuery>;
}
