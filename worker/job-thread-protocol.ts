// Messages between a worker and the thread of one of its jobs (worker/isolated-job.ts hosts it,
// worker/job-thread-main.ts runs it). Records never cross this boundary: the job's thread has its
// own NATS connection and RocksDB. What crosses is control (deploy, start, trigger, complete,
// move, stop: a few per checkpoint), the job's status for heartbeats, object-store calls,
// which the worker's thread performs so that the store's credentials stay out of the job's, and
// the feature queries: the worker's serving endpoint's and those routed over NATS (one message
// each way per query, no status).
import type { CheckpointComplete, DeployTasks, JobCounters, MoveTasks, QueryRequest } from '../core/control.ts';
import type { MessagePort } from 'node:worker_threads';
import type { ToInbox } from './query/query-inbox.ts';
import type { ServedQuery } from './hosted-job.ts';
import type { ClientConnectionOptions } from '../core/nats-connect.ts';
import type { RelayedMeasurements } from './metrics-relay.ts';
import type { SplitSample, StageSample } from './worker-metrics.ts';

/** The worker options a job's thread needs: no logger, telemetry or store credentials. */
export interface JobThreadOptions {
  natsServers: string;
  /** The worker's NATS credentials and TLS: the thread connects as the worker does. */
  nats: ClientConnectionOptions;
  workerId: string;
  dataDir: string;
  storeUrl: string;
  maxBatchRecords: number;
  maxBatchBytes: number;
  batchLingerMs: number;
  watermarkLingerMs: number;
  channelWindow: number;
  sourcePullBytes: number;
  ackTimeoutMs: number;
  maxOverlayBytes: number;
  liveEntries: number;
  readCacheEntries: number;
  rocksdbWriteBufferMb: number;
  handOverTimeoutMs: number;
  logLevel: string;
  /**
   * The worker serves metrics: the thread relays its measurements and its stage and split
   * samples with its status (worker/metrics-relay.ts).
   */
  metrics: boolean;
}

export interface JobThreadData {
  options: JobThreadOptions;
  /** worker/call-site.ts: written by the job's thread, read by the worker's. */
  callSite: SharedArrayBuffer;
  /** The module the boot file imports once tsx is registered (worker/job-thread-main.ts). */
  entry: string;
  /**
   * The thread's end of its query channel, read between batches too: direct feature reads
   * (QueryMessage) and the NATS requests the worker's thread relays (worker/query/query-inbox.ts).
   */
  queries: MessagePort;
}

/** A direct feature read on the query channel; answered with a queryReply on the thread's port. */
export interface QueryMessage {
  kind: 'serve';
  id: number;
  request: QueryRequest;
}

/** Worker thread → job thread, on the query channel (the other way: FromInbox). */
export type ToQueryPort = QueryMessage | ToInbox;

export type JobCall =
  | { method: 'deploy'; args: [DeployTasks, Record<string, string>] }
  | { method: 'start'; args: [] }
  | { method: 'trigger'; args: [number, number[]] }
  | { method: 'complete'; args: [CheckpointComplete] }
  | { method: 'prepareMove'; args: [MoveTasks] }
  | { method: 'stop'; args: [] };

export type StoreMethod = 'put' | 'get' | 'getRange' | 'size' | 'exists' | 'delete' | 'list';

/** Worker thread → job thread. */
export type ToJobThread =
  | ({ kind: 'call'; id: number } & JobCall)
  | { kind: 'storeReply'; id: number; ok: true; value: unknown }
  | { kind: 'storeReply'; id: number; ok: false; error: string; notFound: boolean };

export interface JobStatus {
  state: 'DEPLOYED' | 'RUNNING' | 'FAILED' | 'STOPPED' | 'NONE';
  epoch: number;
  keyGroups: number[];
  sourceSplits: number;
  moving: boolean;
  counters: JobCounters;
  /** What the worker's metrics observe of the job (when the worker serves metrics and a runtime is deployed). */
  observed?: { statePath: string; stages: StageSample[]; splits: SplitSample[] };
}

/** Job thread → worker thread. */
export type FromJobThread =
  | { kind: 'reply'; id: number; ok: true; status: JobStatus; measurements?: RelayedMeasurements[] }
  | { kind: 'reply'; id: number; ok: false; error: string; status: JobStatus; measurements?: RelayedMeasurements[] }
  | { kind: 'status'; status: JobStatus; measurements?: RelayedMeasurements[] }
  | { kind: 'store'; id: number; method: StoreMethod; args: unknown[] }
  | { kind: 'queryReply'; id: number; served: ServedQuery };
