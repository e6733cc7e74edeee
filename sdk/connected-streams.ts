// Two streams connected into one keyed stage (the contracts: ConnectedStreams and
// BroadcastConnectedStream in sdk/streams.ts): two keyed streams sharing state and timers per key,
// or a keyed stream and a broadcast stream whose records reach every key group.
import type { CoProcessFunction, KeyedBroadcastProcessFunction } from './context.ts';
import type { BroadcastProcessOptions, ProcessOptions } from './options.ts';
import type { OperatorImpl } from './plan.ts';
import type { MapStateDescriptor } from './state.ts';
import { keyedStage, stageInput, type Graph } from './stream-graph.ts';
import type * as api from './streams.ts';

export class ConnectedStreams<A, B> implements api.ConnectedStreams<A, B> {
  readonly #graph: Graph;
  readonly #first: api.KeyedStream<A>;
  readonly #second: api.KeyedStream<B>;

  constructor(graph: Graph, first: api.KeyedStream<A>, second: api.KeyedStream<B>) {
    this.#graph = graph;
    this.#first = first;
    this.#second = second;
  }

  process<O>(name: string, fn: CoProcessFunction<A, B, O>, options: ProcessOptions<O> = {}): api.DataStream<O> {
    if (typeof fn?.processElement1 !== 'function' || typeof fn.processElement2 !== 'function') throw new TypeError(`process ${String(name)}: a connected stage needs processElement1 and processElement2 functions`);
    const e1 = fn.processElement1.bind(fn) as OperatorImpl['fn'];
    const e2 = fn.processElement2.bind(fn) as OperatorImpl['fn'];
    const out = keyedStage(this.#graph, name, [stageInput(this.#first, 'connect'), stageInput(this.#second, 'connect')], { fn: e1, inputs: [e1, e2] }, options as ProcessOptions<unknown>);
    this.#graph.dangling.delete(this.#first);
    this.#graph.dangling.delete(this.#second);
    return out as api.DataStream<O>;
  }
}

export class BroadcastConnectedStream<T, B> implements api.BroadcastConnectedStream<T, B> {
  readonly #graph: Graph;
  readonly #keyed: api.KeyedStream<T>;
  readonly #broadcast: api.BroadcastStream<B>;

  constructor(graph: Graph, keyed: api.KeyedStream<T>, broadcast: api.BroadcastStream<B>) {
    this.#graph = graph;
    this.#keyed = keyed;
    this.#broadcast = broadcast;
  }

  process<O>(name: string, fn: KeyedBroadcastProcessFunction<T, B, O>, options: BroadcastProcessOptions<O> = {}): api.DataStream<O> {
    if (typeof fn?.processElement !== 'function' || typeof fn.processBroadcastElement !== 'function') throw new TypeError(`process ${String(name)}: a broadcast-connected stage needs processElement and processBroadcastElement functions`);
    const e = fn.processElement.bind(fn) as OperatorImpl['fn'];
    const b = fn.processBroadcastElement.bind(fn) as OperatorImpl['fn'];
    const { broadcastState, ...rest } = options;
    const out = keyedStage(this.#graph, name, [stageInput(this.#keyed, 'connect'), stageInput(this.#broadcast, 'connect')], { fn: e, inputs: [e, b] }, rest as ProcessOptions<unknown>, (broadcastState ?? []) as MapStateDescriptor<unknown>[]);
    this.#graph.dangling.delete(this.#keyed);
    this.#graph.dangling.delete(this.#broadcast);
    return out as api.DataStream<O>;
  }
}
