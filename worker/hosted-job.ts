// What the worker's control plane (worker/worker.ts) needs of a job it runs: the JobRuntime
// itself (jobs in the worker's thread) or an IsolatedJob (each job in a thread of its own).
import type { CheckpointComplete, JobCounters, MoveTasks, QueryReply, QueryRequest } from '../core/control.ts';

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
   * A feature query asked directly (the worker's serving endpoint, worker/query/serving-endpoint.ts),
   * answered as the NATS query subjects answer it (worker/query/query-responder.ts); never rejects.
   */
  query(request: QueryRequest): Promise<QueryReply>;
}
