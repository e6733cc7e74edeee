// Feature watches on this worker (FeatureService.WatchFeatures). A router registers interest in
// some entities of a feature under a lease it renews; after each processed batch the keyed tasks
// call flush(), which publishes the current value of every watched entity the batch changed.
//
// Nothing costs anything while nobody watches: the per-record hook (noteChange) returns at once when
// no watch is registered, and flush() does nothing without pending changes.
import type { NatsConnection } from '@nats-io/transport-node';
import { codecs, type QueryValue, type WatchRegister } from '../../core/control.ts';
import { findFeature, type JobManifest } from '../../core/manifest.ts';
import { keyGroupForKey } from '../../core/key-groups.ts';
import { ensureError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { StateBackend } from '../state/index.ts';
import { featureStates, readFeature, type FeatureStateSpec } from '../state/index.ts';
import { toJsonText } from '../../core/proto-values.ts';

/** Longest lease accepted: a router that vanished stops costing anything after this. */
export const MAX_WATCH_LEASE_MS = 60_000;

interface Watch {
  /** The router's watch id; one registration per key group, kept under "<id>|<keyGroup>". */
  id: string;
  inbox: string;
  stage: string;
  spec: FeatureStateSpec;
  keyGroup: number;
  entityIds: Set<string>;
  expiresAtMs: number;
  /** Entities changed since the last flush (or during the initial read). */
  pending: Set<string>;
  initialized: boolean;
  /** Publishes of this watch run one after another: a later event never overtakes an earlier one. */
  tail: Promise<void>;
}

export interface WatchRegistryOptions {
  nc: NatsConnection;
  manifest: JobManifest;
  backend: StateBackend;
  epoch: number;
  logger: Logger;
  /** Key groups this runtime holds the state of (a live set: moves change it); a registration for another is not accepted. */
  keyGroups: ReadonlySet<number>;
}

export class WatchRegistry {
  readonly #o: WatchRegistryOptions;
  readonly #watches = new Map<string, Watch>();
  /** "<stage>|<state>|<key>" → watches of that entity. */
  readonly #byEntity = new Map<string, Set<Watch>>();
  #dirty = false;
  #closed = false;

  constructor(options: WatchRegistryOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#watches.size;
  }

  /** Handles a WatchRegister for keyGroup; returns an error text for the router, or ''. */
  async register(keyGroup: number, message: WatchRegister): Promise<string> {
    if (!this.#o.keyGroups.has(keyGroup)) return `UNAVAILABLE:key group ${keyGroup} is not served here`;
    if (this.#closed) return `UNAVAILABLE:the job is stopping on this worker`;
    this.expire();
    const slot = `${message.watchId}|${keyGroup}`;
    const existing = this.#watches.get(slot);
    if (message.leaseMs === 0) {
      if (existing) this.#remove(existing);
      return '';
    }
    const leaseMs = Math.min(message.leaseMs, MAX_WATCH_LEASE_MS);
    if (existing) {
      existing.expiresAtMs = Date.now() + leaseMs;
      return '';
    }
    const found = findFeature(this.#o.manifest, message.feature);
    if (!found) return `NOT_FOUND:no feature ${message.feature}`;
    const spec = featureStates(found.stage).get(found.state.name)!;
    const ids = message.entityIds.filter((id) => keyGroupForKey(id, this.#o.manifest.maxParallelism) === keyGroup);
    const watch: Watch = {
      id: message.watchId,
      inbox: message.inbox,
      stage: found.stage.id,
      spec,
      keyGroup,
      entityIds: new Set(ids),
      expiresAtMs: Date.now() + leaseMs,
      pending: new Set(),
      initialized: false,
      tail: Promise.resolve(),
    };
    // Registered before the initial read: a change processed meanwhile is pending, sent after it.
    this.#watches.set(slot, watch);
    for (const id of ids) {
      const k = entityKey(watch.stage, spec.state, id);
      let set = this.#byEntity.get(k);
      if (!set) this.#byEntity.set(k, (set = new Set()));
      set.add(watch);
    }
    this.#enqueue(watch, [...watch.entityIds], true);
    return '';
  }

  /** Per record that changed a feature state (worker/task/keyed-context.ts). */
  noteChange(stage: string, state: string, key: string): void {
    if (this.#watches.size === 0) return;
    const watches = this.#byEntity.get(entityKey(stage, state, key));
    if (watches === undefined) return;
    for (const w of watches) w.pending.add(key);
    this.#dirty = true;
  }

  /** After each processed batch: publishes the changed values of watched entities. */
  flush(): void {
    if (!this.#dirty || this.#closed) return;
    this.#dirty = false;
    const now = Date.now();
    for (const w of this.#watches.values()) {
      if (w.expiresAtMs < now) {
        this.#remove(w);
        continue;
      }
      if (!w.initialized || w.pending.size === 0) continue;
      const keys = [...w.pending];
      w.pending.clear();
      this.#enqueue(w, keys, false);
    }
  }

  /** Drops every watch (the runtime stops: a redeploy registers them again from the router). */
  close(): void {
    this.#closed = true;
    this.#watches.clear();
    this.#byEntity.clear();
  }

  /** Drops watches whose lease ran out (also done by flush, which needs a change to run). */
  expire(): void {
    const now = Date.now();
    for (const w of this.#watches.values()) if (w.expiresAtMs < now) this.#remove(w);
  }

  #remove(w: Watch): void {
    this.#watches.delete(`${w.id}|${w.keyGroup}`);
    for (const id of w.entityIds) {
      const k = entityKey(w.stage, w.spec.state, id);
      const set = this.#byEntity.get(k);
      set?.delete(w);
      if (set?.size === 0) this.#byEntity.delete(k);
    }
  }

  #enqueue(w: Watch, keys: string[], initial: boolean): void {
    w.tail = w.tail.then(() => this.#publish(w, keys, initial));
  }

  async #publish(w: Watch, keys: string[], initial: boolean): Promise<void> {
    const { backend, nc, epoch } = this.#o;
    try {
      const checkpointId = backend.committedCheckpointId;
      const values = await Promise.all(keys.map(async (key): Promise<QueryValue> => {
        const r = await readFeature(backend, w.stage, w.keyGroup, w.spec, key, 'latest');
        return { entityId: key, found: r.found, valueJson: r.found ? toJsonText(r.value) : '', eventTimeUnixMs: r.eventTimeMs ?? 0, hasEventTime: r.found && r.eventTimeMs !== undefined, uncommitted: r.uncommitted, beyondRetention: false };
      }));
      if (this.#closed || this.#watches.get(`${w.id}|${w.keyGroup}`) !== w) return;
      nc.publish(w.inbox, codecs.watchEvent.encode({ watchId: w.id, epoch, checkpointId: Math.max(0, checkpointId), initial, values, keyGroup: w.keyGroup }));
      if (initial) {
        w.initialized = true;
        // Changes processed during the initial read: their values are read now, after it.
        if (w.pending.size > 0) {
          const pending = [...w.pending];
          w.pending.clear();
          this.#enqueue(w, pending, false);
        }
      }
    } catch (e) {
      this.#o.logger.warn({ err: ensureError(e), watchId: w.id, keyGroup: w.keyGroup }, 'watch publish failed');
    }
  }
}

function entityKey(stage: string, state: string, key: string): string {
  return `${stage}|${state}|${key}`;
}
