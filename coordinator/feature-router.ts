// FeatureService behind gRPC: route each entity id by key group over NATS request-reply to
// eddy.q.<job>.<keyGroup>; a batch is split per key group and asked in parallel.
//
// Never wrong data: a key group that is moving or recovering answers UNAVAILABLE (or nobody
// answers); the router waits briefly and asks again while the caller's deadline allows, then fails
// the whole request with a retry hint rather than return what some key groups said.
import type { NatsConnection } from '@nats-io/transport-node';
import { codecs, ForgedMessageError, logRejected, type QueryValue } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { findFeature } from '../core/manifest.ts';
import { keyGroupForKey } from '../core/key-groups.ts';
import { EddyError, InvalidArgumentError, NotFoundError, RetryableError, excerpt } from '../core/errors.ts';
import type { JobManager, JobRecord } from './job-manager.ts';
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
/** The shortest single request to a key group's owner. */
const MIN_ATTEMPT_MS = 250;
/** Time kept back from the caller's deadline to send the answer. */
const ANSWER_MARGIN_MS = 20;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class FeatureRouter {
  readonly #nc: NatsConnection;
  readonly #jobs: JobManager;
  readonly #metrics: CoordinatorMetrics | undefined;

  readonly #requester: QueryRequester;

  constructor(nc: NatsConnection, jobs: JobManager, metrics?: CoordinatorMetrics, logger?: Logger) {
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

  /** Answers one Get or BatchGet; its latency goes to eddy_feature_query_duration_ms. */
  async get(query: FeatureQuery): Promise<FeatureAnswer[]> {
    const metrics = this.#metrics;
    if (!metrics) return this.#get(query);
    const started = performance.now();
    try {
      const answers = await this.#get(query);
      metrics.queryAnswered(query.jobId, true, performance.now() - started);
      return answers;
    } catch (e) {
      metrics.queryAnswered(query.jobId, false, performance.now() - started);
      throw e;
    }
  }

  async #get(query: FeatureQuery): Promise<FeatureAnswer[]> {
    const { jobId, feature, entityIds } = query;
    if (entityIds.length === 0) return [];
    if (entityIds.length > MAX_BATCH_IDS) throw new InvalidArgumentError(`at most ${MAX_BATCH_IDS} entity ids per request, got ${entityIds.length}`);
    for (const id of entityIds) if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('entity ids must be non-empty strings');
    if (query.asOfUnixMs !== undefined && !Number.isSafeInteger(query.asOfUnixMs)) throw new InvalidArgumentError(`as_of ${query.asOfUnixMs} is not an integer time in ms`);
    let job = this.#jobs.get(jobId);
    if (!findFeature(job.manifest, feature)) {
      const all = job.manifest.stages.flatMap((s) => s.features.map((f) => f.name));
      throw new NotFoundError(`job ${excerpt(jobId)} has no feature ${excerpt(feature)}${all.length ? ` (it has: ${all.join(', ')})` : ''}`);
    }
    job = await this.#whenRunning(job, query.deadlineAtMs);
    const maxParallelism = job.manifest.maxParallelism;
    const byGroup = new Map<number, string[]>();
    for (const id of entityIds) {
      const kg = keyGroupForKey(id, maxParallelism);
      const list = byGroup.get(kg);
      if (list) list.push(id);
      else byGroup.set(kg, [id]);
    }
    const answers = new Map<string, FeatureAnswer>();
    await Promise.all(
      [...byGroup].map(async ([kg, ids]) => {
        const reply = await this.#askWithRetry(job.id, kg, ids, query);
        for (const v of reply.values) answers.set(v.entityId, toAnswer(v, kg, reply.checkpointId));
      }),
    );
    return entityIds.map((id) => {
      const answer = answers.get(id);
      // Every key group answered for all of its ids; a missing one is a responder bug, not "absent".
      if (answer === undefined) throw new EddyError('INTERNAL', `key group ${keyGroupForKey(id, maxParallelism)} of job ${jobId} gave no answer for ${id}`);
      return answer;
    });
  }

  /** The job once RUNNING; a job being (re)deployed is waited for until the deadline. */
  async #whenRunning(job: JobRecord, deadlineAtMs: number): Promise<JobRecord> {
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

  async #askWithRetry(jobId: string, keyGroup: number, entityIds: string[], query: FeatureQuery): Promise<{ values: QueryValue[]; checkpointId: number }> {
    let delay = RETRY_FIRST_DELAY_MS;
    // Briefly: a key group that stays unavailable (a move waiting on its checkpoint) is reported
    // with a retry hint after MAX_UNAVAILABLE_WAIT_MS, however long the caller's deadline.
    const giveUpAtMs = Date.now() + MAX_UNAVAILABLE_WAIT_MS;
    for (let attempt = 1; ; attempt++) {
      const remaining = query.deadlineAtMs - Date.now();
      // The epoch is read per attempt: a retry after a move goes to the new owner with the new epoch.
      const job = this.#jobs.get(jobId);
      let why: string;
      if (remaining <= ANSWER_MARGIN_MS) {
        why = 'the deadline passed';
      } else if (job.state !== 'RUNNING') {
        why = `job ${jobId} is ${job.state}`;
      } else {
        // One attempt may not use the whole deadline: a responder that does not answer (a
        // worker stalled by a restore) is asked again, and the caller hears UNAVAILABLE with a
        // retry hint before its own deadline instead of DEADLINE_EXCEEDED.
        const attemptMs = Math.min(remaining - ANSWER_MARGIN_MS, Math.max(giveUpAtMs - Date.now(), MIN_ATTEMPT_MS));
        const outcome = await this.#ask(jobId, keyGroup, entityIds, query, job.epoch, attemptMs);
        if (outcome.kind === 'answer') return outcome;
        why = outcome.reason;
      }
      const left = Math.min(query.deadlineAtMs, giveUpAtMs) - Date.now();
      if (left <= delay) {
        throw new RetryableError(`key group ${keyGroup} of job ${jobId} is unavailable after ${attempt} attempt(s): ${why}`, RETRY_AFTER_MS);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
    }
  }

  async #ask(
    jobId: string,
    keyGroup: number,
    entityIds: string[],
    query: FeatureQuery,
    epoch: number,
    timeoutMs: number,
  ): Promise<{ kind: 'answer'; values: QueryValue[]; checkpointId: number } | { kind: 'unavailable'; reason: string }> {
    const req = codecs.queryRequest.encode({
      feature: query.feature,
      entityIds,
      view: query.view === 'committed' ? 1 : 0,
      epoch,
      asOfUnixMs: query.asOfUnixMs ?? 0,
      hasAsOf: query.asOfUnixMs !== undefined,
    });
    // No responder (a key group between owners) or a time-out: never a guess.
    // Only the key group's owner at this epoch may answer (anyone subscribed can reply).
    const assignment = this.#jobs.get(jobId).assignment;
    const owner = [...assignment].find(([, a]) => a.keyGroups.some((r) => keyGroup >= r.start && keyGroup <= r.end))?.[0];
    const check = (data: Uint8Array): string | undefined => {
      const r = codecs.queryReply.decode(data);
      if (r.workerId === owner && Number(r.epoch) === epoch) return undefined;
      // During a move the assignment already names the new owner while the old one, which let
      // the key group go, answers UNAVAILABLE: an answer without data, from a worker of the job,
      // can only make the router retry.
      if (r.values.length === 0 && r.error.startsWith('UNAVAILABLE:') && Number(r.epoch) === epoch && assignment.has(r.workerId as never)) return undefined;
      return `a reply for key group ${keyGroup} of job ${jobId} from ${excerpt(r.workerId ?? '')} at epoch ${Number(r.epoch ?? 0)}; its owner is ${owner ?? 'nobody'} at epoch ${epoch}`;
    };
    const outcome = await this.#requester.request(subjects.query(jobId as never, keyGroup), req, Math.max(1, Math.floor(timeoutMs)), check);
    if (outcome.kind === 'unavailable') return outcome;
    const reply = codecs.queryReply.decode(outcome.data);
    if (!reply.error) return { kind: 'answer', values: reply.values, checkpointId: reply.checkpointId };
    const colon = reply.error.indexOf(':');
    const code = colon < 0 ? reply.error : reply.error.slice(0, colon);
    const message = colon < 0 ? reply.error : reply.error.slice(colon + 1);
    if (code === 'UNAVAILABLE') return { kind: 'unavailable', reason: message };
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
