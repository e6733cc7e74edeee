// The ProcessContext of sdk/context.ts over the state backend. One context per key being
// processed; state handles are cached per context so a record does not allocate them again.
import type { MapState, MapStateDescriptor, ProcessContext, StateDescriptor, ValueState, ValueStateDescriptor } from '../sdk/index.ts';
import type { StateBackend } from './state-backend.ts';
import { recordFeatureVersion, touchFeature, type FeatureStateSpec, type MapChange } from './feature-state.ts';
import type { WatchRegistry } from './watch-registry.ts';

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
  readonly #watches: WatchRegistry | undefined;
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
    watches?: WatchRegistry,
  ) {
    this.#features = features;
    this.#watches = watches;
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
   * After each record: tells watches about the feature states it changed and writes the versions
   * of history features. Undefined (no await) when there is nothing to wait for.
   */
  finishRecord(): Promise<void> | undefined {
    const touched = this.#touched;
    if (touched === undefined || touched.size === 0) return undefined;
    this.#touched = undefined;
    let writes: Array<Promise<void>> | undefined;
    for (const [name, changes] of touched) {
      this.#watches?.noteChange(this.#stage, name, this.key);
      const spec = this.#features.get(name)!;
      if (spec.historyRetentionMs === undefined) continue;
      (writes ??= []).push(recordFeatureVersion(this.#backend, this.#stage, this.keyGroup, this.key, spec, this.timestamp, changes));
    }
    if (writes === undefined) return undefined;
    return writes.length === 1 ? writes[0] : Promise.all(writes).then(() => undefined);
  }

  #touch(name: string, change: MapChange | undefined): void {
    const spec = this.#features.get(name);
    if (spec === undefined) return;
    const touched = (this.#touched ??= new Map());
    if (!touched.has(name)) {
      // The event time goes in with the record's first change: no read sees one without the other.
      touchFeature(this.#backend, this.#stage, this.keyGroup, this.key, spec, this.timestamp);
      touched.set(name, spec.historyRetentionMs === undefined || change === undefined ? undefined : [change]);
      return;
    }
    if (spec.historyRetentionMs === undefined || change === undefined) return;
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
