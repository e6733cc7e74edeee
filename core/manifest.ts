// The job graph, produced by `eddy build` from the job's own builder calls and shipped next to
// the bundle. The coordinator validates it and plans from it; it never executes user code.
import { isValidId } from './ids.ts';
import { InvalidArgumentError } from './errors.ts';
import { restartStrategyProblem, type RestartStrategySpec } from './restart-strategy-spec.ts';

export const MANIFEST_FORMAT_VERSION = 1;
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
  /**
   * JetStream, the subject chosen per record: the stage writes `{ subject, value }` records and
   * `value` is published to `<subjectPrefix>.<subject>`; the stream is created over
   * `<subjectPrefix>.>`. Same deliveries as 'jetstream'. A record whose subject is not plain
   * tokens (no wildcards) fails as its user function would (dead-letter or fail, by policy).
   */
  | { kind: 'jetstream-routed'; subjectPrefix: string; stream: string; delivery?: 'exactly-once' | 'at-least-once'; sideOutput?: string };
// sideOutput: the sink takes the stage's side output of that tag (ctx.output(tag, value)), not
// its main output. A stage that shuffles may still have side-output sinks.

export type OperatorKind = 'map' | 'filter' | 'flatMap' | 'keyBy' | 'process';

export interface OperatorSpec {
  kind: OperatorKind;
  /** Names the operator in errors and metrics. */
  name: string;
}

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
  /** "source": reads splits of the job's source; "keyed": one actor per key group. */
  kind: 'source' | 'keyed';
  /** Operators chained in this stage, in order (no NATS hop between them). */
  operators: OperatorSpec[];
  /** The stage this one shuffles to by key (its last operator is then a keyBy). */
  shuffleTo?: string;
  sinks: SinkSpec[];
  states: StateSpec[];
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
  source: SourceSpec;
  stages: StageSpec[];
}

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
  const src = o.source as Record<string, unknown> | undefined;
  if (typeof src !== 'object' || src === null) fail('source is missing');
  if (typeof src!.stream !== 'string' || !STREAM_NAME.test(src!.stream)) fail(`source stream ${JSON.stringify(src!.stream)} is not a valid stream name`);
  if (!Number.isInteger(src!.partitions) || (src!.partitions as number) < 1 || (src!.partitions as number) > 1024) fail('source partitions must be 1..1024');
  if (src!.format !== 'json') fail(`source format ${String(src!.format)} is not "json"`);
  if (src!.timestampField !== undefined && (typeof src!.timestampField !== 'string' || src!.timestampField.length === 0)) fail('source timestampField must be a non-empty string');
  if (src!.eventTime !== undefined) {
    const et = src!.eventTime as Record<string, unknown>;
    const nonNegative = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
    if (typeof et !== 'object' || et === null) fail('source eventTime is not an object');
    if (!nonNegative(et.maxOutOfOrdernessMs)) fail(`source maxOutOfOrdernessMs ${String(et.maxOutOfOrdernessMs)} is not a non-negative integer`);
    if (et.idleTimeoutMs !== undefined && (!nonNegative(et.idleTimeoutMs) || (et.idleTimeoutMs as number) === 0)) fail(`source idleTimeoutMs ${String(et.idleTimeoutMs)} is not a positive integer`);
    if (!nonNegative(et.watermarkIntervalMs) || (et.watermarkIntervalMs as number) === 0) fail(`source watermarkIntervalMs ${String(et.watermarkIntervalMs)} is not a positive integer`);
  }
  if (!Array.isArray(o.stages) || o.stages.length === 0) fail('stages must be a non-empty array');
  const stages = o.stages as StageSpec[];
  const ids = new Set<string>();
  for (const [i, s] of stages.entries()) {
    if (typeof s !== 'object' || s === null) fail(`stage ${i} is not an object`);
    if (!isValidId(s.id)) fail(`stage ${i} id ${JSON.stringify(s.id)} is not a valid id`);
    if (ids.has(s.id)) fail(`stage id ${s.id} appears twice`);
    ids.add(s.id);
    if (s.kind !== (i === 0 ? 'source' : 'keyed')) fail(`stage ${s.id} kind ${String(s.kind)}: the first stage is the source, the others keyed`);
    if (!Array.isArray(s.operators)) fail(`stage ${s.id} operators is not an array`);
    for (const op of s.operators) {
      if (!['map', 'filter', 'flatMap', 'keyBy', 'process'].includes(op?.kind)) fail(`stage ${s.id} has an unknown operator kind ${String(op?.kind)}`);
      if (typeof op.name !== 'string' || op.name.length === 0) fail(`stage ${s.id} has an operator without a name`);
    }
    const next = stages[i + 1] as StageSpec | null | undefined;
    if (next !== undefined && (typeof next !== 'object' || next === null)) fail(`stage ${i + 1} is not an object`);
    if (next && s.shuffleTo !== next.id) fail(`stage ${s.id} must shuffle to the next stage ${next?.id}`);
    if (!next && s.shuffleTo !== undefined) fail(`the last stage ${s.id} shuffles to ${s.shuffleTo}, which does not exist`);
    if (!Array.isArray(s.sinks)) fail(`stage ${s.id} sinks is not an array`);
    for (const sink of s.sinks) {
      if (sink?.kind !== 'jetstream' && sink?.kind !== 'nats' && sink?.kind !== 'jetstream-routed') fail(`stage ${s.id} has an unknown sink kind ${String((sink as { kind?: unknown })?.kind)}`);
      if (sink.kind === 'jetstream-routed') {
        if (typeof sink.subjectPrefix !== 'string' || !SUBJECT.test(sink.subjectPrefix)) fail(`stage ${s.id} sink subjectPrefix ${JSON.stringify(sink.subjectPrefix)} is invalid`);
      } else if (typeof sink.subject !== 'string' || !SUBJECT.test(sink.subject)) fail(`stage ${s.id} sink subject ${JSON.stringify(sink.subject)} is invalid`);
      if (sink.kind !== 'nats' && (typeof sink.stream !== 'string' || !STREAM_NAME.test(sink.stream))) fail(`stage ${s.id} sink stream ${JSON.stringify(sink.stream)} is invalid`);
      if (sink.sideOutput !== undefined && !isValidId(sink.sideOutput)) fail(`stage ${s.id} sink side output ${JSON.stringify(sink.sideOutput)} is not a valid id`);
      if (sink.kind !== 'nats' && sink.delivery !== undefined && sink.delivery !== 'exactly-once' && sink.delivery !== 'at-least-once') {
        fail(`stage ${s.id} sink delivery ${JSON.stringify(sink.delivery)} is not "exactly-once" or "at-least-once"`);
      }
    }
    if (!Array.isArray(s.states) || !Array.isArray(s.features)) fail(`stage ${s.id} states and features must be arrays`);
    const stateNames = new Set<string>();
    for (const st of s.states) {
      if (typeof st?.name !== 'string' || st.name.length === 0 || st.name.length > 200) fail(`stage ${s.id} has a state without a valid name`);
      if (!STATE_KINDS.includes(st.kind)) fail(`state ${st.name} has unknown kind ${String(st.kind)}`);
      if (st.ttlMs !== undefined && (!Number.isSafeInteger(st.ttlMs) || st.ttlMs <= 0)) fail(`state ${st.name} ttlMs ${String(st.ttlMs)} is not a positive integer`);
      // NUL-prefixed names are the runtime's feature metadata and history (worker/feature-state.ts);
      // other control characters mark the runtime's own declared states (timers, windows).
      if (st.name.startsWith('\u0000')) fail(`stage ${s.id} state ${JSON.stringify(st.name)} starts with NUL, which is reserved for the runtime`);
      if (stateNames.has(st.name)) fail(`stage ${s.id} declares state ${st.name} twice`);
      stateNames.add(st.name);
    }
    if (s.kind === 'source' && s.states.length > 0) fail(`the source stage ${s.id} cannot hold keyed state`);
    for (const f of s.features) {
      if (!isValidId(f?.name)) fail(`stage ${s.id} feature name ${JSON.stringify(f?.name)} is not a valid id`);
      if (!stateNames.has(f.state)) fail(`feature ${f.name} serves state ${f.state}, which stage ${s.id} does not declare`);
      if (f.history !== undefined) {
        const r = (f.history as { retentionMs?: unknown } | null)?.retentionMs;
        if (typeof r !== 'number' || !Number.isSafeInteger(r) || r <= 0 || r > MAX_HISTORY_RETENTION_MS) {
          fail(`feature ${f.name} history.retentionMs ${JSON.stringify(r)} must be an integer in 1..${MAX_HISTORY_RETENTION_MS} ms`);
        }
      }
    }
  }
  const features = stages.flatMap((s) => s.features.map((f) => f.name));
  if (new Set(features).size !== features.length) fail('a feature name appears twice');
}

/** Finds the stage that serves a feature. */
export function findFeature(manifest: JobManifest, feature: string): { stage: StageSpec; spec: FeatureSpec; state: StateSpec } | undefined {
  for (const stage of manifest.stages) {
    const spec = stage.features.find((f) => f.name === feature);
    if (spec) return { stage, spec, state: stage.states.find((s) => s.name === spec.state)! };
  }
  return undefined;
}
