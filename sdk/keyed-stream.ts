// A stream shuffled by key (the contract: KeyedStream in sdk/streams.ts): a keyed process stage,
// windows, or a connect with another keyed stream or a broadcast stream. It is nothing until one
// of them follows; manifest() names one left over.
import type { ProcessFunction } from './context.ts';
import { BroadcastConnectedStream, ConnectedStreams } from './connected-streams.ts';
import type { ProcessOptions, WindowOptions } from './options.ts';
import type { OperatorImpl } from './plan.ts';
import { describe, internalsOf, isStream, keyedStage, register, stageInput, type End, type Graph } from './stream-graph.ts';
import type * as api from './streams.ts';
import { WindowedStream } from './windowed-stream.ts';
import type { WindowAssigner } from './windows.ts';

export class KeyedStream<T> implements api.KeyedStream<T> {
  constructor(graph: Graph, ends: readonly End[], selector: (value: unknown) => string | number, name?: string) {
    register(this, { graph, ends, kind: 'keyed', name, selector });
    graph.dangling.set(this, `keyBy${name ? ` ${name}` : ''} has no process stage after it`);
  }

  window(assigner: WindowAssigner, options: WindowOptions = {}): api.WindowedStream<T> {
    return new WindowedStream<T>(this, assigner, options);
  }

  process<O>(name: string, fn: ProcessFunction<T, O>, options: ProcessOptions<O> = {}): api.DataStream<O> {
    if (typeof fn !== 'function') throw new TypeError(`process ${String(name)}: the process function must be a function`);
    const { graph } = internalsOf(this, 'process');
    const out = keyedStage(graph, name, [stageInput(this, 'keyBy')], { fn: fn as OperatorImpl['fn'], inputs: [fn as OperatorImpl['fn']] }, options as ProcessOptions<unknown>);
    graph.dangling.delete(this);
    return out as api.DataStream<O>;
  }

  connect<U>(other: api.KeyedStream<U>): api.ConnectedStreams<T, U>;
  connect<B>(other: api.BroadcastStream<B>): api.BroadcastConnectedStream<T, B>;
  connect(other: api.KeyedStream<unknown> | api.BroadcastStream<unknown>): api.ConnectedStreams<T, unknown> | api.BroadcastConnectedStream<T, unknown> {
    const mine = internalsOf(this, 'connect');
    if (!isStream(other, 'keyed') && !isStream(other, 'broadcast')) {
      throw new TypeError(`connect: expected a keyed stream (keyBy) or a broadcast stream (broadcast()), got ${describe(other)}${isStream(other, 'data') ? ' (a stream that is not keyed: call keyBy on it first)' : ''}`);
    }
    const theirs = internalsOf(other, 'connect');
    if (theirs.graph !== mine.graph) throw new TypeError(`connect: the streams belong to different jobs (${mine.graph.name} and ${theirs.graph.name})`);
    if (other === (this as unknown)) throw new TypeError('connect: a keyed stream cannot be connected to itself');
    return theirs.kind === 'keyed' ? new ConnectedStreams<T, unknown>(mine.graph, this, other as api.KeyedStream<unknown>) : new BroadcastConnectedStream<T, unknown>(mine.graph, this, other as api.BroadcastStream<unknown>);
  }
}
