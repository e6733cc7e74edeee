// Validation of a manifest received from outside (docs/ARCHITECTURE.md, "Bundles"): every field
// of the format (core/manifest-format.ts) checked, the graph's edges pointing forward and every
// keyed input fed; a problem is an InvalidArgumentError naming it.
import { isValidId } from './ids.ts';
import { InvalidArgumentError } from './errors.ts';
import { restartStrategyProblem } from './restart-strategy-spec.ts';
import { startAtProblem } from './start-at.ts';
import { MANIFEST_FORMAT_VERSION, MAX_HISTORY_RETENTION_MS, MAX_KEY_GROUPS, type FilesSinkSpec, type JobManifest, type StageSpec, type StateKind } from './manifest-format.ts';

const OPERATOR_KINDS: readonly string[] = ['map', 'filter', 'flatMap', 'asyncMap', 'keyBy', 'broadcast', 'process'];
const STATE_KINDS: readonly string[] = ['value', 'map', 'list', 'reducing', 'aggregating'];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

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
