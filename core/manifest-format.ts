// The job graph's format (its manifest), produced by `eddy build` from the job's own builder calls
// and shipped next to the bundle. The coordinator validates it (core/manifest-validation.ts) and
// plans from it; it never executes user code.
//
// Format 2 is a DAG: several sources (each read by its own source stage), keyed stages with one
// or two inputs (connect, broadcast), and operators that feed several downstreams (branching,
// side outputs as streams). Inside a stage the operators form a tree: each names the operator
// whose output it takes (`input`), and keyBy/broadcast operators end the tree with an edge to a
// keyed stage's input. Edges only point forward in `stages`, so the graph has no cycles.
import type { RestartStrategySpec } from './restart-strategy-spec.ts';
import type { StartAtSpec } from './start-at.ts';

export const MANIFEST_FORMAT_VERSION = 2;
/** Upper bound of maxParallelism: key groups are u16 in state keys and record batches. */
export const MAX_KEY_GROUPS = 32768;

export interface SourceSpec {
  /** JetStream stream name; its subjects are `<stream>.<partition>`. */
  stream: string;
  /** Number of subject partitions (source splits). */
  partitions: number;
  /** Top-level JSON field producers partition by, so one key stays in one split and in order. */
  partitionKey?: string;
  /** How message payloads decode. */
  format: 'json';
  /** Top-level JSON field with the event time (ms); absent: the JetStream message time. */
  timestampField?: string;
  /** Present when the job assigns event time at the source (the assigner itself is code, in the bundle). */
  eventTime?: EventTimeSpec;
  /**
   * Where the splits start on the job's first start (core/start-at.ts); a restore always starts
   * from the checkpoint's positions. Absent: the start of the stream.
   */
  startAt?: StartAtSpec;
  /**
   * Present when the records are made inside the job (sdk/generator.ts) instead of read from a
   * JetStream stream: `stream` is then only the source's name, no stream exists, and a split's
   * position is how many events it has made, plus one (a "sequence" from 1, as for a stream).
   */
  generator?: GeneratorSpec;
}

/** A generator source (sdk/generator.ts); the generating function itself is code, in the bundle. */
export interface GeneratorSpec {
  /** What makes the events: "nexmark", "datagen". */
  kind: string;
  /** Events in all, over every split; 0: no end. */
  events: number;
  /** Events per second of event time (and of the wall clock when paced). */
  ratePerSec: number;
  /** Emitted at ratePerSec by the wall clock, rather than as fast as the job takes them. */
  paced: boolean;
  /** The generator's settings, for people and for the bundle check (never interpreted here). */
  params: Record<string, string | number | boolean>;
}

/** Watermark generation of every source split (sdk/options.ts WatermarkOptions). */
export interface EventTimeSpec {
  maxOutOfOrdernessMs: number;
  /** A split quiet this long is idle; absent: never. */
  idleTimeoutMs?: number;
  watermarkIntervalMs: number;
}

export type SinkSpec =
  /**
   * exactly-once (default): a checkpoint's output is published once that checkpoint completes,
   * with deterministic Nats-Msg-Ids so a retried publish is deduplicated by the stream;
   * at-least-once: published immediately, repeated after a recovery.
   */
  | { kind: 'jetstream'; subject: string; stream: string; delivery?: 'exactly-once' | 'at-least-once'; sideOutput?: string }
  | { kind: 'nats'; subject: string; sideOutput?: string }
  | FilesSinkSpec
  /**
   * JetStream, the subject chosen per record: the stage writes `{ subject, value }` records and
   * `value` is published to `<subjectPrefix>.<subject>`; the stream is created over
   * `<subjectPrefix>.>`. Same deliveries as 'jetstream'. A record whose subject is not plain
   * tokens (no wildcards) fails as its user function would (dead-letter or fail, by policy).
   */
  | { kind: 'jetstream-routed'; subjectPrefix: string; stream: string; delivery?: 'exactly-once' | 'at-least-once'; sideOutput?: string };
// sideOutput: the sink takes the stage's side output of that tag (ctx.output(tag, value)), not
// its main output. A stage that shuffles may still have side-output sinks.

/**
 * NDJSON part files in the job's object store, under `path` (relative to the store's root):
 * `<path>/<partition>/part-<checkpoint>-<task>-<index>.ndjson`. A part holds records of one
 * checkpoint and becomes visible at its final name only once that checkpoint completes
 * (worker/sink/file-sink.ts, coordinator/file-commit.ts).
 */
export interface FilesSinkSpec {
  kind: 'files';
  path: string;
  format: 'ndjson';
  /** A part is closed once it holds this many bytes. */
  rollSizeBytes: number;
  /** A part is closed this long after its first record (and at every checkpoint in any case). */
  rollIntervalMs: number;
  /** Directory per UTC day or hour of the record's event time, or none. */
  partitionBy: 'none' | 'day' | 'hour';
  sideOutput?: string;
}


/** How an asyncMap calls its function (sdk/async-map.ts AsyncMapOptions, defaults applied). */
export interface AsyncOperatorSpec {
  ordered: boolean;
  /** Records in the operator at once (in flight, retrying or waiting to be emitted) per task. */
  capacity: number;
  /** One attempt's time limit; it is then aborted and counts as failed. */
  timeoutMs: number;
  retry: AsyncRetrySpec;
  /** After the last attempt failed: fail the job, or send the record to the dead-letter subject. */
  onFailure: 'fail' | 'dead-letter';
}

export interface AsyncRetrySpec {
  /** Attempts in all, the first included (1: no retry). */
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** >= 1. */
  multiplier: number;
  /** 0..1: fraction of each delay randomised ±. */
  jitter: number;
}

/** A sink of a stage, attached to one of its operators. */
export type StageSinkSpec = SinkSpec & {
  /** The operator (index in the stage) whose output the sink takes; absent: the source stage's records. */
  input?: number;
};

export type OperatorKind = 'map' | 'filter' | 'flatMap' | 'asyncMap' | 'keyBy' | 'broadcast' | 'process';

export interface OperatorSpec {
  kind: OperatorKind;
  /** Names the operator in errors and metrics. */
  name: string;
  /**
   * The operator of this stage (an earlier index) whose output this one takes; absent: the
   * stage's own input (a source stage's records). A keyed stage's first operator is its process.
   */
  input?: number;
  /** Takes the side output `sideOutput` of operator `input` (a process) instead of its main output. */
  sideOutput?: string;
  /** keyBy and broadcast only: the keyed stage (a later one) and its input the records go to. */
  to?: { stage: string; input: number };
  /** asyncMap only. */
  async?: AsyncOperatorSpec;
}

/**
 * What a keyed stage's input carries: records shuffled by key, or records delivered to every key
 * group (broadcast). A keyed stage takes ['keyed'], ['keyed', 'keyed'] (connect) or
 * ['keyed', 'broadcast'] (connect to a broadcast stream).
 */
export type StageInputKind = 'keyed' | 'broadcast';

export type StateKind = 'value' | 'map' | 'list' | 'reducing' | 'aggregating';

export interface StateSpec {
  name: string;
  kind: StateKind;
  /** Time to live of the state's values in ms (sdk/state.ts); the worker's TTL sweep reads it. */
  ttlMs?: number;
}

export interface FeatureSpec {
  /** The name queries use. */
  name: string;
  /** The keyed state it serves; the entity id is the stage's key. */
  state: string;
  /** Versions kept for as-of reads, for retentionMs of event time before the key's newest version. */
  history?: { retentionMs: number };
}

/** Longest history retention accepted: ten years. */
export const MAX_HISTORY_RETENTION_MS = 10 * 365 * 24 * 3600 * 1000;

export interface StageSpec {
  id: string;
  /** "source": reads the splits of one source; "keyed": one actor per key group. */
  kind: 'source' | 'keyed';
  /** Source stage only: the index of its source in the manifest's sources. */
  source?: number;
  /** Keyed stage only: its inputs, by input index (see StageInputKind). */
  inputs?: StageInputKind[];
  /** Operators chained in this stage (no NATS hop between them); each names its input operator. */
  operators: OperatorSpec[];
  sinks: StageSinkSpec[];
  states: StateSpec[];
  /**
   * Keyed stage with a broadcast input only: the names of its map states (in `states`) that are
   * broadcast state, stored per key group under a reserved key.
   */
  broadcastStates?: string[];
  features: FeatureSpec[];
}

export interface JobManifest {
  formatVersion: number;
  name: string;
  maxParallelism: number;
  /** What happens to a record whose user function throws. */
  errorPolicy: 'fail' | 'dead-letter';
  /** What happens when user code fails under the "fail" policy. @default DEFAULT_RESTART_STRATEGY (exponential back-off) */
  restartStrategy?: RestartStrategySpec;
  /** The job's sources, in split order (see splitRanges). */
  sources: SourceSpec[];
  stages: StageSpec[];
  /** Limits of the job's code on a worker that isolates jobs (worker/isolated-job.ts). @default the worker's */
  limits?: JobLimits;
  /**
   * Failures of one source record (its function threw under "fail", or the watchdog stopped it)
   * after which the record is dead-lettered and skipped; 0 never skips. @default 3 (DEFAULT_MAX_RECORD_ATTEMPTS)
   */
  maxRecordAttempts?: number;
  /**
   * Names of the worker's environment variables the job's code may read; an isolated job sees
   * only these in process.env. @default none
   */
  env?: string[];
}

export interface JobLimits {
  /** A user function, timer callback or bundle import holding the job's thread longer than this fails the task. */
  maxCallMs?: number;
  /** Heap of the job's thread on each worker (V8 old generation); past it the job fails. */
  maxHeapMb?: number;
}

/** Failures of one source record before it is dead-lettered as a poison record (JobManifest.maxRecordAttempts). */
export const DEFAULT_MAX_RECORD_ATTEMPTS = 3;
