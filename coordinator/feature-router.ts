// FeatureService behind gRPC: each entity id belongs to a key group; the router asks each worker
// that owns key groups of the request ONCE, for all of its ids, by NATS request-reply on the
// subject of one of its key groups (eddy.q.<job>.<keyGroup>), naming the owner it expects.
//
// Never wrong data: a key group that is moving or recovering is reported unavailable by its worker
// (or nobody answers); the router asks again for those ids only, while the caller's deadline
// allows, then fails the whole request rather than return what some key groups said.
//
// Deadlines: every attempt is bounded by the caller's deadline (no margin kept back); a call whose
// deadline passes without an answer fails with DEADLINE_EXCEEDED. UNAVAILABLE (with a retry hint)
// is kept for key groups that are moving or recovering and jobs being (re)deployed.
import type { NatsConnection } from '@nats-io/transport-node';
import { codecs, ForgedMessageError, logRejected, type QueryValue } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { findFeature } from '../core/manifest.ts';
import { keyGroupForKey, type KeyGroupRange } from '../core/key-groups.ts';
import { DeadlineExceededError, EddyError, InvalidArgumentError, NotFoundError, RetryableError, excerpt } from '../core/errors.ts';
import type { JobLookup, RoutedJob } from './job-directory.ts';
import type { Logger } from '../core/logger.ts';
import { QueryRequester } from './query-requester.ts';
import { FeatureWatch, type FeatureWatchOptions, type WatchSink } from './feature-watch.ts';
import { MAX_BATCH_IDS, RETRY_AFTER_MS, type FeatureAnswer, type FeatureQuery } from './feature-answer.ts';
import type { CoordinatorMetrics } from './coordinator-metrics.ts';

export { MAX_BATCH_IDS, RETRY_AFTER_MS, type FeatureAnswer, type FeatureQuery, type FeatureViewName } from './feature-answer.ts';

/** First pause before asking an unavailable key group again; doubled up to RETRY_MAX_DELAY_MS. */
const RETRY_FIRST_DELAY_MS = 20;
const RETRY_MAX_DELAY_MS = 200;
/** How long one request waits for an unavailable key group before answering UNAVAILABLE. */
const MAX_UNAVAILABLE_WAIT_MS = 2000;
/**
 * A retry of an unavailable key group is not started with less than this left of the deadline
 * after its pause: its answer, and the call's, could not reach the caller in time (the caller's
 * own deadline fires first, DEADLINE_EXCEEDED), where UNAVAILABLE with the reason is the truth.
 */
const MIN_RETRY_ATTEMPT_MS = 100;
/**
 * Once an owner has said in this call that a key group is unavailable (moving, recovering), later
 * attempts end this long before the deadline: a retry that goes unanswered is then reported as
 * UNAVAILABLE with that reason while the caller still listens, not left to become
 * DEADLINE_EXCEEDED. Without such an answer (only silence, or nobody subscribed) the deadline is
 * the caller's, and a silent owner is DEADLINE_EXCEEDED.
 */
const TOLD_UNAVAILABLE_MARGIN_MS = 100;
/** Key groups named in an error message, at most (a BatchGet may span all of them). */
const NAMED_KEY_GROUPS = 8;

const keyGroupList = (keyGroups: Iterable<number>): string => {
  const all = [...keyGroups];
  return all.length <= NAMED_KEY_GROUPS ? all.join(', ') : `${all.slice(0, NAMED_KEY_GROUPS).join(', ')} and ${all.length - NAMED_KEY_GROUPS} more`;
};

/** Which worker owns which key groups of a job, at its epoch (FeatureRouter.servingMap). */
export interface ServingMap {
  jobId: string;
  epoch: number;
  maxParallelism: number;
  owners: Array<{ workerId: string; keyGroups: readonly KeyGroupRange[] }>;
}

/** The ids of one owner's key groups, asked in one request. */
interface OwnerPart {
  owner: string;
  keyGroups: number[];
  entityIds: string[];
}

type AskOutcome =
  | { kind: 'answer'; values: QueryValue[]; checkpointId: number; unavailableKeyGroups: readonly number[]; reason: string }
  | { kind: 'unavailable'; reason: string; timedOut: boolean; /** An owner answered UNAVAILABLE (not silence, not "no responders"). */ told: boolean };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class FeatureRouter {
  readonly #nc: NatsConnection;
  /** The leader's job records, or a standby's job directory (coordinator/coordinator.ts). */
  readonly #jobs: JobLookup;
  readonly #metrics: CoordinatorMetrics | undefined;

  readonly #requester: QueryRequester;

  constructor(nc: NatsConnection, jobs: JobLookup, metrics?: CoordinatorMetrics, logger?: Logger) {
    this.#nc = nc;
    this.#jobs = jobs;
    this.#metrics = metrics;
    this.#requester = new QueryRequester(nc, (subject, reason) => {
      if (logger !== undefined) logRejected(logger, new ForgedMessageError(reason), 'query reply', { subject });
    });
  }

  /** Starts a WatchFeatures stream (coordinator/feature-watch.ts); stop() it when the call ends. */
  watch(request: { jobId: string; feature: string; entityIds: readonly string[] }, sink: WatchSink, logger: Logger, options?: FeatureWatchOptions): FeatureWatch {
    const watch = new FeatureWatch(this.#nc, this.#jobs, logger, request, sink, options);
    watch.start();
    return watch;
  }

  /**
   * GetServingMap: the owners of a job's key groups at its epoch, for clients that read from the
   * owners' serving endpoints directly. A map a moment old is safe: an owner answers only what it
   * serves at the epoch the client names, anything else is UNAVAILABLE (refresh and retry).
   */
  servingMap(jobId: string): ServingMap {
    const job = this.#jobs.get(jobId);
    if (job.state === 'FAILED' || job.state === 'CANCELLED') {
      throw new EddyError('FAILED_PRECONDITION', `job ${job.id} is ${job.state}${job.lastFailure ? `: ${job.lastFailure.message}` : ''}; its features are not served`);
    }
    if (job.state !== 'RUNNING') throw new RetryableError(`job ${job.id} is ${job.state} (recovering or deploying); retry shortly`, RETRY_AFTER_MS);
    const owners = [...job.assignment].filter(([, a]) => a.keyGroups.length > 0).map(([workerId, a]) => ({ workerId, keyGroups: a.keyGroups }));
    return { jobId: job.id, epoch: job.epoch, maxParallelism: job.manifest.maxParallelism, owners };
  }

  /** Answers one Get or BatchGet; its latency goes to eddy_feature_query_duration_ms. */
  async get(query: FeatureQuery): Promise<FeatureAnswer[]> {
    return (await this.getMany(query, [query.feature]))[0]!;
  }

  /**
   * Several features of the same ids (GetFeatures): the answers per feature, in the order given.
   * Each owning worker is asked once for all the features and ids it holds.
   */
  async getMany(query: Omit<FeatureQuery, 'feature'>, features: readonly string[]): Promise<FeatureAnswer[][]> {
    const metrics = this.#metrics;
    if (!metrics) return this.#get(query, features);
    const started = performance.now();
    try {
      const answers = await this.#get(query, features);
      metrics.queryAnswered(query.jobId, true, performance.now() - started);
      return answers;
    } catch (e) {
      metrics.queryAnswered(query.jobId, false, performance.now() - started);
      throw e;
    }
  }

  async #get(query: Omit<FeatureQuery, 'feature'>, features: readonly string[]): Promise<FeatureAnswer[][]> {
    const { jobId, entityIds } = query;
    if (entityIds.length === 0) return features.map(() => []);
    if (entityIds.length > MAX_BATCH_IDS) throw new InvalidArgumentError(`at most ${MAX_BATCH_IDS} entity ids per request, got ${entityIds.length}`, { field: 'entity_ids' });
    for (const id of entityIds) if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('entity ids must be non-empty strings', { field: 'entity_ids' });
    if (query.asOfUnixMs !== undefined && !Number.isSafeInteger(query.asOfUnixMs)) throw new InvalidArgumentError(`as_of ${query.asOfUnixMs} is not an integer time in ms`, { field: 'as_of' });
    let job = this.#jobs.get(jobId);
    for (const feature of features) {
      if (!findFeature(job.manifest, feature)) {
        const all = job.manifest.stages.flatMap((s) => s.features.map((f) => f.name));
        throw new NotFoundError(`job ${excerpt(jobId)} has no feature ${excerpt(feature)}${all.length ? ` (it has: ${all.join(', ')})` : ''}`);
      }
    }
    // Answers by feature index and entity id; a value names its feature when several were asked.
    const featureIndex = new Map(features.map((f, i) => [f, i]));
    const answerKey = (feature: string, entityId: string) => `${feature === '' ? 0 : featureIndex.get(feature)}\u0000${entityId}`;
    job = await this.#whenRunning(job, query.deadlineAtMs);
    const maxParallelism = job.manifest.maxParallelism;
    let pending = new Map<number, string[]>();
    const seen = new Set<string>();
    for (const id of entityIds) {
      if (seen.has(id)) continue;
      seen.add(id);
      const kg = keyGroupForKey(id, maxParallelism);
      const list = pending.get(kg);
      if (list) list.push(id);
      else pending.set(kg, [id]);
    }
    const answers = new Map<string, FeatureAnswer>();
    let delay = RETRY_FIRST_DELAY_MS;
    // Briefly: a key group that stays unavailable (a move waiting on its checkpoint) is reported
    // with a retry hint after MAX_UNAVAILABLE_WAIT_MS, however long the caller's deadline.
    const giveUpAtMs = Date.now() + MAX_UNAVAILABLE_WAIT_MS;
    // What an owner said in this call about a key group being unavailable (TOLD_UNAVAILABLE_MARGIN_MS).
    let told: string | undefined;
    for (let attempt = 1; ; attempt++) {
      // The assignment and epoch are read per attempt: a retry after a move goes to the new owner.
      const current = this.#jobs.get(jobId);
      let why = '';
      if (current.state !== 'RUNNING') {
        why = `job ${jobId} is ${current.state}`;
      } else {
        const remaining = query.deadlineAtMs - Date.now();
        if (remaining <= 0) {
          // After a pause for an unavailable key group (a timer may fire late on a loaded machine),
          // the reason is still the move or recovery; before any attempt it is the deadline.
          if (attempt > 1) throw new RetryableError(`key group(s) ${keyGroupList(pending.keys())} of job ${jobId} unavailable after ${attempt - 1} attempt(s)${why ? `: ${why}` : ''}`, RETRY_AFTER_MS);
          throw new DeadlineExceededError(`the deadline passed before key group(s) ${keyGroupList(pending.keys())} of job ${jobId} were asked`);
        }
        // An attempt may use the whole deadline: a worker that is slow to answer (a loaded
        // machine) is waited for, and one that never answers makes the call DEADLINE_EXCEEDED. A
        // key group between owners is seen at once (no responders, or its worker says so).
        const attemptMs = told === undefined ? remaining : remaining - TOLD_UNAVAILABLE_MARGIN_MS;
        if (attemptMs <= 0) throw new RetryableError(`key group(s) ${keyGroupList(pending.keys())} of job ${jobId} unavailable after ${attempt - 1} attempt(s): ${told}`, RETRY_AFTER_MS);
        const next = new Map<number, string[]>();
        why = '';
        const parts = this.#byOwner(current, pending, next);
        if (next.size > 0) why = `key group ${next.keys().next().value} of job ${jobId} has no owner`;
        const outcomes = await Promise.all(parts.map((part) => this.#ask(jobId, part, query, features, current, attemptMs)));
        for (let i = 0; i < parts.length; i++) {
          const part = parts[i]!;
          const outcome = outcomes[i]!;
          if (outcome.kind === 'unavailable') {
            if (outcome.timedOut) {
              if (told !== undefined) throw new RetryableError(`key group(s) ${keyGroupList(part.keyGroups)} of job ${jobId} unavailable, and no answer from worker ${part.owner} to the retry: ${told}`, RETRY_AFTER_MS);
              throw new DeadlineExceededError(`no answer from worker ${part.owner} for key group(s) ${keyGroupList(part.keyGroups)} of job ${jobId} within the deadline`);
            }
            for (const kg of part.keyGroups) next.set(kg, pending.get(kg)!);
            why = outcome.reason;
            if (outcome.told) told = outcome.reason;
            continue;
          }
          const unavailable = new Set(outcome.unavailableKeyGroups);
          for (const kg of unavailable) if (pending.has(kg)) next.set(kg, pending.get(kg)!);
          if (unavailable.size > 0) why = told = outcome.reason;
          for (const v of outcome.values) {
            const kg = keyGroupForKey(v.entityId, maxParallelism);
            if (!unavailable.has(kg) && pending.has(kg)) answers.set(answerKey(v.feature ?? '', v.entityId), toAnswer(v, kg, outcome.checkpointId));
          }
        }
        pending = next;
        if (pending.size === 0) break;
      }
      const left = Math.min(query.deadlineAtMs, giveUpAtMs) - Date.now();
      if (left <= delay + MIN_RETRY_ATTEMPT_MS) {
        throw new RetryableError(`key group(s) ${keyGroupList(pending.keys())} of job ${jobId} unavailable after ${attempt} attempt(s): ${why}`, RETRY_AFTER_MS);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
    }
    return features.map((feature, f) =>
      entityIds.map((id) => {
        const answer = answers.get(`${f}\u0000${id}`);
        // Every key group answered for all of its ids; a missing one is a responder bug, not "absent".
        if (answer === undefined) throw new EddyError('INTERNAL', `key group ${keyGroupForKey(id, maxParallelism)} of job ${jobId} gave no answer for ${id} (${feature})`);
        return answer;
      }),
    );
  }

  /** The pending key groups by owner in the job's assignment; those with no owner go to `ownerless`. */
  #byOwner(job: RoutedJob, pending: ReadonlyMap<number, string[]>, ownerless: Map<number, string[]>): OwnerPart[] {
    const parts = new Map<string, OwnerPart>();
    for (const [kg, ids] of pending) {
      let owner: string | undefined;
      for (const [worker, a] of job.assignment) {
        if (a.keyGroups.some((r) => kg >= r.start && kg <= r.end)) {
          owner = worker;
          break;
        }
      }
      if (owner === undefined) {
        ownerless.set(kg, ids);
        continue;
      }
      let part = parts.get(owner);
      if (part === undefined) parts.set(owner, (part = { owner, keyGroups: [], entityIds: [] }));
      part.keyGroups.push(kg);
      for (const id of ids) part.entityIds.push(id);
    }
    return [...parts.values()];
  }

  /** The job once RUNNING; a job being (re)deployed is waited for until the deadline. */
  async #whenRunning(job: RoutedJob, deadlineAtMs: number): Promise<RoutedJob> {
    let delay = RETRY_FIRST_DELAY_MS;
    for (;;) {
      if (job.state === 'RUNNING') return job;
      if (job.state === 'FAILED' || job.state === 'CANCELLED') {
        throw new EddyError('FAILED_PRECONDITION', `job ${job.id} is ${job.state}${job.lastFailure ? `: ${job.lastFailure.message}` : ''}; its features are not served`);
      }
      const remaining = deadlineAtMs - Date.now();
      if (remaining <= delay) throw new RetryableError(`job ${job.id} is ${job.state} (recovering or deploying); retry shortly`, RETRY_AFTER_MS);
      await sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
      job = this.#jobs.get(job.id);
    }
  }

  /** One request to one owner for all of its pending ids (on the subject of its first key group). */
  async #ask(jobId: string, part: OwnerPart, query: Omit<FeatureQuery, 'feature'>, features: readonly string[], job: RoutedJob, timeoutMs: number): Promise<AskOutcome> {
    const epoch = job.epoch;
    const req = codecs.queryRequest.encode({
      feature: features[0]!,
      ...(features.length > 1 && { features: [...features] }),
      entityIds: part.entityIds,
      view: query.view === 'committed' ? 1 : 0,
      epoch,
      asOfUnixMs: query.asOfUnixMs ?? 0,
      hasAsOf: query.asOfUnixMs !== undefined,
      owner: part.owner,
    });
    const subjectKeyGroup = part.keyGroups[0]!;
    // Only the owner at this epoch may answer with data (anyone subscribed can reply).
    const check = (data: Uint8Array): string | undefined => {
      const r = codecs.queryReply.decode(data);
      if (r.workerId === part.owner && Number(r.epoch) === epoch) return undefined;
      // During a move the old owner, still subscribed while it lets the key group go, answers
      // UNAVAILABLE; so does the new owner of a key group asked of its old one, and a worker of a
      // newer epoch. An answer without data can only make the router ask again, reading the
      // assignment again: a standby's job directory may be a moment behind the leader's
      // (coordinator/job-directory.ts) and not know the new owner or epoch yet.
      if (r.values.length === 0 && r.error.startsWith('UNAVAILABLE:') && Number(r.epoch) >= epoch) return undefined;
      return `a reply for key group ${subjectKeyGroup} of job ${jobId} from ${excerpt(r.workerId ?? '')} at epoch ${Number(r.epoch ?? 0)}; its owner is ${part.owner} at epoch ${epoch}`;
    };
    // No responder (a key group between owners) or a time-out: never a guess.
    const outcome = await this.#requester.request(subjects.query(jobId as never, subjectKeyGroup), req, Math.max(1, Math.floor(timeoutMs)), check);
    if (outcome.kind === 'unavailable') return { kind: 'unavailable', reason: outcome.reason, timedOut: outcome.timedOut, told: false };
    const reply = codecs.queryReply.decode(outcome.data);
    if (!reply.error) {
      return { kind: 'answer', values: reply.values, checkpointId: reply.checkpointId, unavailableKeyGroups: reply.unavailableKeyGroups ?? [], reason: reply.unavailableReason ?? '' };
    }
    const colon = reply.error.indexOf(':');
    const code = colon < 0 ? reply.error : reply.error.slice(0, colon);
    const message = colon < 0 ? reply.error : reply.error.slice(colon + 1);
    if (code === 'UNAVAILABLE') return { kind: 'unavailable', reason: message, timedOut: false, told: true };
    if (code === 'NOT_FOUND') throw new NotFoundError(message);
    if (code === 'FAILED_PRECONDITION') throw new EddyError('FAILED_PRECONDITION', message);
    throw new EddyError('INTERNAL', message || reply.error);
  }
}

function toAnswer(v: QueryValue, keyGroup: number, checkpointId: number): FeatureAnswer {
  return {
    entityId: v.entityId,
    found: v.found,
    valueJson: v.valueJson,
    keyGroup,
    eventTimeUnixMs: v.hasEventTime ? v.eventTimeUnixMs : undefined,
    checkpointId,
    uncommitted: v.uncommitted,
    beyondRetention: v.beyondRetention,
  };
}
