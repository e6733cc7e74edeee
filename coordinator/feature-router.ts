// FeatureService behind gRPC: route each entity id by key group over NATS request-reply to
// eddy.q.<job>.<keyGroup>; a batch is split per key group and asked in parallel.
import type { NatsConnection } from '@nats-io/transport-node';
import { codecs, type QueryValue } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { findFeature } from '../core/manifest.ts';
import { keyGroupForKey } from '../core/key-groups.ts';
import { EddyError, InvalidArgumentError, NotFoundError, RetryableError, ensureError } from '../core/errors.ts';
import type { JobManager } from './job-manager.ts';
import type { CoordinatorMetrics } from './coordinator-metrics.ts';

export const MAX_BATCH_IDS = 1000;

export interface FeatureAnswer {
  entityId: string;
  found: boolean;
  valueJson: string;
  keyGroup: number;
}

export class FeatureRouter {
  readonly #nc: NatsConnection;
  readonly #jobs: JobManager;
  readonly #metrics: CoordinatorMetrics | undefined;

  constructor(nc: NatsConnection, jobs: JobManager, metrics?: CoordinatorMetrics) {
    this.#nc = nc;
    this.#jobs = jobs;
    this.#metrics = metrics;
  }

  /** Answers one Get or BatchGet; its latency goes to eddy_feature_query_duration_ms. */
  async get(jobId: string, feature: string, entityIds: readonly string[], view: 'latest' | 'committed', timeoutMs: number): Promise<FeatureAnswer[]> {
    const metrics = this.#metrics;
    if (!metrics) return this.#get(jobId, feature, entityIds, view, timeoutMs);
    const started = performance.now();
    try {
      const answers = await this.#get(jobId, feature, entityIds, view, timeoutMs);
      metrics.queryAnswered(jobId, true, performance.now() - started);
      return answers;
    } catch (e) {
      metrics.queryAnswered(jobId, false, performance.now() - started);
      throw e;
    }
  }

  async #get(jobId: string, feature: string, entityIds: readonly string[], view: 'latest' | 'committed', timeoutMs: number): Promise<FeatureAnswer[]> {
    if (entityIds.length === 0) return [];
    if (entityIds.length > MAX_BATCH_IDS) throw new InvalidArgumentError(`at most ${MAX_BATCH_IDS} entity ids per request, got ${entityIds.length}`);
    for (const id of entityIds) if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('entity ids must be non-empty strings');
    const job = this.#jobs.get(jobId);
    if (!findFeature(job.manifest, feature)) {
      const all = job.manifest.stages.flatMap((s) => s.features.map((f) => f.name));
      throw new NotFoundError(`job ${jobId} has no feature ${feature}${all.length ? ` (it has: ${all.join(', ')})` : ''}`);
    }
    if (job.state !== 'RUNNING') {
      throw new EddyError('FAILED_PRECONDITION', `job ${jobId} is ${job.state}${job.lastFailure ? `: ${job.lastFailure.message}` : ''}; its features are not served`);
    }
    const byGroup = new Map<number, string[]>();
    for (const id of entityIds) {
      const kg = keyGroupForKey(id, job.manifest.maxParallelism);
      const list = byGroup.get(kg);
      if (list) list.push(id);
      else byGroup.set(kg, [id]);
    }
    const answers = new Map<string, FeatureAnswer>();
    await Promise.all(
      [...byGroup].map(async ([kg, ids]) => {
        for (const v of await this.#ask(job.id, kg, feature, ids, view, timeoutMs)) answers.set(v.entityId, { ...v, keyGroup: kg });
      }),
    );
    return entityIds.map((id) => answers.get(id) ?? { entityId: id, found: false, valueJson: '', keyGroup: keyGroupForKey(id, job.manifest.maxParallelism) });
  }

  async #ask(jobId: string, keyGroup: number, feature: string, entityIds: string[], view: 'latest' | 'committed', timeoutMs: number): Promise<QueryValue[]> {
    const req = codecs.queryRequest.encode({ feature, entityIds, view: view === 'committed' ? 1 : 0, epoch: 0 });
    let data: Uint8Array;
    try {
      data = (await this.#nc.request(subjects.query(jobId as never, keyGroup), req, { timeout: Math.max(1, timeoutMs) })).data;
    } catch (e) {
      // No responder (a key group between owners) or a time-out: never a guess, a retry hint.
      throw new RetryableError(`key group ${keyGroup} of job ${jobId} did not answer: ${ensureError(e).message}`, 100, { cause: e });
    }
    const reply = codecs.queryReply.decode(data);
    if (reply.error) {
      const [code, ...rest] = reply.error.split(':');
      const message = rest.join(':');
      if (code === 'NOT_FOUND') throw new NotFoundError(message);
      if (code === 'UNAVAILABLE') throw new RetryableError(message, 100);
      throw new EddyError('INTERNAL', message || reply.error);
    }
    return reply.values;
  }
}
