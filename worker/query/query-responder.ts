// Answers feature queries for the key groups this worker owns, on eddy.q.<job>.<keyGroup>:
// whoever owns a key group is subscribed, so the serving process needs no routing table. The
// worker's serving endpoint (serving-endpoint.ts) asks the same answer() directly, without NATS.
import { codecs, type QueryReply, type QueryRequest, type QueryValue } from '../../core/control.ts';
import { subjects } from '../../core/subjects.ts';
import { findFeature, type JobManifest } from '../../core/manifest.ts';
import { keyGroupForKey } from '../../core/key-groups.ts';
import { ensureError } from '../../core/errors.ts';
import type { JobId } from '../../core/ids.ts';
import type { Logger } from '../../core/logger.ts';
import type { StateBackend, StateView } from '../state/index.ts';
import { featureStates, readFeature, readFeatureAsOf, type FeatureRead, type FeatureStateSpec } from '../state/index.ts';
import type { WatchRegistry } from './watch-registry.ts';
import type { ServedQuery } from '../hosted-job.ts';
import { toJsonText } from '../../core/proto-values.ts';
import { ProtoWriter, encodeFeaturesResponse, type EncodedFeatureValue } from './feature-response-encoder.ts';
import type { InboxMessage, InboxSubscription, QueryInbox } from './query-inbox.ts';

/** A committed read that saw a commit land under it is redone at most this often, then UNAVAILABLE. */
const COMMITTED_READ_ATTEMPTS = 3;

export interface QueryResponderOptions {
  /** Where the NATS requests come from (query-inbox.ts): the job's own connection, or the worker's thread. */
  inbox: QueryInbox;
  jobId: JobId;
  manifest: JobManifest;
  keyGroups: readonly number[];
  backend: StateBackend;
  logger: Logger;
  /** Called with each query's answer time in milliseconds (metrics). @default none */
  recordLatencyMs?(ms: number): void;
  /** The assignment epoch of this runtime: a request routed for another epoch is not answered with data. */
  epoch: number;
  /** This worker: every reply names it (and the epoch), so the router can tell the owner's answer from a forgery. */
  workerId: string;
  /**
   * Set when a key group must not be served right now (moving, recovering): the reason, which the
   * responder answers as UNAVAILABLE:<reason> so that the router retries and never gets wrong data.
   */
  unavailableReason?: (keyGroup: number) => string | undefined;
  /** Feature watches: registrations arrive on eddy.w.<job>.<keyGroup>. */
  watches?: WatchRegistry;
}

interface WantedFeature {
  name: string;
  stage: string;
  spec: FeatureStateSpec;
}

/** What a lookup read: reads[f * ids.length + i] is feature f of ids[i] (of key group groups[i]). */
interface Found {
  ids: string[];
  groups: number[];
  wanted: WantedFeature[];
  /** The request named its features as a list (every value then names its feature). */
  several: boolean;
  reads: FeatureRead[];
  checkpointId: number;
  unavailableKeyGroups: number[];
  unavailableReason: string;
}

export class QueryResponder {
  readonly #o: QueryResponderOptions;
  /** Per key group: its query subscription, and its watch subscription when watches are on. */
  readonly #subs = new Map<number, InboxSubscription[]>();
  /** Key groups let go in a move, still subscribed: answered UNAVAILABLE until the move completes. */
  readonly #released = new Set<number>();
  /** Features asked for so far, resolved from the manifest (#feature). */
  readonly #features = new Map<string, WantedFeature>();
  /** Direct reads' responses are written here (one at a time: encoding is synchronous). */
  readonly #writer = new ProtoWriter();
  readonly #scratch: EncodedFeatureValue = { feature: '', found: false, value: undefined, eventTimeMs: undefined, keyGroup: 0, checkpointId: 0, uncommitted: false, beyondRetention: false };
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
      const subs = [this.#o.inbox.subscribe(subjects.query(this.#o.jobId, kg), (msg) => void this.#answer(kg, msg))];
      if (this.#o.watches) subs.push(this.#o.inbox.subscribe(subjects.watch(this.#o.jobId, kg), (msg) => void this.#watch(kg, msg)));
      this.#subs.set(kg, subs);
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
      for (const sub of this.#subs.get(kg) ?? []) sub.drain();
      this.#subs.delete(kg);
    }
  }

  async #answer(keyGroup: number, msg: InboxMessage): Promise<void> {
    let reply: QueryReply;
    try {
      reply = await this.answer(codecs.queryRequest.decode(msg.data), keyGroup);
    } catch (e) {
      // Only a request that does not decode gets here: answer() answers its own failures.
      reply = { values: [], error: `INTERNAL:${ensureError(e).message}`, checkpointId: 0, workerId: this.#o.workerId, epoch: this.#o.epoch };
    }
    msg.respond(codecs.queryReply.encode(reply));
  }

  /**
   * The answer to one query, naming this worker and its epoch; never rejects. `subjectKeyGroup`
   * names the key group in messages (the subject a NATS request came on; -1: asked directly).
   */
  async answer(req: QueryRequest, subjectKeyGroup = -1): Promise<QueryReply> {
    this.queries++;
    const started = performance.now();
    let reply: QueryReply;
    try {
      const found = await this.#lookup(subjectKeyGroup, req);
      reply = 'reads' in found ? toQueryReply(found) : found;
    } catch (e) {
      this.#o.logger.error({ err: ensureError(e), keyGroup: subjectKeyGroup }, 'query failed');
      reply = { values: [], error: `INTERNAL:${ensureError(e).message}`, checkpointId: 0 };
    }
    reply.workerId = this.#o.workerId;
    reply.epoch = this.#o.epoch;
    this.#o.recordLatencyMs?.(performance.now() - started);
    return reply;
  }

  /**
   * A direct read (the worker's serving endpoint, serving-endpoint.ts): the same lookup as
   * answer(), but a complete answer comes back as the eddy.v2 GetFeaturesResponse's bytes, one row
   * per id of the request in its order (repeats included) with every feature it names
   * (feature-response-encoder.ts); the reply then has no values. Anything else (an error, key
   * groups not served here) is the reply alone, as answer() gives it. Never rejects.
   */
  async serve(req: QueryRequest): Promise<ServedQuery> {
    this.queries++;
    const started = performance.now();
    let served: ServedQuery;
    try {
      // Each id is read once, however often the request names it.
      const rowIds = req.entityIds;
      const unique = rowIds.length === 1 ? rowIds : [...new Set(rowIds)];
      const found = await this.#lookup(-1, unique === rowIds ? req : { ...req, entityIds: unique });
      if (!('reads' in found)) served = { reply: found };
      else if (found.unavailableKeyGroups.length > 0) served = { reply: { values: [], error: '', checkpointId: 0, unavailableKeyGroups: found.unavailableKeyGroups, unavailableReason: found.unavailableReason } };
      else served = { reply: { values: [], error: '', checkpointId: found.checkpointId }, response: this.#encode(found, rowIds, unique, req.valueJson) };
    } catch (e) {
      this.#o.logger.error({ err: ensureError(e) }, 'direct read failed');
      served = { reply: { values: [], error: `INTERNAL:${ensureError(e).message}`, checkpointId: 0 } };
    }
    served.reply.workerId = this.#o.workerId;
    served.reply.epoch = this.#o.epoch;
    this.#o.recordLatencyMs?.(performance.now() - started);
    return served;
  }

  #encode(found: Found, rowIds: readonly string[], unique: readonly string[], json: boolean): Uint8Array {
    const { ids, groups, reads, wanted, checkpointId } = found;
    // All of `unique` was served (nothing unavailable), so ids is unique in the same order.
    let indexOf: Map<string, number> | undefined;
    if (rowIds !== unique) {
      indexOf = new Map();
      for (let i = 0; i < ids.length; i++) indexOf.set(ids[i]!, i);
    }
    const value = this.#scratch;
    value.checkpointId = checkpointId;
    return encodeFeaturesResponse(this.#writer, rowIds, wanted.length, (row, f) => {
      const i = indexOf === undefined ? row : indexOf.get(rowIds[row]!)!;
      const r = reads[f * ids.length + i]!;
      value.feature = wanted[f]!.name;
      value.found = r.found;
      value.value = r.value;
      value.eventTimeMs = r.found ? r.eventTimeMs : undefined;
      value.keyGroup = groups[i]!;
      value.uncommitted = r.uncommitted;
      value.beyondRetention = r.beyondRetention;
      return value;
    }, json);
  }

  /** Why a key group is not served now: let go in a move, or the runtime's own reason. */
  #unavailable(keyGroup: number): string | undefined {
    if (this.#released.has(keyGroup)) return `key group ${keyGroup} is moving to another worker`;
    return this.#o.unavailableReason?.(keyGroup);
  }

  async #watch(keyGroup: number, msg: InboxMessage): Promise<void> {
    let error: string;
    try {
      const unavailable = this.#unavailable(keyGroup);
      error = unavailable !== undefined ? `UNAVAILABLE:${unavailable}` : await this.#o.watches!.register(keyGroup, codecs.watchRegister.decode(msg.data));
    } catch (e) {
      this.#o.logger.error({ err: ensureError(e), keyGroup }, 'watch registration failed');
      error = `INTERNAL:${ensureError(e).message}`;
    }
    msg.respond(codecs.ack.encode({ ok: error === '', error }));
  }

  /**
   * One request names ids of one or more key groups (the router asks each owner once for all the
   * ids it owns). Key groups this worker does not serve right now are listed as unavailable, the
   * others answered; a request that reaches a worker other than the owner it names is answered
   * UNAVAILABLE as a whole, without data.
   */
  async #lookup(subjectKeyGroup: number, req: QueryRequest): Promise<QueryReply | Found> {
    const { backend, manifest, epoch, workerId } = this.#o;
    const what = subjectKeyGroup >= 0 ? `key group ${subjectKeyGroup}` : `job ${this.#o.jobId}`;
    if (req.owner !== '' && req.owner !== workerId) {
      return { values: [], error: `UNAVAILABLE:${what} is asked of worker ${req.owner}, not of ${workerId}`, checkpointId: 0 };
    }
    // An epoch 0 request comes from a client that does not know the assignment (tools, tests).
    if (req.epoch !== 0 && req.epoch !== epoch) {
      return { values: [], error: `UNAVAILABLE:${what} is served at epoch ${epoch}, the request is for epoch ${req.epoch}`, checkpointId: 0 };
    }
    // One feature, or several (GetFeatures): each read for every id.
    const names = req.features.length > 0 ? req.features : [req.feature];
    const wanted: WantedFeature[] = [];
    for (const name of names) {
      const feature = this.#feature(name);
      if (feature === undefined) return { values: [], error: `NOT_FOUND:job ${this.#o.jobId} has no feature ${name}`, checkpointId: 0 };
      if (req.hasAsOf && feature.spec.historyRetentionMs === undefined) {
        return { values: [], error: `FAILED_PRECONDITION:feature ${name} keeps no history; declare it with { history: { retentionMs } } for as-of reads`, checkpointId: 0 };
      }
      wanted.push(feature);
    }
    // Which key groups of the request are served here now: the ids' key groups are computed with
    // this worker's own mapping, so a request routed with another mapping never reads a
    // neighbour's range.
    let ids: string[] = [];
    let groups: number[] = [];
    const unavailable = new Map<number, string>();
    for (const id of req.entityIds) {
      const kg = keyGroupForKey(id, manifest.maxParallelism);
      const why = unavailable.get(kg) ?? this.#notServed(kg);
      if (why !== undefined) {
        unavailable.set(kg, why);
        continue;
      }
      ids.push(id);
      groups.push(kg);
    }
    const view: StateView = req.view === 1 ? 'committed' : 'latest';
    const readAll = (): Array<FeatureRead | Promise<FeatureRead>> => {
      const reads: Array<FeatureRead | Promise<FeatureRead>> = [];
      for (const { stage, spec } of wanted) {
        for (let i = 0; i < ids.length; i++) {
          const kg = groups[i]!;
          reads.push(req.hasAsOf ? readFeatureAsOf(backend, stage, kg, spec, ids[i]!, view, req.asOfUnixMs) : readFeature(backend, stage, kg, spec, ids[i]!, view));
        }
      }
      return reads;
    };
    for (let attempt = 1; ; attempt++) {
      if (ids.length === 0 && unavailable.size > 0) {
        return { values: [], error: `UNAVAILABLE:${unavailable.values().next().value}`, checkpointId: 0 };
      }
      // A commit that lands during the reads could mix two checkpoints in one committed answer:
      // read again until the checkpoint is the same before and after.
      const checkpointId = backend.committedCheckpointId;
      // Hot entities are read synchronously (readFeature): a promise only when one read is not.
      const pending = readAll();
      const reads = pending.some((r) => r instanceof Promise) ? await Promise.all(pending) : (pending as FeatureRead[]);
      // A key group let go while its reads were under way (a move's barrier, then its completion,
      // which drops the state) may have been read half gone: those ids are unavailable, never
      // "not found". The others are read again, so that the answer is one consistent read.
      let lost = false;
      for (const kg of groups) {
        const why = unavailable.has(kg) ? undefined : this.#notServed(kg);
        if (why === undefined) continue;
        unavailable.set(kg, why);
        lost = true;
      }
      if (lost) {
        const keep = groups.map((kg) => !unavailable.has(kg));
        ids = ids.filter((_, i) => keep[i]);
        groups = groups.filter((_, i) => keep[i]);
        continue;
      }
      if (view === 'latest' || backend.committedCheckpointId === checkpointId) {
        const unavailableKeyGroups = [...unavailable.keys()];
        const unavailableReason = unavailable.size === 0 ? '' : unavailable.values().next().value!;
        return { ids, groups, wanted, several: req.features.length > 0, reads, checkpointId: Math.max(0, checkpointId), unavailableKeyGroups, unavailableReason };
      }
      if (attempt >= COMMITTED_READ_ATTEMPTS) {
        return { values: [], error: `UNAVAILABLE:checkpoints committed faster than ${what} could be read`, checkpointId: 0 };
      }
    }
  }

  /** Why this worker does not serve a key group now (not subscribed, or let go in a move), or undefined. */
  #notServed(keyGroup: number): string | undefined {
    return this.#subs.has(keyGroup) ? this.#unavailable(keyGroup) : `key group ${keyGroup} is not served by worker ${this.#o.workerId}`;
  }

  /** A feature by name, resolved once per name (the manifest does not change within a runtime). */
  #feature(name: string): WantedFeature | undefined {
    let feature = this.#features.get(name);
    if (feature === undefined) {
      const found = findFeature(this.#o.manifest, name);
      if (!found) return undefined;
      feature = { name, stage: found.stage.id, spec: featureStates(found.stage).get(found.state.name)! };
      this.#features.set(name, feature);
    }
    return feature;
  }

  stop(): void {
    for (const subs of this.#subs.values()) for (const s of subs) s.unsubscribe();
    this.#subs.clear();
  }
}

/** The NATS subjects' answer: each read as a QueryValue with its value as JSON. */
function toQueryReply(found: Found): QueryReply {
  const { ids, reads, wanted, several, checkpointId, unavailableKeyGroups, unavailableReason } = found;
  const values = reads.map((r, i) => toQueryValue(ids[i % ids.length]!, r, several ? wanted[Math.floor(i / ids.length)]!.name : undefined));
  return { values, error: '', checkpointId, unavailableKeyGroups, unavailableReason };
}

function toQueryValue(entityId: string, r: FeatureRead, feature = ''): QueryValue & { feature: string } {
  return {
    feature,
    entityId,
    found: r.found,
    valueJson: r.found ? toJsonText(r.value) : '',
    eventTimeUnixMs: r.eventTimeMs ?? 0,
    hasEventTime: r.found && r.eventTimeMs !== undefined,
    uncommitted: r.uncommitted,
    beyondRetention: r.beyondRetention,
  };
}
