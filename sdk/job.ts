// The typed job builder. A job is a graph: sources, stateless operators, keyBy shuffles into
// keyed process stages (one input, two connected keyed inputs, or a keyed input connected to a
// broadcast stream), sinks. Stages are cut at every keyBy/broadcast; the operators between two
// shuffles are chained in one task (docs/ARCHITECTURE.md, "Actors, tasks and channels"). Inside a
// stage the operators form a tree: a stream may feed several downstreams (branching), and a
// union is no operator at all: what follows it is chained into every upstream stage. `eddy
// build` calls manifest() at build time; workers call plan() to get the functions, in the same
// order as the manifest.
import {
  MANIFEST_FORMAT_VERSION,
  validateManifest,
  type EventTimeSpec,
  type JobManifest,
  type OperatorKind,
  type SinkSpec,
  type SourceSpec,
  type StageInputKind,
  type StageSinkSpec,
  type StageSpec,
} from '../core/manifest.ts';
import type { CoProcessFunction, KeyedBroadcastProcessFunction, ProcessFunction } from './context.ts';
import type { AggregateFunction, MapStateDescriptor, StateDescriptor } from './state.ts';
import { compileStartAt } from '../core/start-at.ts';
import { LATE_TAG, windowOperator, type WindowFunction, type WindowResult } from './window-operator.ts';
import type { BroadcastProcessOptions, FeatureDeclaration, JobOptions, ProcessOptions, SourceOptions, WindowOptions } from './options.ts';
import type { JobPlan, OperatorImpl, StagePlan } from './plan.ts';
import { compileAsyncMapOptions, type AsyncFunction, type AsyncMapOptions } from './async-map.ts';
import type { TimeWindow, WindowAssigner } from './windows.ts';
import type { GeneratorSource } from './generator.ts';

function featureState(d: StateDescriptor | FeatureDeclaration): StateDescriptor {
  return 'kind' in d ? d : d.state;
}

/** The graph under construction, shared by every stream handle of one job. */
interface Graph {
  name: string;
  options: Required<Omit<JobOptions, 'restartStrategy' | 'limits' | 'env' | 'maxRecordAttempts'>> & Pick<JobOptions, 'restartStrategy' | 'limits' | 'env' | 'maxRecordAttempts'>;
  sources: SourceSpec[];
  stages: StagePlan[];
  /** Keyed and broadcast streams handed out and not used yet: manifest() names them. */
  dangling: Map<object, string>;
}

/**
 * Where a stream's records come out: an operator of a stage (undefined: a source stage's own
 * records), or a side output of a process operator. A stream is a list of them (a union has several).
 */
interface End {
  stage: number;
  operator: number | undefined;
  side?: string;
}

const noop = (): void => undefined;

export class Job {
  readonly #graph: Graph;

  constructor(name: string, options: JobOptions = {}) {
    this.#graph = {
      name,
      options: {
        maxParallelism: options.maxParallelism ?? 128,
        errorPolicy: options.errorPolicy ?? 'fail',
        ...(options.restartStrategy !== undefined && { restartStrategy: structuredClone(options.restartStrategy) }),
        ...(options.limits !== undefined && { limits: { ...options.limits } }),
        ...(options.maxRecordAttempts !== undefined && { maxRecordAttempts: options.maxRecordAttempts }),
        ...(options.env !== undefined && { env: [...options.env] }),
      },
      sources: [],
      stages: [],
      dangling: new Map(),
    };
  }

  get name(): string {
    return this.#graph.name;
  }

  /**
   * Reads JSON records from a JetStream stream `<stream>` with subjects `<stream>.<partition>`.
   * A job may have several sources (distinct streams); each is its own source stage.
   */
  source<T = unknown>(stream: string, options?: SourceOptions<T>): DataStream<T>;
  /** Records made inside the job by a generator (datagen(), nexmark()): no stream, splits resume from their checkpointed position. */
  source<T>(generator: GeneratorSource<T>): DataStream<T>;
  source<T = unknown>(stream: string | GeneratorSource<T>, options: SourceOptions<T> = {}): DataStream<T> {
    if (typeof stream === 'object' && stream?.kind === 'generator') return this.#generatorSource(stream);
    const g = this.#graph;
    if (typeof stream !== 'string' || stream.length === 0) throw new TypeError(`job ${g.name}: a source needs a stream name`);
    if (g.sources.some((s) => s.stream === stream)) throw new TypeError(`job ${g.name} already has a source reading stream ${stream}; read each stream once and branch the stream instead`);
    if (options.watermark !== undefined && options.timestamp === undefined) throw new TypeError(`source ${stream}: watermark needs a timestamp assigner`);
    if (options.timestamp !== undefined && typeof options.timestamp !== 'function') throw new TypeError(`source ${stream}: timestamp must be a function`);
    const w = options.watermark ?? {};
    const eventTime: EventTimeSpec | undefined = options.timestamp === undefined
      ? undefined
      : {
          maxOutOfOrdernessMs: w.maxOutOfOrdernessMs ?? 0,
          watermarkIntervalMs: w.intervalMs ?? 200,
          ...(w.idleTimeoutMs !== undefined && { idleTimeoutMs: w.idleTimeoutMs }),
        };
    const startAt = options.startAt === undefined ? undefined : compileStartAt(options.startAt, `source ${stream}`);
    const source = g.sources.length;
    g.sources.push({
      stream,
      partitions: options.partitions ?? 4,
      ...(options.key ? { partitionKey: options.key } : {}),
      format: 'json',
      ...(eventTime && { eventTime }),
      ...(options.timestampField ? { timestampField: options.timestampField } : {}),
      ...(startAt && { startAt }),
    });
    const stage: StagePlan = { spec: { id: `source-${stream}`, kind: 'source', source, operators: [], sinks: [], states: [], features: [] }, operators: [] };
    if (options.timestamp) stage.timestamp = options.timestamp as (event: unknown) => number;
    checkStageId(g, stage.spec.id);
    g.stages.push(stage);
    return new DataStream<T>(g, [{ stage: g.stages.length - 1, operator: undefined }]);
  }

  #generatorSource<T>(gen: GeneratorSource<T>): DataStream<T> {
    const g = this.#graph;
    if (g.sources.some((s) => s.stream === gen.name)) throw new TypeError(`job ${g.name} already has a source named ${gen.name}`);
    const w = gen.watermark ?? {};
    const source = g.sources.length;
    g.sources.push({
      stream: gen.name,
      partitions: gen.partitions,
      format: 'json',
      eventTime: { maxOutOfOrdernessMs: w.maxOutOfOrdernessMs ?? 0, watermarkIntervalMs: w.intervalMs ?? 200, ...(w.idleTimeoutMs !== undefined && { idleTimeoutMs: w.idleTimeoutMs }) },
      generator: structuredClone(gen.spec),
    });
    const stage: StagePlan = {
      spec: { id: `source-${gen.name}`, kind: 'source', source, operators: [], sinks: [], states: [], features: [] },
      operators: [],
      generator: { eventAt: gen.eventAt, timeAt: gen.timeAt },
    };
    checkStageId(g, stage.spec.id);
    g.stages.push(stage);
    return new DataStream<T>(g, [{ stage: g.stages.length - 1, operator: undefined }]);
  }

  /** The job graph, validated. Pure: the coordinator receives this and never runs user code. */
  manifest(): JobManifest {
    const g = this.#graph;
    if (g.sources.length === 0) throw new TypeError(`job ${g.name} has no source`);
    for (const what of g.dangling.values()) throw new TypeError(`job ${g.name}: ${what}`);
    const manifest: JobManifest = {
      formatVersion: MANIFEST_FORMAT_VERSION,
      name: g.name,
      maxParallelism: g.options.maxParallelism,
      errorPolicy: g.options.errorPolicy,
      // Only when given: absent, the coordinator applies its default, which may improve later.
      ...(g.options.restartStrategy !== undefined && { restartStrategy: structuredClone(g.options.restartStrategy) }),
      sources: structuredClone(g.sources),
      stages: g.stages.map((s) => structuredClone(s.spec)),
      ...(g.options.limits !== undefined && { limits: { ...g.options.limits } }),
      ...(g.options.maxRecordAttempts !== undefined && { maxRecordAttempts: g.options.maxRecordAttempts }),
      ...(g.options.env !== undefined && { env: [...g.options.env] }),
    };
    validateManifest(manifest);
    return manifest;
  }

  /** For the runtime: the manifest with each stage's operators and functions. */
  plan(): JobPlan {
    const manifest = this.manifest();
    const stages: StagePlan[] = this.#graph.stages.map((s) => ({ spec: structuredClone(s.spec), operators: [...s.operators], ...(s.timestamp && { timestamp: s.timestamp }), ...(s.generator && { generator: s.generator }) }));
    return { manifest, stages };
  }
}

/** Starts a job definition; the module's default export must be the returned Job. */
export function job(name: string, options?: JobOptions): Job {
  return new Job(name, options);
}

/** The graph and ends behind a stream handle, for the other handle classes of this module. */
const internals = new WeakMap<object, { graph: Graph; ends: readonly End[] }>();

function internalsOf(stream: unknown, what: string): { graph: Graph; ends: readonly End[] } {
  const i = typeof stream === 'object' && stream !== null ? internals.get(stream) : undefined;
  if (!i) throw new TypeError(`${what}: expected a stream of this SDK, got ${describe(stream)}`);
  return i;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return v.constructor?.name ?? 'an object';
  return typeof v;
}

function checkStageId(g: Graph, id: string): void {
  if (g.stages.some((s) => s.spec.id === id)) throw new TypeError(`job ${g.name} already has a stage named ${id}; stage names must be unique`);
}

/** Adds an operator after every end; returns the new ends. */
function appendOperator(g: Graph, ends: readonly End[], kind: OperatorKind, name: string | undefined, fn: (...args: never[]) => unknown, to?: { stage: string; input: number }): End[] {
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

export class DataStream<T> {
  constructor(graph: Graph, ends: readonly End[]) {
    internals.set(this, { graph, ends: [...ends] });
  }

  map<U>(fn: (value: T) => U, name?: string): DataStream<U> {
    return this.#append('map', fn, name);
  }

  filter<S extends T>(fn: (value: T) => value is S, name?: string): DataStream<S>;
  filter(fn: (value: T) => boolean, name?: string): DataStream<T>;
  filter(fn: (value: T) => boolean, name?: string): DataStream<T> {
    return this.#append('filter', fn, name);
  }

  flatMap<U>(fn: (value: T) => Iterable<U>, name?: string): DataStream<U> {
    return this.#append('flatMap', fn, name);
  }

  /**
   * Calls an asynchronous function per record (a lookup, an enrichment service) with up to
   * `capacity` calls in flight per task, a time-out per attempt and retries with back-off; after
   * the last attempt the record fails the job or goes to the dead-letter subject (`onFailure`).
   * Results leave in input order (`ordered`, the default) or as they complete, never across a
   * barrier or watermark; a barrier waits for the records before it.
   */
  asyncMap<U>(fn: AsyncFunction<T, U>, options: AsyncMapOptions = {}, name?: string): DataStream<U> {
    if (typeof fn !== 'function') throw new TypeError('asyncMap needs a function');
    const { graph, ends } = internalsOf(this, 'asyncMap');
    const spec = compileAsyncMapOptions(options, graph.options.errorPolicy);
    const out = appendOperator(graph, ends, 'asyncMap', name, fn as (...args: never[]) => unknown);
    for (const e of out) {
      const stage = graph.stages[e.stage]!;
      stage.operators[e.operator!]!.async = spec;
      stage.spec.operators[e.operator!]!.async = spec;
    }
    return new DataStream<U>(graph, out);
  }

  /**
   * This stream and others of the same element type as one stream. Not an operator: what follows
   * is chained into each upstream stage, and a keyBy after it shuffles all of them into one stage.
   */
  union(...others: DataStream<T>[]): DataStream<T> {
    const { graph, ends } = internalsOf(this, 'union');
    const all = [...ends];
    for (const o of others) {
      const other = internalsOf(o, 'union');
      if (other.graph !== graph) throw new TypeError(`union: the streams belong to different jobs (${graph.name} and ${other.graph.name})`);
      all.push(...other.ends);
    }
    return new DataStream<T>(graph, all);
  }

  /** Shuffles by key: records of one key meet in one actor, in order. */
  keyBy(fn: (value: T) => string | number, name?: string): KeyedStream<T> {
    if (typeof fn !== 'function') throw new TypeError('keyBy needs a function');
    const { graph, ends } = internalsOf(this, 'keyBy');
    return new KeyedStream<T>(graph, ends, fn as (value: unknown) => string | number, name);
  }

  /**
   * Delivers every record of this stream to every key group of the keyed stage it is connected to
   * (keyedStream.connect(broadcastStream)): for rules and configuration that change while the job runs.
   */
  broadcast(name?: string): BroadcastStream<T> {
    const { graph, ends } = internalsOf(this, 'broadcast');
    return new BroadcastStream<T>(graph, ends, name);
  }

  /**
   * Not on a plain stream: connect takes keyed streams. A type error at compile time (the
   * parameter is never), a TypeError saying so at build time for plain JavaScript.
   */
  connect(_other: never): never {
    throw new TypeError('connect: this stream is not keyed; call keyBy on both streams first (or broadcast() the second and connect it to a keyed stream); a broadcast cannot go into a source stage');
  }

  /**
   * The side output `tag` of the process stage that produced this stream (what it sent with
   * ctx.output(tag, value)), as a stream of its own.
   */
  sideOutput<S = unknown>(tag: string): DataStream<S> {
    const { graph, ends } = internalsOf(this, 'sideOutput');
    if (typeof tag !== 'string' || tag.length === 0) throw new TypeError('sideOutput needs a tag');
    for (const e of ends) {
      const op = e.operator === undefined ? undefined : graph.stages[e.stage]!.spec.operators[e.operator];
      if (op?.kind !== 'process' || e.side !== undefined) throw new TypeError(`sideOutput(${tag}): only the stream a process stage returns has side outputs`);
    }
    return new DataStream<S>(graph, ends.map((e) => ({ ...e, side: tag })));
  }

  /** Sends the side output `tag` of the stage that produced this stream (ctx.output(tag, ...)) to a sink. */
  sideSink(tag: string, spec: SinkSpec): this {
    const { graph, ends } = internalsOf(this, 'sideSink');
    for (const e of ends) {
      const stage = graph.stages[e.stage]!;
      if (stage.spec.kind !== 'keyed') throw new TypeError(`sideSink(${tag}): stage ${stage.spec.id} is a source stage, which has no side outputs`);
      stage.spec.sinks.push({ ...spec, input: 0, sideOutput: tag });
    }
    return this;
  }

  /** Sends this stream's records to a sink. A stream may go to several sinks and operators. */
  sink(spec: SinkSpec): this {
    const { graph, ends } = internalsOf(this, 'sink');
    for (const e of ends) {
      const sink: StageSinkSpec = { ...spec };
      if (e.operator !== undefined) sink.input = e.operator;
      if (e.side !== undefined) sink.sideOutput = e.side;
      graph.stages[e.stage]!.spec.sinks.push(sink);
    }
    return this;
  }

  #append<U>(kind: OperatorKind, fn: (...args: never[]) => unknown, name: string | undefined): DataStream<U> {
    if (typeof fn !== 'function') throw new TypeError(`${kind} needs a function`);
    const { graph, ends } = internalsOf(this, kind);
    return new DataStream<U>(graph, appendOperator(graph, ends, kind, name, fn));
  }
}

/** A stream to be delivered to every key group of a keyed stage (DataStream.broadcast()). */
export class BroadcastStream<T> {
  /** Phantom: carries T. Never set. */
  declare readonly __value?: T;
  readonly #name: string | undefined;

  constructor(graph: Graph, ends: readonly End[], name: string | undefined) {
    internals.set(this, { graph, ends: [...ends] });
    this.#name = name;
    graph.dangling.set(this, `a broadcast stream${name ? ` (${name})` : ''} is connected to no keyed stream`);
  }

  /** @internal the operator name given to broadcast(). */
  get operatorName(): string | undefined {
    return this.#name;
  }
}

/** One input of a keyed stage being made. */
interface StageInput {
  kind: StageInputKind;
  ends: readonly End[];
  name: string | undefined;
  fn: (...args: never[]) => unknown;
}

/**
 * Makes a keyed stage `name` with these inputs: a keyBy (or broadcast) operator after every end
 * of each input, sending to the new stage's input.
 */
function keyedStage(g: Graph, name: string, inputs: StageInput[], impl: Omit<OperatorImpl, 'kind' | 'name'>, options: ProcessOptions<unknown>, broadcastStates: readonly MapStateDescriptor<unknown>[] = []): DataStream<unknown> {
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
  return new DataStream<unknown>(g, [{ stage: g.stages.length - 1, operator: 0 }]);
}

export class KeyedStream<T> {
  readonly #selector: (value: unknown) => string | number;
  readonly #name: string | undefined;

  constructor(graph: Graph, ends: readonly End[], selector: (value: unknown) => string | number, name?: string) {
    internals.set(this, { graph, ends: [...ends] });
    this.#selector = selector;
    this.#name = name;
    graph.dangling.set(this, `keyBy${name ? ` ${name}` : ''} has no process stage after it`);
  }

  /** @internal this stream as a keyed input of a stage. */
  get input(): StageInput {
    return { kind: 'keyed', ends: internalsOf(this, 'keyBy').ends, name: this.#name, fn: this.#selector };
  }

  /**
   * Event-time windows per key (tumblingWindows, slidingWindows, sessionWindows). Needs a source
   * with a timestamp assigner; windows fire when the watermark passes their end.
   */
  window(assigner: WindowAssigner, options: WindowOptions = {}): WindowedStream<T> {
    return new WindowedStream<T>(this, assigner, options);
  }

  /**
   * A keyed stage with state: one actor per key group, records of a key processed in order.
   * `name` is the stage id: keep it stable across versions of the job, state is stored under it.
   */
  process<O>(name: string, fn: ProcessFunction<T, O>, options: ProcessOptions<O> = {}): DataStream<O> {
    if (typeof fn !== 'function') throw new TypeError(`process ${String(name)}: the process function must be a function`);
    const { graph } = internalsOf(this, 'process');
    const out = keyedStage(graph, name, [this.input], { fn: fn as OperatorImpl['fn'], inputs: [fn as OperatorImpl['fn']] }, options as ProcessOptions<unknown>);
    graph.dangling.delete(this);
    return out as DataStream<O>;
  }

  /**
   * Connects two keyed streams into one keyed stage (ConnectedStreams.process): records of one
   * key from both meet in one actor, with shared state and timers. Keys are compared as strings.
   * Or connects a broadcast stream (BroadcastConnectedStream.process): its records reach every
   * key group, for rules that change while the job runs.
   */
  connect<U>(other: KeyedStream<U>): ConnectedStreams<T, U>;
  connect<B>(other: BroadcastStream<B>): BroadcastConnectedStream<T, B>;
  connect(other: KeyedStream<unknown> | BroadcastStream<unknown>): ConnectedStreams<T, unknown> | BroadcastConnectedStream<T, unknown> {
    const mine = internalsOf(this, 'connect');
    if (!(other instanceof KeyedStream) && !(other instanceof BroadcastStream)) {
      throw new TypeError(`connect: expected a keyed stream (keyBy) or a broadcast stream (broadcast()), got ${describe(other)}${(other as unknown) instanceof DataStream ? ' (a stream that is not keyed: call keyBy on it first)' : ''}`);
    }
    const theirs = internalsOf(other, 'connect');
    if (theirs.graph !== mine.graph) throw new TypeError(`connect: the streams belong to different jobs (${mine.graph.name} and ${theirs.graph.name})`);
    if (other === (this as unknown)) throw new TypeError('connect: a keyed stream cannot be connected to itself');
    return other instanceof KeyedStream ? new ConnectedStreams<T, unknown>(mine.graph, this, other) : new BroadcastConnectedStream<T, unknown>(mine.graph, this, other);
  }
}

/** Two keyed streams connected (KeyedStream.connect): process makes their shared keyed stage. */
export class ConnectedStreams<A, B> {
  readonly #graph: Graph;
  readonly #first: KeyedStream<A>;
  readonly #second: KeyedStream<B>;

  constructor(graph: Graph, first: KeyedStream<A>, second: KeyedStream<B>) {
    this.#graph = graph;
    this.#first = first;
    this.#second = second;
  }

  /**
   * A keyed stage over both streams: processElement1 gets the first stream's records,
   * processElement2 the second's; state and timers are shared per key. Order is kept within each
   * input; between the two it is arrival order.
   */
  process<O>(name: string, fn: CoProcessFunction<A, B, O>, options: ProcessOptions<O> = {}): DataStream<O> {
    if (typeof fn?.processElement1 !== 'function' || typeof fn.processElement2 !== 'function') throw new TypeError(`process ${String(name)}: a connected stage needs processElement1 and processElement2 functions`);
    const e1 = fn.processElement1.bind(fn) as OperatorImpl['fn'];
    const e2 = fn.processElement2.bind(fn) as OperatorImpl['fn'];
    const out = keyedStage(this.#graph, name, [this.#first.input, this.#second.input], { fn: e1, inputs: [e1, e2] }, options as ProcessOptions<unknown>);
    this.#graph.dangling.delete(this.#first);
    this.#graph.dangling.delete(this.#second);
    return out as DataStream<O>;
  }
}

/** A keyed stream connected to a broadcast stream: process makes the keyed stage. */
export class BroadcastConnectedStream<T, B> {
  readonly #graph: Graph;
  readonly #keyed: KeyedStream<T>;
  readonly #broadcast: BroadcastStream<B>;

  constructor(graph: Graph, keyed: KeyedStream<T>, broadcast: BroadcastStream<B>) {
    this.#graph = graph;
    this.#keyed = keyed;
    this.#broadcast = broadcast;
  }

  /**
   * A keyed stage: processElement per keyed record (broadcast state read-only), and
   * processBroadcastElement once per key group for each broadcast record (broadcast state
   * read-write, bctx.forEachKey to reach the keys). Broadcast state is stored per key group.
   */
  process<O>(name: string, fn: KeyedBroadcastProcessFunction<T, B, O>, options: BroadcastProcessOptions<O> = {}): DataStream<O> {
    if (typeof fn?.processElement !== 'function' || typeof fn.processBroadcastElement !== 'function') throw new TypeError(`process ${String(name)}: a broadcast-connected stage needs processElement and processBroadcastElement functions`);
    const e = fn.processElement.bind(fn) as OperatorImpl['fn'];
    const b = fn.processBroadcastElement.bind(fn) as OperatorImpl['fn'];
    const { broadcastState, ...rest } = options;
    const input: StageInput = { kind: 'broadcast', ends: internalsOf(this.#broadcast, 'connect').ends, name: this.#broadcast.operatorName, fn: noop as OperatorImpl['fn'] };
    const out = keyedStage(this.#graph, name, [this.#keyed.input, input], { fn: e, inputs: [e, b] }, rest as ProcessOptions<unknown>, (broadcastState ?? []) as MapStateDescriptor<unknown>[]);
    this.#graph.dangling.delete(this.#keyed);
    this.#graph.dangling.delete(this.#broadcast);
    return out as DataStream<O>;
  }
}

/** A keyed stream cut into event-time windows; one of reduce, aggregate or process makes the stage. */
export class WindowedStream<T> {
  readonly #keyed: KeyedStream<T>;
  readonly #assigner: WindowAssigner;
  readonly #options: WindowOptions;

  constructor(keyed: KeyedStream<T>, assigner: WindowAssigner, options: WindowOptions) {
    if (options.allowedLatenessMs !== undefined && (!Number.isSafeInteger(options.allowedLatenessMs) || options.allowedLatenessMs < 0)) {
      throw new TypeError(`allowedLatenessMs must be a non-negative integer, got ${String(options.allowedLatenessMs)}`);
    }
    this.#keyed = keyed;
    this.#assigner = assigner;
    this.#options = options;
  }

  /** Folds each window's records with reduce; emits result(value, window, key), by default a WindowResult. */
  reduce<O = WindowResult<T>>(name: string, reduce: (a: T, b: T) => T, result?: (value: T, window: TimeWindow, key: string) => O): DataStream<O> {
    const r = result ?? ((value: T, w: TimeWindow, key: string) => ({ key, start: w.start, end: w.end, value }) as O);
    return this.#stage(name, { kind: 'reduce', reduce, result: r });
  }

  /** Folds each window's records into an accumulator; emits result(getResult(acc), window, key), by default a WindowResult. */
  aggregate<ACC, R, O = WindowResult<R>>(name: string, aggregate: AggregateFunction<T, ACC, R>, result?: (value: R, window: TimeWindow, key: string) => O): DataStream<O> {
    const r = result ?? ((value: R, w: TimeWindow, key: string) => ({ key, start: w.start, end: w.end, value }) as O);
    return this.#stage(name, { kind: 'aggregate', aggregate: aggregate as AggregateFunction<T, unknown, unknown>, result: r as (value: unknown, w: TimeWindow, key: string) => O });
  }

  /** Hands each window's records (in arrival order) to process; emits what it returns. */
  process<O>(name: string, process: (records: T[], window: TimeWindow, key: string) => O[] | Promise<O[]>): DataStream<O> {
    return this.#stage(name, { kind: 'process', process });
  }

  #stage<O>(name: string, fn: WindowFunction<T, O>): DataStream<O> {
    const late = this.#options.lateSink;
    const op = windowOperator(this.#assigner, fn, { allowedLatenessMs: this.#options.allowedLatenessMs ?? 0, lateOutput: late !== undefined });
    const out = this.#keyed.process<O>(name, op.process, { state: [op.state], onTimer: op.onTimer });
    if (late !== undefined) out.sideSink(LATE_TAG, late);
    return out;
  }
}

