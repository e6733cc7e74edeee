// The ProcessContext of sdk/context.ts over the state backend. One context per key being
// processed; state handles are cached per context so a record does not allocate them again.
import type { MapState, MapStateDescriptor, ProcessContext, StateDescriptor, ValueState, ValueStateDescriptor } from '../sdk/index.ts';
import type { StateBackend } from './state-backend.ts';
import { recordFeatureUpdate, type FeatureStateSpec, type MapChange } from './feature-state.ts';

const NO_FEATURES: ReadonlyMap<string, FeatureStateSpec> = new Map();

export class KeyedContext implements ProcessContext<unknown> {
  readonly key: string;
  readonly keyGroup: number;
  timestamp: number | undefined;
  readonly #stage: string;
  readonly #backend: StateBackend;
  readonly #declared: ReadonlyMap<string, StateDescriptor['kind']>;
  readonly #emit: (value: unknown, timestamp: number) => void;
  #handles: Map<string, unknown> | undefined;
  /** States served as features. */
  readonly #features: ReadonlyMap<string, FeatureStateSpec>;
  /** Feature states the current record changed; map changes kept for history snapshots. */
  #touched: Map<string, MapChange[] | undefined> | undefined;

  constructor(
    stage: string,
    backend: StateBackend,
    declared: ReadonlyMap<string, StateDescriptor['kind']>,
    key: string,
    keyGroup: number,
    emit: (value: unknown, timestamp: number) => void,
    features: ReadonlyMap<string, FeatureStateSpec> = NO_FEATURES,
  ) {
    this.#features = features;
    this.#stage = stage;
    this.#backend = backend;
    this.#declared = declared;
    this.key = key;
    this.keyGroup = keyGroup;
    this.#emit = emit;
  }

  emit(value: unknown): void {
    this.#emit(value, this.timestamp ?? -1);
  }

  /**
   * After each record: writes the metadata (and history versions) of the feature states it
   * changed. Undefined (no await) when it changed none.
   */
  finishRecord(): Promise<void> | undefined {
    const touched = this.#touched;
    if (touched === undefined || touched.size === 0) return undefined;
    this.#touched = undefined;
    const writes: Array<Promise<void>> = [];
    for (const [name, changes] of touched) {
      writes.push(recordFeatureUpdate(this.#backend, this.#stage, this.keyGroup, this.key, this.#features.get(name)!, this.timestamp, changes));
    }
    return writes.length === 1 ? writes[0] : Promise.all(writes).then(() => undefined);
  }

  #touch(name: string, change: MapChange | undefined): void {
    const spec = this.#features.get(name);
    if (spec === undefined) return;
    const touched = (this.#touched ??= new Map());
    if (spec.historyRetentionMs === undefined || change === undefined) {
      if (!touched.has(name)) touched.set(name, undefined);
      return;
    }
    const changes = touched.get(name);
    if (changes === undefined) touched.set(name, [change]);
    else changes.push(change);
  }

  state<V>(descriptor: ValueStateDescriptor<V>): ValueState<V>;
  state<V>(descriptor: MapStateDescriptor<V>): MapState<V>;
  state<V>(descriptor: ValueStateDescriptor<V> | MapStateDescriptor<V>): ValueState<V> | MapState<V> {
    const cached = this.#handles?.get(descriptor.name);
    if (cached) return cached as ValueState<V> | MapState<V>;
    const kind = this.#declared.get(descriptor.name);
    if (kind !== descriptor.kind) {
      throw new TypeError(`state ${descriptor.name} (${descriptor.kind}) is not declared in the options of stage ${this.#stage}; add it to { state: [...] }`);
    }
    const handle = descriptor.kind === 'value' ? this.#valueHandle<V>(descriptor.name) : this.#mapHandle<V>(descriptor.name);
    (this.#handles ??= new Map()).set(descriptor.name, handle);
    return handle;
  }

  #valueHandle<V>(name: string): ValueState<V> {
    const { key, keyGroup } = this;
    const b = this.#backend;
    const stage = this.#stage;
    return {
      value: () => b.getValue(stage, keyGroup, name, key) as Promise<V | undefined>,
      update: (v: V) => {
        b.putValue(stage, keyGroup, name, key, v);
        this.#touch(name, undefined);
      },
      clear: () => {
        b.deleteValue(stage, keyGroup, name, key);
        this.#touch(name, undefined);
      },
    };
  }

  #mapHandle<V>(name: string): MapState<V> {
    const { key, keyGroup } = this;
    const b = this.#backend;
    const stage = this.#stage;
    return {
      get: (k: string) => b.getMapEntry(stage, keyGroup, name, key, k) as Promise<V | undefined>,
      put: (k: string, v: V) => {
        b.putMapEntry(stage, keyGroup, name, key, k, v);
        this.#touch(name, { op: 'put', mapKey: k, value: v });
      },
      remove: (k: string) => {
        b.deleteMapEntry(stage, keyGroup, name, key, k);
        this.#touch(name, { op: 'remove', mapKey: k });
      },
      entries: () => b.mapEntries(stage, keyGroup, name, key) as Promise<Array<[string, V]>>,
      isEmpty: async () => !(await b.hasMap(stage, keyGroup, name, key)),
      clear: () => {
        this.#touch(name, { op: 'clear' });
        return b.clearMap(stage, keyGroup, name, key);
      },
    };
  }
}
