// The typed job builder (docs/ARCHITECTURE.md, "Actors, tasks and channels"). A job is a graph:
// sources, stateless operators, keyBy shuffles into keyed process stages (one input, two connected
// keyed inputs, or a keyed input connected to a broadcast stream), sinks. Stages are cut at every
// keyBy/broadcast; the operators between two shuffles are chained in one task. Inside a stage the
// operators form a tree: a stream may feed several downstreams (branching), and a union is no
// operator at all: what follows it is chained into every upstream stage. The stream handles are
// in sdk/streams.ts (their contracts) and a file per kind. `eddy build` calls manifest() at build
// time; workers call plan() to get the functions, in the same order as the manifest.
import { MANIFEST_FORMAT_VERSION, validateManifest, type EventTimeSpec, type JobManifest } from '../core/manifest.ts';
import { compileStartAt } from '../core/start-at.ts';
import { DataStream } from './data-stream.ts';
import type { GeneratorSource } from './generator.ts';
import type { JobOptions, SourceOptions } from './options.ts';
import type { JobPlan, StagePlan } from './plan.ts';
import { checkStageId, type Graph } from './stream-graph.ts';
import type * as api from './streams.ts';

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
      stream: (ends) => new DataStream<unknown>(this.#graph, ends),
    };
  }

  get name(): string {
    return this.#graph.name;
  }

  /**
   * Reads JSON records from a JetStream stream `<stream>` with subjects `<stream>.<partition>`.
   * A job may have several sources (distinct streams); each is its own source stage.
   */
  source<T = unknown>(stream: string, options?: SourceOptions<T>): api.DataStream<T>;
  /** Records made inside the job by a generator (datagen(), nexmark()): no stream, splits resume from their checkpointed position. */
  source<T>(generator: GeneratorSource<T>): api.DataStream<T>;
  source<T = unknown>(stream: string | GeneratorSource<T>, options: SourceOptions<T> = {}): api.DataStream<T> {
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
