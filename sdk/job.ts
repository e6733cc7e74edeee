// The typed job builder. A job is a linear pipeline: one source, stateless operators, keyBy
// shuffles into keyed process stages, sinks at the end. Stages are cut at every keyBy; the
// operators between two shuffles are chained in one task (ARCHITECTURE.md, "Actors, tasks and
// channels"). `eddy build` calls manifest() at build time; workers call plan() to get the
// functions, in the same order as the manifest.
import { MANIFEST_FORMAT_VERSION, asyncSpecProblem, validateManifest, type AsyncOperatorSpec, type EventTimeSpec, type JobManifest, type OperatorKind, type SinkSpec, type StageSpec } from '../core/manifest.ts';
import type { RestartStrategySpec } from '../core/restart-strategy-spec.ts';
import type { OnTimerFunction, ProcessFunction } from './context.ts';
import type { AggregateFunction, StateDescriptor } from './state.ts';
import { LATE_TAG, windowOperator, type WindowFunction, type WindowResult } from './window-operator.ts';
import type { TimeWindow, WindowAssigner } from './windows.ts';

export interface JobOptions {
  /** Key groups of every keyed stage; fixed for the job's life. @default 128 */
  maxParallelism?: number;
  /** A record whose user function throws: fail the job, or send it to the dead-letter subject. @default "fail" */
  errorPolicy?: 'fail' | 'dead-letter';
  /**
   * What happens when user code fails under the "fail" error policy: `none`, `fixed-delay`,
   * `exponential-backoff` or `failure-rate` (Flink's strategies).
   * @default { kind: 'exponential-backoff', initialDelayMs: 500, maxDelayMs: 30000, multiplier: 2, jitter: 0.1, resetAfterMs: 60000 } (the coordinator's DEFAULT_RESTART_STRATEGY)
   */
  restartStrategy?: RestartStrategySpec;
}

export interface SourceOptions<T = unknown> {
  /** Subject partitions `<stream>.<p>` (source splits). @default 4 */
  partitions?: number;
  /** Top-level JSON field producers partition by, so that one key stays in order. */
  key?: string;
  /**
   * Top-level JSON field holding the record's event time in ms since the epoch. Absent (or a
   * record without a finite number there): the time JetStream stored the message. Features report
   * it as the event time of their last update, and history is versioned by it.
   */
  timestampField?: string;
  /**
   * The event time of a record in ms since the epoch (an integer >= 0). With it, records carry
   * event time and the source generates watermarks. A record for which it throws or returns
   * something else goes to the dead-letter subject.
   */
  timestamp?: (event: T) => number;
  /** Watermarks of each source split; needs `timestamp`. @default { maxOutOfOrdernessMs: 0 } */
  watermark?: WatermarkOptions;
}

/**
 * Bounded-out-of-orderness watermarks, per source split: after a record with event time t, the
 * split's watermark is (largest t seen) - maxOutOfOrdernessMs - 1, so records up to
 * maxOutOfOrdernessMs behind the largest are still on time.
 */
export interface WatermarkOptions {
  /** How far behind the largest event time seen a record may be and still be on time. @default 0 */
  maxOutOfOrdernessMs?: number;
  /**
   * A split without records for this long is marked idle and stops holding the watermark of
   * the stages after it back, until it reads a record again. @default undefined (never idle)
   */
  idleTimeoutMs?: number;
  /** How often a split sends its watermark when it advanced. @default 200 */
  intervalMs?: number;
}

export interface ProcessOptions<O = unknown> {
  /** Keyed state the function uses. */
  state?: StateDescriptor[];
  /**
   * Called when a timer registered through ctx.timers fires, in order with the key's records.
   * Event-time timers fire when the watermark reaches their time, processing-time ones from the
   * worker's clock.
   */
  onTimer?: OnTimerFunction<O>;
  /**
   * Keyed state served by FeatureService, by feature name; the entity id is the key. Give
   * `{ state, history: { retentionMs } }` to keep the feature's versions for retentionMs of event
   * time (as-of reads); a bare descriptor keeps only the current value.
   */
  features?: Record<string, StateDescriptor | FeatureDeclaration>;
}

/** A feature with options. */
export interface FeatureDeclaration {
  state: StateDescriptor;
  /** Keep versions for as-of reads, for retentionMs of event time before the key's newest version. */
  history?: { retentionMs: number };
}

function featureState(d: StateDescriptor | FeatureDeclaration): StateDescriptor {
  return 'kind' in d ? d : d.state;
}

/** An operator with its user function, as the worker runs it. */
export interface OperatorImpl {
  kind: OperatorKind;
  name: string;
  fn: (...args: never[]) => unknown;
  /** process only: the onTimer callback. */
  onTimer?: (...args: never[]) => unknown;
  /** asyncMap only: its options, defaults applied. */
  async?: AsyncOperatorSpec;
}

export interface StagePlan {
  spec: StageSpec;
  operators: OperatorImpl[];
  /** Source stage only: the timestamp assigner. */
  timestamp?: (event: unknown) => number;
}

export interface JobPlan {
  manifest: JobManifest;
  stages: StagePlan[];
}

interface Chain {
  name: string;
  options: Required<Omit<JobOptions, 'restartStrategy'>> & Pick<JobOptions, 'restartStrategy'>;
  source?: { stream: string; partitions: number; partitionKey?: string; eventTime?: EventTimeSpec };
  timestamp?: (event: unknown) => number;
  stages: Array<{ spec: StageSpec; operators: OperatorImpl[] }>;
  /** Bumped on every append; a stream handle whose position is stale would branch. */
  position: number;
  closed: boolean;
}

export class Job {
  readonly #chain: Chain;

  constructor(name: string, options: JobOptions = {}) {
    this.#chain = {
      name,
      options: {
        maxParallelism: options.maxParallelism ?? 128,
        errorPolicy: options.errorPolicy ?? 'fail',
        ...(options.restartStrategy !== undefined && { restartStrategy: structuredClone(options.restartStrategy) }),
      },
      stages: [],
      position: 0,
      closed: false,
    };
  }

  get name(): string {
    return this.#chain.name;
  }

  /** Reads JSON records from a JetStream stream `<stream>` with subjects `<stream>.<partition>`. */
  source<T = unknown>(stream: string, options: SourceOptions<T> = {}): DataStream<T> {
    if (this.#chain.source) throw new TypeError(`job ${this.#chain.name} already has a source; one source per job in this version`);
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
    this.#chain.source = { stream, partitions: options.partitions ?? 4, ...(options.key ? { partitionKey: options.key } : {}), ...(eventTime && { eventTime }), ...(options.timestampField ? { timestampField: options.timestampField } : {}) };
    if (options.timestamp) this.#chain.timestamp = options.timestamp as (event: unknown) => number;
    this.#chain.stages.push({ spec: emptyStage(`source-${stream}`, 'source'), operators: [] });
    return new DataStream<T>(this.#chain, this.#chain.position);
  }

  /** The job graph, validated. Pure: the coordinator receives this and never runs user code. */
  manifest(): JobManifest {
    const c = this.#chain;
    if (!c.source) throw new TypeError(`job ${c.name} has no source`);
    const last = c.stages[c.stages.length - 1]!;
    if (last.spec.shuffleTo !== undefined) throw new TypeError(`job ${c.name} ends with keyBy: add a process stage after it`);
    const manifest: JobManifest = {
      formatVersion: MANIFEST_FORMAT_VERSION,
      name: c.name,
      maxParallelism: c.options.maxParallelism,
      errorPolicy: c.options.errorPolicy,
      // Only when given: absent, the coordinator applies its default, which may improve later.
      ...(c.options.restartStrategy !== undefined && { restartStrategy: structuredClone(c.options.restartStrategy) }),
      source: { ...c.source, format: 'json' },
      stages: c.stages.map((s) => structuredClone(s.spec)),
    };
    validateManifest(manifest);
    return manifest;
  }

  /** For the runtime: the manifest with each stage's operators and functions. */
  plan(): JobPlan {
    const stages: StagePlan[] = this.#chain.stages.map((s) => ({ spec: structuredClone(s.spec), operators: [...s.operators] }));
    if (this.#chain.timestamp) stages[0]!.timestamp = this.#chain.timestamp;
    return { manifest: this.manifest(), stages };
  }
}

/** Starts a job definition; the module's default export must be the returned Job. */
export function job(name: string, options?: JobOptions): Job {
  return new Job(name, options);
}

export class DataStream<T> {
  protected readonly chain: Chain;
  protected readonly position: number;

  constructor(chain: Chain, position: number) {
    this.chain = chain;
    this.position = position;
  }

  map<U>(fn: (value: T) => U, name?: string): DataStream<U> {
    return this.append('map', fn, name);
  }

  filter<S extends T>(fn: (value: T) => value is S, name?: string): DataStream<S>;
  filter(fn: (value: T) => boolean, name?: string): DataStream<T>;
  filter(fn: (value: T) => boolean, name?: string): DataStream<T> {
    return this.append('filter', fn, name);
  }

  flatMap<U>(fn: (value: T) => Iterable<U>, name?: string): DataStream<U> {
    return this.append('flatMap', fn, name);
  }

  /**
   * Calls an asynchronous function per record (an HTTP lookup, a database read) with up to
   * `capacity` calls in flight per task, a time-out, retries with exponential back-off, and a
   * choice of what happens after the last attempt fails (see AsyncMapOptions). Results are
   * emitted in input order (`ordered`, the default) or as they complete, but never across a
   * checkpoint barrier or a watermark.
   */
  asyncMap<U>(fn: AsyncFunction<T, U>, options: AsyncMapOptions = {}, name?: string): DataStream<U> {
    const spec = compileAsyncMapOptions(options, this.chain.options.errorPolicy);
    const out = this.append<U>('asyncMap', fn, name);
    const stage = this.chain.stages[this.chain.stages.length - 1]!;
    stage.spec.operators[stage.spec.operators.length - 1]!.async = spec;
    stage.operators[stage.operators.length - 1]!.async = spec;
    return out;
  }

  /** Shuffles by key: records of one key meet in one actor, in order. */
  keyBy(fn: (value: T) => string | number, name?: string): KeyedStream<T> {
    this.append('keyBy', fn, name);
    return new KeyedStream<T>(this.chain, this.chain.position);
  }

  /** Sends the side output `tag` of the stage that produced this stream (ctx.output(tag, ...)) to a sink. */
  sideSink(tag: string, spec: SinkSpec): this {
    if (this.position !== this.chain.position) throw new TypeError('sideSink: this stream already has a downstream operator');
    this.chain.stages[this.chain.stages.length - 1]!.spec.sinks.push({ ...spec, sideOutput: tag });
    return this;
  }

  /** Sends this stream's records to a sink. A pipeline may end in several sinks. */
  sink(spec: SinkSpec): this {
    this.checkTail('sink');
    this.chain.stages[this.chain.stages.length - 1]!.spec.sinks.push({ ...spec });
    this.chain.closed = true;
    return this;
  }

  protected checkTail(what: string): void {
    if (this.position !== this.chain.position) {
      throw new TypeError(`${what}: this stream already has a downstream operator; branching a stream is not supported in this version`);
    }
    if (this.chain.closed && what !== 'sink') throw new TypeError(`${what}: operators cannot follow a sink`);
  }

  protected append<U>(kind: OperatorKind, fn: (...args: never[]) => unknown, name: string | undefined): DataStream<U> {
    this.checkTail(kind);
    if (typeof fn !== 'function') throw new TypeError(`${kind} needs a function`);
    const stage = this.chain.stages[this.chain.stages.length - 1]!;
    stage.operators.push({ kind, name: name ?? `${kind}-${stage.operators.length}`, fn });
    stage.spec.operators.push({ kind, name: name ?? `${kind}-${stage.spec.operators.length}` });
    this.chain.position++;
    return new DataStream<U>(this.chain, this.chain.position);
  }
}

/** What an asyncMap function gets besides the record. */
export interface AsyncContext {
  /** Aborted when the attempt times out or the task stops: pass it to fetch() and the like. */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
}

export type AsyncFunction<T, U> = (value: T, ctx: AsyncContext) => Promise<U>;

export interface AsyncMapOptions {
  /** Emit results in input order; false: as they complete (never across a barrier or watermark). @default true */
  ordered?: boolean;
  /** Records in the operator at once per task (in flight, backing off, or waiting for their turn to be emitted). @default 100 */
  capacity?: number;
  /** Time limit of one attempt; then its signal is aborted and the attempt counts as failed. @default 10000 */
  timeoutMs?: number;
  /** Retries after a failed attempt, with exponential back-off. @default no retry */
  retry?: AsyncRetryOptions;
  /** After the last attempt: fail the job (its restart strategy applies) or dead-letter the record with the reason. @default the job's errorPolicy */
  onFailure?: 'fail' | 'dead-letter';
}

export interface AsyncRetryOptions {
  /** Attempts in all, the first included. @default 3 */
  maxAttempts?: number;
  /** Delay before the first retry. @default 100 */
  initialDelayMs?: number;
  /** Ceiling of any delay. @default 10000 */
  maxDelayMs?: number;
  /** Each delay is the previous one times this. @default 2 */
  multiplier?: number;
  /** 0..1: each delay is randomised by ± this fraction. @default 0.1 */
  jitter?: number;
}

/** Applies defaults and validates, so a mistake fails at build time. */
function compileAsyncMapOptions(o: AsyncMapOptions, errorPolicy: 'fail' | 'dead-letter'): AsyncOperatorSpec {
  const r = o.retry;
  const spec: AsyncOperatorSpec = {
    ordered: o.ordered ?? true,
    capacity: o.capacity ?? 100,
    timeoutMs: o.timeoutMs ?? 10_000,
    retry: {
      maxAttempts: r === undefined ? 1 : (r.maxAttempts ?? 3),
      initialDelayMs: r?.initialDelayMs ?? 100,
      maxDelayMs: r?.maxDelayMs ?? Math.max(10_000, r?.initialDelayMs ?? 0),
      multiplier: r?.multiplier ?? 2,
      jitter: r?.jitter ?? 0.1,
    },
    onFailure: o.onFailure ?? errorPolicy,
  };
  const problem = asyncSpecProblem(spec);
  if (problem !== undefined) throw new TypeError(`asyncMap: ${problem}`);
  return spec;
}

export class KeyedStream<T> {
  readonly #chain: Chain;
  readonly #position: number;

  constructor(chain: Chain, position: number) {
    this.#chain = chain;
    this.#position = position;
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
    if (options.onTimer !== undefined && typeof options.onTimer !== 'function') throw new TypeError(`process ${name}: onTimer must be a function`);
    if (this.#position !== this.#chain.position) throw new TypeError('process: this keyed stream already has a downstream operator');
    const prev = this.#chain.stages[this.#chain.stages.length - 1]!;
    const states = [...(options.state ?? [])];
    for (const f of Object.values(options.features ?? {})) {
      const d = featureState(f);
      if (!states.includes(d)) states.push(d);
    }
    const spec = emptyStage(name, 'keyed');
    spec.states = states.map((d) => ({ name: d.name, kind: d.kind, ...(d.ttlMs !== undefined && { ttlMs: d.ttlMs }) }));
    spec.features = Object.entries(options.features ?? {}).map(([feature, f]) => ({
      name: feature,
      state: featureState(f).name,
      ...('kind' in f || f.history === undefined ? {} : { history: { retentionMs: f.history.retentionMs } }),
    }));
    spec.operators.push({ kind: 'process', name });
    prev.spec.shuffleTo = name;
    this.#chain.stages.push({ spec, operators: [{ kind: 'process', name, fn: fn as OperatorImpl['fn'], ...(options.onTimer && { onTimer: options.onTimer as OperatorImpl['fn'] }) }] });
    this.#chain.position++;
    return new DataStream<O>(this.#chain, this.#chain.position);
  }
}

export interface WindowOptions {
  /**
   * How long after a window fired records for it are still accepted; each fires the window again
   * with the updated contents. @default 0
   */
  allowedLatenessMs?: number;
  /** Where late records go (records whose every window is past its lateness); absent: dropped. */
  lateSink?: SinkSpec;
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

function emptyStage(id: string, kind: StageSpec['kind']): StageSpec {
  return { id, kind, operators: [], sinks: [], states: [], features: [] };
}
