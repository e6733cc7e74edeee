// A stream to be delivered to every key group of a keyed stage (the contract: BroadcastStream in
// sdk/streams.ts). It is nothing until a keyed stream connects it; manifest() names one left over.
import { register, type End, type Graph } from './stream-graph.ts';
import type * as api from './streams.ts';

export class BroadcastStream<T> implements api.BroadcastStream<T> {
  declare readonly __broadcastElement: T;

  constructor(graph: Graph, ends: readonly End[], name: string | undefined) {
    register(this, { graph, ends, kind: 'broadcast', name });
    graph.dangling.set(this, `a broadcast stream${name ? ` (${name})` : ''} is connected to no keyed stream`);
  }
}
