// The BroadcastContext of sdk/context.ts: what processBroadcastElement sees in one key group.
import type { BroadcastContext, KeyedBroadcastContext, MapState, MapStateDescriptor, StateDescriptor } from '../../sdk/index.ts';
import { KeyedContext, type KeyedServices } from './keyed-context.ts';
import { broadcastStateHandle } from '../state/index.ts';
import type { StateBackend } from '../state/index.ts';

export { broadcastStateNames } from '../state/index.ts';

export class BroadcastContextImpl implements BroadcastContext<unknown> {
  readonly keyGroup: number;
  readonly timestamp: number | undefined;
  /** The source position (core/record-origin.ts) of the broadcast record, for its side outputs; -1 for none. */
  origin = -1;
  readonly #stage: string;
  readonly #backend: StateBackend;
  readonly #declared: ReadonlyMap<string, StateDescriptor['kind']>;
  readonly #emit: (value: unknown, timestamp: number) => void;
  readonly #services: KeyedServices;
  readonly #handles = new Map<string, unknown>();

  constructor(
    stage: string,
    backend: StateBackend,
    declared: ReadonlyMap<string, StateDescriptor['kind']>,
    broadcastStates: ReadonlySet<string>,
    keyGroup: number,
    emit: (value: unknown, timestamp: number) => void,
    services: KeyedServices,
    timestamp: number | undefined,
  ) {
    this.#stage = stage;
    this.#backend = backend;
    this.#declared = declared;
    this.keyGroup = keyGroup;
    this.#emit = emit;
    this.#services = services.broadcastStates === broadcastStates ? services : { ...services, broadcastStates };
    this.timestamp = timestamp;
  }

  broadcastState<V>(descriptor: MapStateDescriptor<V>): MapState<V> {
    let handle = this.#handles.get(descriptor?.name);
    if (handle === undefined) {
      handle = broadcastStateHandle(this.#stage, this.#backend, this.#declared, this.#services, this.keyGroup, descriptor);
      this.#handles.set(descriptor.name, handle);
    }
    return handle as MapState<V>;
  }

  currentWatermark(): number {
    return this.#services.watermark?.() ?? Number.NEGATIVE_INFINITY;
  }

  currentProcessingTime(): number {
    return (this.#services.clock ?? Date.now)();
  }

  emit(value: unknown): void {
    this.#emit(value, this.timestamp ?? -1);
  }

  output(tag: string, value: unknown): void {
    this.#services.emitSide?.(tag, value, this.timestamp ?? -1, this.keyGroup, this.origin);
  }

  async forEachKey(descriptor: StateDescriptor, fn: (key: string, ctx: KeyedBroadcastContext<unknown>) => void | Promise<void>): Promise<void> {
    const kind = this.#declared.get(descriptor?.name);
    if (kind !== descriptor?.kind || this.#services.broadcastStates?.has(descriptor.name)) {
      throw new TypeError(`forEachKey: state ${String(descriptor?.name)} is not keyed state of stage ${this.#stage}; pass one of the stage's { state: [...] } descriptors`);
    }
    for (const key of await this.#backend.stateKeyCandidates(this.#stage, this.keyGroup, descriptor.name)) {
      const ctx = new KeyedContext(this.#stage, this.#backend, this.#declared, key, this.keyGroup, this.#emit, this.#services);
      ctx.timestamp = this.timestamp;
      // A candidate may hold only a tombstone or an expired value: ask the handle.
      if (!(await hasValue(ctx, descriptor))) continue;
      await fn(key, ctx as unknown as KeyedBroadcastContext<unknown>);
      const features = ctx.finishRecord();
      if (features !== undefined) await features;
    }
  }
}

async function hasValue(ctx: KeyedContext, d: StateDescriptor): Promise<boolean> {
  switch (d.kind) {
    case 'value':
      return (await ctx.state(d).value()) !== undefined;
    case 'map':
      return !(await ctx.state(d).isEmpty());
    case 'list':
      return (await ctx.state(d).get()).length > 0;
    case 'reducing':
      return (await ctx.state(d).get()) !== undefined;
    case 'aggregating':
      return (await ctx.state(d).get()) !== undefined;
  }
}
