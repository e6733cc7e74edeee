// Answers feature queries for the key groups this worker owns, on eddy.q.<job>.<keyGroup>:
// whoever owns a key group is subscribed, so the serving process needs no routing table.
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { codecs, type QueryReply, type QueryValue } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { findFeature, type JobManifest } from '../core/manifest.ts';
import { keyGroupForKey } from '../core/key-groups.ts';
import { ensureError } from '../core/errors.ts';
import type { JobId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import type { StateBackend, StateView } from './state-backend.ts';

export interface QueryResponderOptions {
  nc: NatsConnection;
  jobId: JobId;
  manifest: JobManifest;
  keyGroups: readonly number[];
  backend: StateBackend;
  logger: Logger;
  /** Called with each query's answer time in milliseconds (metrics). @default none */
  recordLatencyMs?(ms: number): void;
}

export class QueryResponder {
  readonly #o: QueryResponderOptions;
  readonly #subs = new Map<number, Subscription>();
  /** Key groups let go in a move, still subscribed: answered UNAVAILABLE until the move completes. */
  readonly #released = new Set<number>();
  queries = 0;

  constructor(options: QueryResponderOptions) {
    this.#o = options;
  }

  start(): void {
    this.add(this.#o.keyGroups);
  }

  /** Starts answering for key groups (loaded after a move). */
  add(keyGroups: readonly number[]): void {
    for (const kg of keyGroups) {
      this.#released.delete(kg);
      if (this.#subs.has(kg)) continue;
      this.#subs.set(kg, this.#o.nc.subscribe(subjects.query(this.#o.jobId, kg), { callback: (_err, msg) => void this.#answer(kg, msg) }));
    }
  }

  /**
   * Key groups let go in a move (at its barrier): from here on this worker's state of them is
   * stale, so they are answered UNAVAILABLE (the router retries) until the move completes.
   */
  release(keyGroups: readonly number[]): void {
    for (const kg of keyGroups) if (this.#subs.has(kg)) this.#released.add(kg);
  }

  /**
   * The move completed: stop answering. Drained, not just unsubscribed, so that a request the
   * server delivered before the unsubscription is still answered rather than left to time out.
   */
  remove(keyGroups: readonly number[]): void {
    for (const kg of keyGroups) {
      if (!this.#released.has(kg)) continue;
      this.#released.delete(kg);
      this.#subs.get(kg)?.drain().catch(() => undefined);
      this.#subs.delete(kg);
    }
  }

  async #answer(keyGroup: number, msg: Msg): Promise<void> {
    this.queries++;
    const started = performance.now();
    let reply: QueryReply;
    try {
      reply = await this.#lookup(keyGroup, msg.data);
    } catch (e) {
      this.#o.logger.error({ err: ensureError(e), keyGroup }, 'query failed');
      reply = { values: [], error: `INTERNAL:${ensureError(e).message}` };
    }
    msg.respond(codecs.queryReply.encode(reply));
    this.#o.recordLatencyMs?.(performance.now() - started);
  }

  async #lookup(keyGroup: number, data: Uint8Array): Promise<QueryReply> {
    if (this.#released.has(keyGroup)) return { values: [], error: `UNAVAILABLE:key group ${keyGroup} is moving to another worker` };
    const req = codecs.queryRequest.decode(data);
    const found = findFeature(this.#o.manifest, req.feature);
    if (!found) return { values: [], error: `NOT_FOUND:job ${this.#o.jobId} has no feature ${req.feature}` };
    const view: StateView = req.view === 1 ? 'committed' : 'latest';
    const { backend, manifest } = this.#o;
    const stage = found.stage.id;
    const state = found.state.name;
    const values = await Promise.all(
      req.entityIds.map(async (entityId): Promise<QueryValue> => {
        // A request routed with another key-group mapping must not read a neighbour's range.
        if (keyGroupForKey(entityId, manifest.maxParallelism) !== keyGroup) {
          return { entityId, found: false, valueJson: '' };
        }
        if (found.state.kind === 'value') {
          const v = await backend.getValue(stage, keyGroup, state, entityId, view);
          return v === undefined ? { entityId, found: false, valueJson: '' } : { entityId, found: true, valueJson: JSON.stringify(v) };
        }
        const entries = await backend.mapEntries(stage, keyGroup, state, entityId, view);
        if (entries.length === 0) return { entityId, found: false, valueJson: '' };
        return { entityId, found: true, valueJson: JSON.stringify(Object.fromEntries(entries)) };
      }),
    );
    return { values, error: '' };
  }

  stop(): void {
    for (const s of this.#subs.values()) s.unsubscribe();
    this.#subs.clear();
  }
}
