// A stream of records (the contract: DataStream in sdk/streams.ts): stateless operators chained
// into the stage that produced it, unions, sinks and side outputs, and the keyBy or broadcast that
// ends a stage.
import type { OperatorKind, SinkSpec, StageSinkSpec } from '../core/manifest.ts';
import { compileAsyncMapOptions, type AsyncFunction, type AsyncMapOptions } from './async-map.ts';
import { BroadcastStream } from './broadcast-stream.ts';
import { KeyedStream } from './keyed-stream.ts';
import { appendOperator, internalsOf, register, type End, type Graph } from './stream-graph.ts';
import type * as api from './streams.ts';

export class DataStream<T> implements api.DataStream<T> {
  constructor(graph: Graph, ends: readonly End[]) {
    register(this, { graph, ends, kind: 'data' });
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

  union(...others: api.DataStream<T>[]): DataStream<T> {
    const { graph, ends } = internalsOf(this, 'union');
    const all = [...ends];
    for (const o of others) {
      const other = internalsOf(o, 'union');
      if (other.graph !== graph) throw new TypeError(`union: the streams belong to different jobs (${graph.name} and ${other.graph.name})`);
      all.push(...other.ends);
    }
    return new DataStream<T>(graph, all);
  }

  keyBy(fn: (value: T) => string | number, name?: string): KeyedStream<T> {
    if (typeof fn !== 'function') throw new TypeError('keyBy needs a function');
    const { graph, ends } = internalsOf(this, 'keyBy');
    return new KeyedStream<T>(graph, ends, fn as (value: unknown) => string | number, name);
  }

  broadcast(name?: string): BroadcastStream<T> {
    const { graph, ends } = internalsOf(this, 'broadcast');
    return new BroadcastStream<T>(graph, ends, name);
  }

  connect(_other: never): never {
    throw new TypeError('connect: this stream is not keyed; call keyBy on both streams first (or broadcast() the second and connect it to a keyed stream); a broadcast cannot go into a source stage');
  }

  sideOutput<S = unknown>(tag: string): DataStream<S> {
    const { graph, ends } = internalsOf(this, 'sideOutput');
    if (typeof tag !== 'string' || tag.length === 0) throw new TypeError('sideOutput needs a tag');
    for (const e of ends) {
      const op = e.operator === undefined ? undefined : graph.stages[e.stage]!.spec.operators[e.operator];
      if (op?.kind !== 'process' || e.side !== undefined) throw new TypeError(`sideOutput(${tag}): only the stream a process stage returns has side outputs`);
    }
    return new DataStream<S>(graph, ends.map((e) => ({ ...e, side: tag })));
  }

  sideSink(tag: string, spec: SinkSpec): this {
    const { graph, ends } = internalsOf(this, 'sideSink');
    for (const e of ends) {
      const stage = graph.stages[e.stage]!;
      if (stage.spec.kind !== 'keyed') throw new TypeError(`sideSink(${tag}): stage ${stage.spec.id} is a source stage, which has no side outputs`);
      stage.spec.sinks.push({ ...spec, input: 0, sideOutput: tag });
    }
    return this;
  }

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
