// The ProcessContext of sdk/context.ts over the state backend. One context per key being
// processed; state handles are cached per context so a record does not allocate them again.
import { EddyError } from '../../core/errors.ts';
import type {
  AggregatingState,
  AggregatingStateDescriptor,
  ListState,
  ListStateDescriptor,
  MapState,
  MapStateDescriptor,
  ProcessContext,
  ReadOnlyBroadcastState,
  ReducingState,
  ReducingStateDescriptor,
  StateDescriptor,
  TimerContext,
  Timers,
  ValueState,
  ValueStateDescriptor,
} from '../../sdk/index.ts';
import { createStateHandle, type Clock } from '../state/index.ts';
import { broadcastStateHandle } from '../state/index.ts';
import type { StateBackend } from '../state/index.ts';
import type { LiveSlot } from '../state/live-cache.ts';
import { StateUndoLog } from '../state/state-undo.ts';
import type { TimerService } from './timer-service.ts';
import { metaKey, recordFeatureVersion, touchFeature, type FeatureStateSpec, type MapChange } from '../state/index.ts';
import type { WatchRegistry } from '../query/index.ts';

/** What a keyed context needs besides state; absent parts use defaults (wall clock, no timers). */
export interface KeyedServices {
  /** The stage's timers; without it ctx.timers throws. */
  timers?: TimerService;
  /** Processing time and the clock of state TTL. @default Date.now */
  clock?: Clock;
  /** The actor's current watermark. @default () => -Infinity */
  watermark?: () => number;
  /**
   * Side outputs (ctx.output), with the record's event time (-1: none) for the stream after them,
   * and the key group and source position (core/record-origin.ts) of the record (or timer, -1)
   * that emitted them, so that a failure after them names it. @default drops them
   */
  emitSide?: (tag: string, value: unknown, timestamp: number, keyGroup: number, origin: number) => void;
  /** States served as features: their changes carry event time, versions and watch notices. @default none */
  features?: ReadonlyMap<string, FeatureStateSpec>;
  /** Feature watches to tell about changes (worker/query/watch-registry.ts). */
  watches?: WatchRegistry;
  /** The stage's broadcast states (worker/task/broadcast-context.ts): read-only here, not keyed state. @default none */
  broadcastStates?: ReadonlySet<string>;
}

export class KeyedContext implements ProcessContext<unknown>, TimerContext<unknown> {
  readonly key: string;
  readonly keyGroup: number;
  timestamp: number | undefined;
  /** The source position (core/record-origin.ts) of the record being processed, -1 for none. */
  origin = -1;
  /** Set while onTimer runs. */
  timeDomain: 'event' | 'processing' = 'event';
  readonly #stage: string;
  readonly #backend: StateBackend;
  readonly #declared: ReadonlyMap<string, StateDescriptor['kind']>;
  readonly #emit: (value: unknown, timestamp: number) => void;
  readonly #services: KeyedServices;
  #handles: Map<string, unknown> | undefined;
  #timers: Timers | undefined;
  /** Feature states the current record changed; map changes kept for history snapshots. */
  #touched: Map<string, MapChange[] | undefined> | undefined;
  /** The feature meta keys of this context's key, by state name, with their live entries (as state handles keep theirs). */
  #metaKeys: Map<string, LiveSlot> | undefined;
  /** Atomic records (errorPolicy "dead-letter"): the record's state writes, noted for undo. */
  #undo: StateUndoLog | undefined;
  /** Atomic records: the record's output, held as (tag | null for the main output, value, timestamp) until it succeeds. */
  #held: unknown[] | undefined;

  constructor(
    stage: string,
    backend: StateBackend,
    declared: ReadonlyMap<string, StateDescriptor['kind']>,
    key: string,
    keyGroup: number,
    emit: (value: unknown, timestamp: number) => void,
    services: KeyedServices = {},
  ) {
    this.#stage = stage;
    this.#backend = backend;
    this.#declared = declared;
    this.key = key;
    this.keyGroup = keyGroup;
    this.#emit = emit;
    this.#services = services;
  }

  emit(value: unknown): void {
    if (this.#held !== undefined) this.#held.push(null, value, this.timestamp ?? -1);
    else this.#emit(value, this.timestamp ?? -1);
  }

  output(tag: string, value: unknown): void {
    if (this.#held !== undefined) this.#held.push(tag, value, this.timestamp ?? -1);
    else this.#services.emitSide?.(tag, value, this.timestamp ?? -1, this.keyGroup, this.origin);
  }

  /**
   * Makes this context's records all-or-nothing (errorPolicy "dead-letter"): state writes are
   * noted for undo and output is held until releaseOutput(). Call before the first state()
   * (handles capture the undo log when they are created).
   */
  enableAtomicRecords(): void {
    this.#undo ??= new StateUndoLog();
    this.#held ??= [];
  }

  /** True once enableAtomicRecords() was called. */
  get atomic(): boolean {
    return this.#held !== undefined;
  }

  /** releaseOutput bound to this context, for the stage output's atomically() (no closure per record). */
  readonly release = (): void => this.releaseOutput();

  /**
   * Passes the record's held output on, in the order it was emitted. Run it inside the stage
   * output's atomically(), so that a failure on the way writes none of it; then endRecord().
   */
  releaseOutput(): void {
    const held = this.#held;
    if (held === undefined) return;
    for (let i = 0; i < held.length; i += 3) {
      const tag = held[i] as string | null;
      if (tag === null) this.#emit(held[i + 1], held[i + 2] as number);
      else this.#services.emitSide?.(tag, held[i + 1], held[i + 2] as number, this.keyGroup, this.origin);
    }
  }

  /** The record succeeded: forget its undo log and held output. */
  endRecord(): void {
    if (this.#held !== undefined) this.#held.length = 0;
    this.#undo?.reset();
  }

  /**
   * The record failed: its state writes are taken back, its held output and feature changes
   * dropped. Throws when the writes cannot be taken back (StateBackend.undo).
   */
  undoRecord(): void {
    if (this.#held !== undefined) this.#held.length = 0;
    this.#touched?.clear();
    if (this.#undo !== undefined) this.#backend.undo(this.#undo);
  }

  /**
   * After each record: tells watches about the feature states it changed and writes the versions
   * of history features. Undefined (no await) when there is nothing to wait for.
   */
  finishRecord(): Promise<void> | undefined {
    const touched = this.#touched;
    if (touched === undefined || touched.size === 0) return undefined;
    let writes: Array<Promise<void>> | undefined;
    try {
      for (const [name, changes] of touched) {
        this.#services.watches?.noteChange(this.#stage, name, this.key);
        const spec = this.#services.features!.get(name)!;
        if (spec.historyRetentionMs === undefined) continue;
        (writes ??= []).push(recordFeatureVersion(this.#backend, this.#stage, this.keyGroup, this.key, spec, this.timestamp, changes));
      }
    } finally {
      // Kept for the context's next record: cleared, not made anew per record.
      touched.clear();
    }
    if (writes === undefined) return undefined;
    return writes.length === 1 ? writes[0] : Promise.all(writes).then(() => undefined);
  }

  #touch(name: string, change: MapChange | undefined): void {
    const spec = this.#services.features?.get(name);
    if (spec === undefined) return;
    const touched = (this.#touched ??= new Map());
    if (!touched.has(name)) {
      // The event time goes in with the record's first change: no read sees one without the other.
      const metaKeys = (this.#metaKeys ??= new Map());
      let meta = metaKeys.get(name);
      if (meta === undefined) metaKeys.set(name, (meta = { full: metaKey(this.#backend, this.#stage, this.keyGroup, name, this.key), entry: undefined }));
      meta.entry = touchFeature(this.#backend, this.#stage, this.keyGroup, this.key, spec, this.timestamp, this.#undo, meta.full, meta.entry);
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
  state<V>(descriptor: ListStateDescriptor<V>): ListState<V>;
  state<V>(descriptor: ReducingStateDescriptor<V>): ReducingState<V>;
  state<IN, ACC, OUT>(descriptor: AggregatingStateDescriptor<IN, ACC, OUT>): AggregatingState<IN, OUT>;
  state(descriptor: StateDescriptor): never {
    const cached = this.#handles?.get(descriptor.name);
    if (cached) return cached as never;
    if (this.#services.broadcastStates?.has(descriptor.name)) throw new TypeError(`state ${descriptor.name} of stage ${this.#stage} is broadcast state: read it with ctx.broadcastState(...)`);
    const kind = this.#declared.get(descriptor.name);
    if (kind !== descriptor.kind) {
      throw new TypeError(`state ${descriptor.name} (${descriptor.kind}) is not declared in the options of stage ${this.#stage}; add it to { state: [...] }`);
    }
    const handle = createStateHandle(
      {
        backend: this.#backend,
        stage: this.#stage,
        keyGroup: this.keyGroup,
        key: this.key,
        clock: this.#services.clock ?? Date.now,
        ...(this.#undo !== undefined && { undo: this.#undo }),
        ...(this.#services.features?.has(descriptor.name) && { onChange: (change: MapChange | undefined) => this.#touch(descriptor.name, change) }),
      },
      descriptor,
    );
    (this.#handles ??= new Map()).set(descriptor.name, handle);
    return handle as never;
  }

  /** Broadcast state of this key group, read-only (processBroadcastElement writes it). */
  broadcastState<V>(descriptor: MapStateDescriptor<V>): ReadOnlyBroadcastState<V> {
    const name = `\u0001b:${descriptor.name}`;
    const cached = this.#handles?.get(name);
    if (cached) return cached as ReadOnlyBroadcastState<V>;
    const handle = broadcastStateHandle(this.#stage, this.#backend, this.#declared, this.#services, this.keyGroup, descriptor) as MapState<V>;
    const readOnly: ReadOnlyBroadcastState<V> = {
      get: (k) => handle.get(k),
      contains: (k) => handle.contains(k),
      entries: (r) => handle.entries(r),
      keys: (r) => handle.keys(r),
      isEmpty: () => handle.isEmpty(),
    };
    for (const write of ['put', 'remove', 'clear']) {
      Object.defineProperty(readOnly, write, {
        value: () => {
          throw new TypeError(`broadcast state ${descriptor.name} is read-only in processElement and onTimer; only processBroadcastElement writes it`);
        },
      });
    }
    (this.#handles ??= new Map()).set(name, readOnly);
    return readOnly;
  }

  get timers(): Timers {
    if (this.#timers !== undefined) return this.#timers;
    const service = this.#services.timers;
    if (service === undefined) throw new EddyError('FAILED_PRECONDITION', `stage ${this.#stage} has no timer service`);
    const { keyGroup, key } = this;
    const clock = this.#services.clock ?? Date.now;
    const watermark = this.#services.watermark ?? (() => Number.NEGATIVE_INFINITY);
    this.#timers = {
      registerEventTime: (ts) => service.register('event', keyGroup, key, ts, this.#undo),
      registerProcessingTime: (ts) => service.register('processing', keyGroup, key, ts, this.#undo),
      deleteEventTime: (ts) => service.delete('event', keyGroup, key, ts, this.#undo),
      deleteProcessingTime: (ts) => service.delete('processing', keyGroup, key, ts, this.#undo),
      currentWatermark: watermark,
      currentProcessingTime: clock,
    };
    return this.#timers;
  }
}
