// The job graph, produced by `eddy build` from the job's own builder calls and shipped next to
// the bundle. The coordinator validates it and plans from it; it never executes user code.
//
// Format 2 is a DAG: several sources (each read by its own source stage), keyed stages with one
// or two inputs (connect, broadcast), and operators that feed several downstreams (branching,
// side outputs as streams). Inside a stage the operators form a tree: each names the operator
// whose output it takes (`input`), and keyBy/broadcast operators end the tree with an edge to a
// keyed stage's input. Edges only point forward in `stages`, so the graph has no cycles.
// Source splits are numbered in one flat index space: source k's splits follow source k-1's
// (splitRanges), so assignment, sender names and checkpoint positions stay per split index.
import { isValidId } from './ids.ts';
import { InvalidArgumentError } from './errors.ts';
import { restartStrategyProblem, type RestartStrategySpec } from './restart-strategy-spec.ts';
import { startAtProblem, type StartAtSpec } from './start-at.ts';

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

/** Watermark generation of every source split (sdk/job.ts WatermarkOptions). */
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


/** How an asyncMap calls its function (sdk/job.ts AsyncMapOptions, defaults applied). */
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
const OPERATOR_KINDS: readonly string[] = ['map', 'filter', 'flatMap', 'asyncMap', 'keyBy', 'broadcast', 'process'];

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
const STATE_KINDS: readonly string[] = ['value', 'map', 'list', 'reducing', 'aggregating'];

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

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Failures of one source record before it is dead-lettered as a poison record (JobManifest.maxRecordAttempts). */
export const DEFAULT_MAX_RECORD_ATTEMPTS = 3;

const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** A subject of plain tokens: no wildcards, no empty tokens. */
export const SUBJECT = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Validates a manifest received from outside; throws InvalidArgumentError naming the problem. */
export function parseManifest(json: string): JobManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new InvalidArgumentError(`manifest is not valid JSON: ${(e as Error).message}`);
  }
  validateManifest(raw);
  return raw;
}

export function validateManifest(m: unknown): asserts m is JobManifest {
  const fail = (msg: string): never => {
    throw new InvalidArgumentError(`invalid manifest: ${msg}`);
  };
  if (typeof m !== 'object' || m === null) fail('not an object');
  const o = m as Record<string, unknown>;
  if (o.formatVersion !== MANIFEST_FORMAT_VERSION) fail(`formatVersion ${String(o.formatVersion)} is not ${MANIFEST_FORMAT_VERSION}`);
  if (!isValidId(o.name)) fail(`name ${JSON.stringify(o.name)} is not a valid job id`);
  if (!Number.isInteger(o.maxParallelism) || (o.maxParallelism as number) < 1 || (o.maxParallelism as number) > MAX_KEY_GROUPS) {
    fail(`maxParallelism ${String(o.maxParallelism)} outside 1..${MAX_KEY_GROUPS}`);
  }
  if (o.errorPolicy !== 'fail' && o.errorPolicy !== 'dead-letter') fail(`errorPolicy ${String(o.errorPolicy)} is not "fail" or "dead-letter"`);
  if (o.restartStrategy !== undefined) {
    const problem = restartStrategyProblem(o.restartStrategy);
    if (problem !== undefined) fail(problem);
  }
  if (o.limits !== undefined) {
    const l = o.limits as Record<string, unknown>;
    if (typeof l !== 'object' || l === null) fail('limits must be an object');
    for (const name of ['maxCallMs', 'maxHeapMb']) {
      const v = l[name];
      if (v !== undefined && (!Number.isSafeInteger(v) || (v as number) < 1)) fail(`limits.${name} ${String(v)} is not a positive integer`);
    }
  }
  if (o.maxRecordAttempts !== undefined && (!Number.isSafeInteger(o.maxRecordAttempts) || (o.maxRecordAttempts as number) < 0 || (o.maxRecordAttempts as number) > 100)) {
    fail(`maxRecordAttempts ${String(o.maxRecordAttempts)} is not an integer 0..100`);
  }
  if (o.env !== undefined && (!Array.isArray(o.env) || !o.env.every((n) => typeof n === 'string' && ENV_NAME.test(n)))) fail('env must be a list of environment variable names');
  if (!Array.isArray(o.sources) || o.sources.length === 0) fail('sources must be a non-empty array');
  const sources = o.sources as unknown[];
  const streams = new Set<string>();
  let totalSplits = 0;
  for (const [k, raw] of sources.entries()) {
    const src = raw as Record<string, unknown>;
    const at = `source ${k}`;
    if (typeof src !== 'object' || src === null) fail(`${at} is not an object`);
    if (typeof src.stream !== 'string' || !STREAM_NAME.test(src.stream)) fail(`${at} stream ${JSON.stringify(src.stream)} is not a valid stream name`);
    if (streams.has(src.stream as string)) fail(`${at} reads stream ${String(src.stream)}, which an earlier source reads too`);
    streams.add(src.stream as string);
    if (!Number.isInteger(src.partitions) || (src.partitions as number) < 1 || (src.partitions as number) > 1024) fail(`${at} partitions must be 1..1024`);
    totalSplits += src.partitions as number;
    if (src.format !== 'json') fail(`${at} format ${String(src.format)} is not "json"`);
    if (src.timestampField !== undefined && (typeof src.timestampField !== 'string' || src.timestampField.length === 0)) fail(`${at} timestampField must be a non-empty string`);
    if (src.generator !== undefined) {
      const problem = generatorSpecProblem(src.generator);
      if (problem !== undefined) fail(`${at} generator: ${problem}`);
      if (src.startAt !== undefined || src.timestampField !== undefined || src.partitionKey !== undefined) fail(`${at} is a generator: it takes no startAt, timestampField or partitionKey`);
      if (src.eventTime === undefined) fail(`${at} is a generator: it needs eventTime`);
    }
    if (src.startAt !== undefined) {
      const problem = startAtProblem(src.startAt);
      if (problem !== undefined) fail(`${at} ${problem}`);
    }
    if (src.eventTime !== undefined) {
      const et = src.eventTime as Record<string, unknown>;
      const nonNegative = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
      if (typeof et !== 'object' || et === null) fail(`${at} eventTime is not an object`);
      if (!nonNegative(et.maxOutOfOrdernessMs)) fail(`${at} maxOutOfOrdernessMs ${String(et.maxOutOfOrdernessMs)} is not a non-negative integer`);
      if (et.idleTimeoutMs !== undefined && (!nonNegative(et.idleTimeoutMs) || (et.idleTimeoutMs as number) === 0)) fail(`${at} idleTimeoutMs ${String(et.idleTimeoutMs)} is not a positive integer`);
      if (!nonNegative(et.watermarkIntervalMs) || (et.watermarkIntervalMs as number) === 0) fail(`${at} watermarkIntervalMs ${String(et.watermarkIntervalMs)} is not a positive integer`);
    }
  }
  // Split indexes are u16-sized in practice (assignment, sender names): keep the flat space bounded.
  if (totalSplits > 4096) fail(`the sources have ${totalSplits} partitions in all; at most 4096`);
  if (!Array.isArray(o.stages) || o.stages.length === 0) fail('stages must be a non-empty array');
  const stages = o.stages as StageSpec[];
  const ids = new Map<string, number>();
  for (const [i, s] of stages.entries()) {
    if (typeof s !== 'object' || s === null) fail(`stage ${i} is not an object`);
    if (!isValidId(s.id)) fail(`stage ${i} id ${JSON.stringify(s.id)} is not a valid id`);
    if (ids.has(s.id)) fail(`stage id ${s.id} appears twice`);
    ids.set(s.id, i);
  }
  const sourceStage = new Map<number, string>();
  /** Per keyed stage: which inputs some edge feeds. */
  const fed = new Map<string, Set<number>>();
  for (const [i, s] of stages.entries()) {
    if (s.kind === 'source') {
      if (!Number.isInteger(s.source) || (s.source as number) < 0 || (s.source as number) >= sources.length) fail(`source stage ${s.id} names source ${String(s.source)}, which does not exist`);
      if (sourceStage.has(s.source!)) fail(`source ${s.source} is read by stages ${sourceStage.get(s.source!)} and ${s.id}; one stage per source`);
      sourceStage.set(s.source!, s.id);
      if (s.inputs !== undefined) fail(`source stage ${s.id} cannot have inputs`);
    } else if (s.kind === 'keyed') {
      if (s.source !== undefined) fail(`keyed stage ${s.id} cannot read a source`);
      const shape = JSON.stringify(s.inputs);
      if (!INPUT_SHAPES.includes(shape)) fail(`keyed stage ${s.id} inputs ${shape ?? 'undefined'} is not one of ${INPUT_SHAPES.join(', ')}`);
      fed.set(s.id, new Set());
    } else fail(`stage ${s.id} kind ${String((s as { kind?: unknown }).kind)} is not "source" or "keyed"`);
  }
  for (const k of sources.keys()) if (!sourceStage.has(k)) fail(`source ${k} (${String((sources[k] as { stream?: unknown }).stream)}) has no source stage`);
  for (const [i, s] of stages.entries()) {
    if (!Array.isArray(s.operators)) fail(`stage ${s.id} operators is not an array`);
    const ops = s.operators;
    for (const [j, op] of ops.entries()) {
      if (typeof op !== 'object' || op === null || !OPERATOR_KINDS.includes(op.kind)) fail(`stage ${s.id} has an unknown operator kind ${String((op as { kind?: unknown } | null)?.kind)}`);
      if (typeof op.name !== 'string' || op.name.length === 0) fail(`stage ${s.id} has an operator without a name`);
      const at = `stage ${s.id} operator ${op.name}`;
      if (op.kind === 'process') {
        if (s.kind !== 'keyed' || j !== 0) fail(`${at}: a process operator can only be the first operator of a keyed stage`);
      } else if (s.kind === 'keyed' && j === 0) fail(`keyed stage ${s.id} does not start with a process operator`);
      if (op.kind === 'process' || op.input === undefined) {
        if (op.input !== undefined) fail(`${at}: a process operator takes the stage's input`);
        if (s.kind === 'keyed' && op.kind !== 'process') fail(`${at} takes no input operator; in a keyed stage every operator after the first names its input`);
        if (op.sideOutput !== undefined) fail(`${at} takes a side output but names no input operator`);
      } else {
        if (!Number.isInteger(op.input) || op.input < 0 || op.input >= j) fail(`${at} takes input ${String(op.input)}, which is not an earlier operator of the stage`);
        checkTakesOutput(s, op.input, op.sideOutput, at);
      }
      if (op.kind === 'keyBy' || op.kind === 'broadcast') {
        const to = (typeof op.to === 'object' && op.to !== null ? op.to : fail(`${at} (${op.kind}) names no target stage`)) as { stage?: unknown; input?: unknown };
        const target = typeof to.stage === 'string' ? ids.get(to.stage) : undefined;
        if (target === undefined) fail(`${at} sends to stage ${JSON.stringify(to.stage)}, which does not exist`);
        const t = stages[target!]!;
        if (t.kind !== 'keyed') fail(`${at} sends to stage ${t.id}, which is not a keyed stage (a source stage takes no input)`);
        if (target! <= i) fail(`${at} sends to stage ${t.id}, which is not after it (stages must be in topological order)`);
        const kind = Number.isInteger(to.input) ? t.inputs![to.input as number] : undefined;
        if (kind === undefined) fail(`${at} sends to input ${String(to.input)} of stage ${t.id}, which has ${t.inputs!.length} input(s)`);
        if (kind !== (op.kind === 'keyBy' ? 'keyed' : 'broadcast')) fail(`${at} is a ${op.kind} into input ${String(to.input)} of stage ${t.id}, which is a ${kind} input`);
        fed.get(t.id)!.add(to.input as number);
      } else if (op.to !== undefined) fail(`${at}: only keyBy and broadcast operators send to another stage`);
      if (op.kind === 'asyncMap') {
        const problem = asyncSpecProblem(op.async);
        if (problem !== undefined) fail(`${at}: ${problem}`);
      } else if (op.async !== undefined) fail(`${at}: only asyncMap operators take async options`);
    }
    if (!Array.isArray(s.sinks)) fail(`stage ${s.id} sinks is not an array`);
    for (const sink of s.sinks) {
      if (sink?.kind === 'files') {
        const problem = filesSinkProblem(sink);
        if (problem !== undefined) fail(`stage ${s.id} files sink: ${problem}`);
        if (sink.sideOutput !== undefined && !isValidId(sink.sideOutput)) fail(`stage ${s.id} sink side output ${JSON.stringify(sink.sideOutput)} is not a valid id`);
        continue;
      }
      if (sink?.kind !== 'jetstream' && sink?.kind !== 'nats' && sink?.kind !== 'jetstream-routed') fail(`stage ${s.id} has an unknown sink kind ${String((sink as { kind?: unknown })?.kind)}`);
      if (sink.kind === 'jetstream-routed') {
        if (typeof sink.subjectPrefix !== 'string' || !SUBJECT.test(sink.subjectPrefix)) fail(`stage ${s.id} sink subjectPrefix ${JSON.stringify(sink.subjectPrefix)} is invalid`);
      } else if (typeof sink.subject !== 'string' || !SUBJECT.test(sink.subject)) fail(`stage ${s.id} sink subject ${JSON.stringify(sink.subject)} is invalid`);
      if (sink.kind !== 'nats' && (typeof sink.stream !== 'string' || !STREAM_NAME.test(sink.stream))) fail(`stage ${s.id} sink stream ${JSON.stringify(sink.stream)} is invalid`);
      if (sink.sideOutput !== undefined && !isValidId(sink.sideOutput)) fail(`stage ${s.id} sink side output ${JSON.stringify(sink.sideOutput)} is not a valid id`);
      if (sink.kind !== 'nats' && sink.delivery !== undefined && sink.delivery !== 'exactly-once' && sink.delivery !== 'at-least-once') {
        fail(`stage ${s.id} sink delivery ${JSON.stringify(sink.delivery)} is not "exactly-once" or "at-least-once"`);
      }
      const at = `stage ${s.id} sink ${sink.kind === 'jetstream-routed' ? `${sink.subjectPrefix}.>` : sink.subject}`;
      if (sink.input === undefined) {
        if (s.kind === 'keyed') fail(`${at} names no operator; a keyed stage's sinks take an operator's output`);
        if (sink.sideOutput !== undefined) fail(`${at} takes a side output but names no operator`);
      } else {
        if (!Number.isInteger(sink.input) || sink.input < 0 || sink.input >= ops.length) fail(`${at} takes operator ${String(sink.input)}, which the stage does not have`);
        checkTakesOutput(s, sink.input, sink.sideOutput, at);
      }
    }
    if (!Array.isArray(s.states) || !Array.isArray(s.features)) fail(`stage ${s.id} states and features must be arrays`);
    const stateNames = new Map<string, StateKind>();
    for (const st of s.states) {
      if (typeof st?.name !== 'string' || st.name.length === 0 || st.name.length > 200) fail(`stage ${s.id} has a state without a valid name`);
      if (!STATE_KINDS.includes(st.kind)) fail(`state ${st.name} has unknown kind ${String(st.kind)}`);
      if (st.ttlMs !== undefined && (!Number.isSafeInteger(st.ttlMs) || st.ttlMs <= 0)) fail(`state ${st.name} ttlMs ${String(st.ttlMs)} is not a positive integer`);
      // NUL-prefixed names are the runtime's feature metadata and history (worker/state/feature-state.ts);
      // other control characters mark the runtime's own declared states (timers, windows).
      if (st.name.startsWith('\u0000')) fail(`stage ${s.id} state ${JSON.stringify(st.name)} starts with NUL, which is reserved for the runtime`);
      if (stateNames.has(st.name)) fail(`stage ${s.id} declares state ${st.name} twice`);
      stateNames.set(st.name, st.kind);
    }
    if (s.kind === 'source' && s.states.length > 0) fail(`the source stage ${s.id} cannot hold keyed state`);
    const broadcastStates = new Set<string>();
    if (s.broadcastStates !== undefined) {
      if (!Array.isArray(s.broadcastStates) || s.broadcastStates.length === 0) fail(`stage ${s.id} broadcastStates must be a non-empty array when present`);
      if (s.kind !== 'keyed' || !s.inputs!.includes('broadcast')) fail(`stage ${s.id} declares broadcast state but has no broadcast input`);
      for (const name of s.broadcastStates) {
        if (stateNames.get(name) !== 'map') fail(`stage ${s.id} broadcast state ${JSON.stringify(name)} is not a map state the stage declares`);
        broadcastStates.add(name);
      }
    }
    for (const f of s.features) {
      if (!isValidId(f?.name)) fail(`stage ${s.id} feature name ${JSON.stringify(f?.name)} is not a valid id`);
      if (!stateNames.has(f.state)) fail(`feature ${f.name} serves state ${f.state}, which stage ${s.id} does not declare`);
      if (broadcastStates.has(f.state)) fail(`feature ${f.name} serves broadcast state ${f.state}; features serve keyed state`);
      if (f.history !== undefined) {
        const r = (f.history as { retentionMs?: unknown } | null)?.retentionMs;
        if (typeof r !== 'number' || !Number.isSafeInteger(r) || r <= 0 || r > MAX_HISTORY_RETENTION_MS) {
          fail(`feature ${f.name} history.retentionMs ${JSON.stringify(r)} must be an integer in 1..${MAX_HISTORY_RETENTION_MS} ms`);
        }
      }
    }
  }
  for (const s of stages) {
    if (s.kind !== 'keyed') continue;
    for (const [k, kind] of s.inputs!.entries()) if (!fed.get(s.id)!.has(k)) fail(`input ${k} (${kind}) of stage ${s.id} has no upstream operator sending to it`);
  }
  const features = stages.flatMap((s) => s.features.map((f) => f.name));
  if (new Set(features).size !== features.length) fail('a feature name appears twice');

  /** An operator or sink may take operator `input`'s output (or its side output). */
  function checkTakesOutput(s: StageSpec, input: number, sideOutput: string | undefined, at: string): void {
    const from = s.operators[input]!;
    if (from.kind === 'keyBy' || from.kind === 'broadcast') fail(`${at} takes the output of ${from.kind} ${from.name}, which sends to another stage`);
    if (sideOutput !== undefined) {
      if (!isValidId(sideOutput)) fail(`${at} side output ${JSON.stringify(sideOutput)} is not a valid id`);
      if (from.kind !== 'process') fail(`${at} takes side output ${sideOutput} of ${from.kind} ${from.name}; only a process operator has side outputs`);
    }
  }
}

const INPUT_SHAPES = [JSON.stringify(['keyed']), JSON.stringify(['keyed', 'keyed']), JSON.stringify(['keyed', 'broadcast'])];

/** One source's splits in the flat split index space: [firstSplit, firstSplit + partitions). */
export interface SplitRange {
  /** Index in manifest.sources. */
  source: number;
  spec: SourceSpec;
  /** The source stage that reads it. */
  stageId: string;
  firstSplit: number;
  partitions: number;
}

/** The flat split index space: source k's splits follow source k-1's. */
export function splitRanges(manifest: JobManifest): SplitRange[] {
  let first = 0;
  return manifest.sources.map((spec, source) => {
    const stage = manifest.stages.find((s) => s.kind === 'source' && s.source === source);
    if (!stage) throw new InvalidArgumentError(`source ${source} has no source stage`);
    const range = { source, spec, stageId: stage.id, firstSplit: first, partitions: spec.partitions };
    first += spec.partitions;
    return range;
  });
}

/** What each split of the flat split space reads, as "<stream>.<partition>". */
export function splitStreams(manifest: JobManifest): string[] {
  return manifest.sources.flatMap((s) => Array.from({ length: s.partitions }, (_, p) => `${s.stream}.${p}`));
}

/**
 * Source positions of a checkpoint (by split index of the job that wrote it) in the split space
 * of `manifest`, matched by stream and partition. A checkpoint without splitStreams comes from a
 * one-source job: its splits are taken as the partitions of the manifest's first source.
 */
export function remapSourcePositions(checkpoint: { sources: Record<string, number>; splitStreams?: string[] }, manifest: JobManifest): Record<string, number> {
  const now = splitStreams(manifest);
  const before = checkpoint.splitStreams ?? now.filter((s) => s.startsWith(`${manifest.sources[0]!.stream}.`));
  const out: Record<string, number> = {};
  for (const [split, sequence] of Object.entries(checkpoint.sources)) {
    const name = before[Number(split)];
    const index = name === undefined ? -1 : now.indexOf(name);
    if (index >= 0) out[String(index)] = sequence;
  }
  return out;
}

/** How many source splits the job has in all. */
export function splitCount(manifest: JobManifest): number {
  return manifest.sources.reduce((n, s) => n + s.partitions, 0);
}

/** The source, and the partition of its stream, that a flat split index reads. */
export function splitSource(manifest: JobManifest, split: number): SplitRange & { partition: number } {
  for (const r of splitRanges(manifest)) if (split >= r.firstSplit && split < r.firstSplit + r.partitions) return { ...r, partition: split - r.firstSplit };
  throw new InvalidArgumentError(`split ${split} is outside the job's ${splitCount(manifest)} splits`);
}

/** A keyBy or broadcast operator sending to a keyed stage's input. */
export interface StageEdge {
  from: string;
  /** The operator's index in its stage. */
  operator: number;
  to: string;
  input: number;
  kind: StageInputKind;
}

/** Every edge of the graph, in stage and operator order. */
export function stageEdges(manifest: JobManifest): StageEdge[] {
  const out: StageEdge[] = [];
  for (const s of manifest.stages) {
    s.operators.forEach((op, operator) => {
      if ((op.kind === 'keyBy' || op.kind === 'broadcast') && op.to) out.push({ from: s.id, operator, to: op.to.stage, input: op.to.input, kind: op.kind === 'keyBy' ? 'keyed' : 'broadcast' });
    });
  }
  return out;
}

/**
 * Whether a stage's output carries event time (and watermarks): a source stage when its source
 * assigns timestamps, a keyed stage when any of its inputs does.
 */
export function carriesEventTime(manifest: JobManifest, stageId: string): boolean {
  const stage = manifest.stages.find((s) => s.id === stageId);
  if (!stage) return false;
  if (stage.kind === 'source') return manifest.sources[stage.source!]?.eventTime !== undefined;
  return stageEdges(manifest).some((e) => e.to === stageId && carriesEventTime(manifest, e.from));
}

/** Why a generator spec is invalid, or undefined. */
export function generatorSpecProblem(g: unknown): string | undefined {
  if (typeof g !== 'object' || g === null) return 'not an object';
  const o = g as Record<string, unknown>;
  if (typeof o.kind !== 'string' || o.kind.length === 0) return 'kind must be a non-empty string';
  if (!Number.isSafeInteger(o.events) || (o.events as number) < 0) return `events ${String(o.events)} is not a non-negative integer`;
  if (typeof o.ratePerSec !== 'number' || !Number.isFinite(o.ratePerSec) || o.ratePerSec <= 0) return `ratePerSec ${String(o.ratePerSec)} is not a positive number`;
  if (typeof o.paced !== 'boolean') return 'paced must be a boolean';
  if (typeof o.params !== 'object' || o.params === null || Array.isArray(o.params)) return 'params must be an object';
  return undefined;
}

const positiveInteger = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) > 0;

/** Why an asyncMap's options are invalid, or undefined. */
export function asyncSpecProblem(a: unknown): string | undefined {
  if (typeof a !== 'object' || a === null) return 'options missing';
  const o = a as Record<string, unknown>;
  if (typeof o.ordered !== 'boolean') return 'ordered must be a boolean';
  if (!positiveInteger(o.capacity) || (o.capacity as number) > 100_000) return `capacity ${String(o.capacity)} is not an integer in 1..100000`;
  if (!positiveInteger(o.timeoutMs)) return `timeoutMs ${String(o.timeoutMs)} is not a positive integer`;
  if (o.onFailure !== 'fail' && o.onFailure !== 'dead-letter') return `onFailure ${String(o.onFailure)} is not "fail" or "dead-letter"`;
  const r = o.retry as Record<string, unknown> | null | undefined;
  if (typeof r !== 'object' || r === null) return 'retry missing';
  if (!positiveInteger(r.maxAttempts) || (r.maxAttempts as number) > 1000) return `retry.maxAttempts ${String(r.maxAttempts)} is not an integer in 1..1000`;
  if (!Number.isSafeInteger(r.initialDelayMs) || (r.initialDelayMs as number) < 0) return `retry.initialDelayMs ${String(r.initialDelayMs)} is not a non-negative integer`;
  if (!Number.isSafeInteger(r.maxDelayMs) || (r.maxDelayMs as number) < (r.initialDelayMs as number)) return `retry.maxDelayMs ${String(r.maxDelayMs)} is not an integer >= initialDelayMs`;
  if (typeof r.multiplier !== 'number' || !(r.multiplier >= 1) || !Number.isFinite(r.multiplier)) return `retry.multiplier ${String(r.multiplier)} is not a number >= 1`;
  if (typeof r.jitter !== 'number' || !(r.jitter >= 0 && r.jitter <= 1)) return `retry.jitter ${String(r.jitter)} is not in 0..1`;
  return undefined;
}

const FILES_PATH = /^[A-Za-z0-9_.=-]+(\/[A-Za-z0-9_.=-]+)*$/;

/** Why a files sink spec is invalid, or undefined. */
export function filesSinkProblem(sink: FilesSinkSpec): string | undefined {
  if (typeof sink.path !== 'string' || !FILES_PATH.test(sink.path) || sink.path.split('/').some((p) => p === '.' || p === '..')) {
    return `path ${JSON.stringify(sink.path)} must be a relative path of [A-Za-z0-9_.=-] segments separated by /`;
  }
  // jobs/ holds bundles and checkpoints: a sink writing there could overwrite them.
  if (sink.path === 'jobs' || sink.path.startsWith('jobs/')) return `path ${sink.path} is under jobs/, which is reserved for bundles and checkpoints`;
  if (sink.format !== 'ndjson') return `format ${String(sink.format)} is not "ndjson"`;
  if (!positiveInteger(sink.rollSizeBytes)) return `rollSizeBytes ${String(sink.rollSizeBytes)} is not a positive integer`;
  if (!positiveInteger(sink.rollIntervalMs)) return `rollIntervalMs ${String(sink.rollIntervalMs)} is not a positive integer`;
  if (sink.partitionBy !== 'none' && sink.partitionBy !== 'day' && sink.partitionBy !== 'hour') return `partitionBy ${String(sink.partitionBy)} is not "none", "day" or "hour"`;
  return undefined;
}

/** Finds the stage that serves a feature. */
export function findFeature(manifest: JobManifest, feature: string): { stage: StageSpec; spec: FeatureSpec; state: StateSpec } | undefined {
  for (const stage of manifest.stages) {
    const spec = stage.features.find((f) => f.name === feature);
    if (spec) return { stage, spec, state: stage.states.find((s) => s.name === spec.state)! };
  }
  return undefined;
}
