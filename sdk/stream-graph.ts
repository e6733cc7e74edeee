// The job graph under construction, shared by every stream handle of one job, and the steps the
// handles take on it: appending an operator after a stream's ends, making a keyed stage. Internal
// to the SDK: a job author sees only the handles (sdk/streams.ts).
import type { OperatorKind, SourceSpec, StageInputKind, StageSpec } from '../core/manifest.ts';
import type { FeatureDeclaration, JobOptions, ProcessOptions } from './options.ts';
import type { OperatorImpl, StagePlan } from './plan.ts';
import type { MapStateDescriptor, StateDescriptor } from './state.ts';
import type { DataStream } from './streams.ts';

export interface Graph {
  name: string;
  options: Required<Omit<JobOptions, 'restartStrategy' | 'limits' | 'env' | 'maxRecordAttempts'>> & Pick<JobOptions, 'restartStrategy' | 'limits' | 'env' | 'maxRecordAttempts'>;
  sources: SourceSpec[];
  stages: StagePlan[];
  /** Keyed and broadcast streams handed out and not used yet: manifest() names them. */
  dangling: Map<object, string>;
  /**
   * A DataStream handle over `ends` (sdk/data-stream.ts), made by the Job: the keyed handles make
   * their output streams through it, so that they need not import the module that imports them.
   */
  stream(ends: readonly End[]): DataStream<unknown>;
}

/**
 * Where a stream's records come out: an operator of a stage (undefined: a source stage's own
 * records), or a side output of a process operator. A stream is a list of them (a union has several).
 */
export interface End {
  stage: number;
  operator: number | undefined;
  side?: string;
}

/** What a stream handle is: its graph, its ends, and what a keyed or broadcast stream brings to a stage's input. */
export interface StreamInternals {
  graph: Graph;
  ends: readonly End[];
  kind: 'data' | StageInputKind;
  /** keyed and broadcast: the name given to keyBy or broadcast(). */
  name?: string | undefined;
  /** keyed: the key selector. */
  selector?: (value: unknown) => string | number;
}

/** The internals behind each stream handle, for the other handles (never on the handle itself). */
const internals = new WeakMap<object, StreamInternals>();

export function register(handle: object, i: StreamInternals): void {
  internals.set(handle, { ...i, ends: [...i.ends] });
}

export function internalsOf(stream: unknown, what: string): StreamInternals {
  const i = typeof stream === 'object' && stream !== null ? internals.get(stream) : undefined;
  if (!i) throw new TypeError(`${what}: expected a stream of this SDK, got ${describe(stream)}`);
  return i;
}

/** Whether a value is a stream handle of this SDK of that kind. */
export function isStream(v: unknown, kind: StreamInternals['kind']): boolean {
  return typeof v === 'object' && v !== null && internals.get(v)?.kind === kind;
}

export function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return v.constructor?.name ?? 'an object';
  return typeof v;
}

export function checkStageId(g: Graph, id: string): void {
  if (g.stages.some((s) => s.spec.id === id)) throw new TypeError(`job ${g.name} already has a stage named ${id}; stage names must be unique`);
}

/** Adds an operator after every end; returns the new ends. */
export function appendOperator(g: Graph, ends: readonly End[], kind: OperatorKind, name: string | undefined, fn: (...args: never[]) => unknown, to?: { stage: string; input: number }): End[] {
  return ends.map((end) => {
    const stage = g.stages[end.stage]!;
    const index = stage.operators.length;
    const opName = name ?? `${kind}-${index}`;
    stage.operators.push({ kind, name: opName, fn });
    stage.spec.operators.push({
      kind,
      name: opName,
      ...(end.operator !== undefined && { input: end.operator }),
      ...(end.side !== undefined && { sideOutput: end.side }),
      ...(to && { to: { ...to } }),
    });
    return { stage: end.stage, operator: index };
  });
}

/** One input of a keyed stage being made. */
export interface StageInput {
  kind: StageInputKind;
  ends: readonly End[];
  name: string | undefined;
  fn: (...args: never[]) => unknown;
}

/** A keyed or broadcast stream handle as a stage's input. */
export function stageInput(stream: object, what: string): StageInput {
  const i = internalsOf(stream, what);
  if (i.kind === 'data') throw new TypeError(`${what}: a stream that is not keyed is no stage input`);
  return { kind: i.kind, ends: i.ends, name: i.name, fn: (i.selector ?? noop) as OperatorImpl['fn'] };
}

const noop = (): void => undefined;

function featureState(d: StateDescriptor | FeatureDeclaration): StateDescriptor {
  return 'kind' in d ? d : d.state;
}

/**
 * Makes a keyed stage `name` with these inputs: a keyBy (or broadcast) operator after every end
 * of each input, sending to the new stage's input.
 */
export function keyedStage(g: Graph, name: string, inputs: StageInput[], impl: Omit<OperatorImpl, 'kind' | 'name'>, options: ProcessOptions<unknown>, broadcastStates: readonly MapStateDescriptor<unknown>[] = []): DataStream<unknown> {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('process needs a stage name');
  if (options.onTimer !== undefined && typeof options.onTimer !== 'function') throw new TypeError(`process ${name}: onTimer must be a function`);
  for (const f of impl.inputs ?? []) if (typeof f !== 'function') throw new TypeError(`process ${name}: every process function must be a function`);
  checkStageId(g, name);
  const states = [...(options.state ?? [])];
  for (const f of Object.values(options.features ?? {})) {
    const d = featureState(f);
    if (!states.includes(d)) states.push(d);
  }
  for (const d of broadcastStates) {
    if (d?.kind !== 'map') throw new TypeError(`process ${name}: broadcast state ${String(d?.name)} must be a map state (mapState(...))`);
    if (states.some((s) => s.name === d.name)) throw new TypeError(`process ${name}: state ${d.name} is declared both as keyed state and as broadcast state`);
    states.push(d as StateDescriptor);
  }
  const spec: StageSpec = {
    id: name,
    kind: 'keyed',
    inputs: inputs.map((i) => i.kind),
    operators: [{ kind: 'process', name }],
    sinks: [],
    states: states.map((d) => ({ name: d.name, kind: d.kind, ...(d.ttlMs !== undefined && { ttlMs: d.ttlMs }) })),
    ...(broadcastStates.length > 0 && { broadcastStates: broadcastStates.map((d) => d.name) }),
    features: Object.entries(options.features ?? {}).map(([feature, f]) => ({
      name: feature,
      state: featureState(f).name,
      ...('kind' in f || f.history === undefined ? {} : { history: { retentionMs: f.history.retentionMs } }),
    })),
  };
  // Edges first (the upstream operators), then the stage: stages stay in topological order.
  inputs.forEach((input, index) => {
    for (const e of input.ends) if (e.stage >= g.stages.length) throw new TypeError(`process ${name}: input ${index} is not a stream of job ${g.name}`);
    appendOperator(g, input.ends, input.kind === 'keyed' ? 'keyBy' : 'broadcast', input.name, input.fn, { stage: name, input: index });
  });
  g.stages.push({ spec, operators: [{ kind: 'process', name, ...impl, ...(options.onTimer && { onTimer: options.onTimer as OperatorImpl['fn'] }) }] });
  return g.stream([{ stage: g.stages.length - 1, operator: 0 }]);
}
