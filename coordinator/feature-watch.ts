// One WatchFeatures stream on the serving side. Interest is registered with the owner of each key
// group on eddy.w.<job>.<keyGroup> under a lease, renewed while the stream lives; the owners publish
// the watched entities' values to this watch's inbox after each batch that changed them.
//
// Moves and recoveries: a new owner (or a redeployed one, whose watches were dropped with its
// runtime) does not know the watch, so the renewal registers it afresh and the owner first sends the
// current values, marked initial: a change made in between is merged into that value, never lost.
// The router renews at once when it sees the job's epoch change, and drops events of an epoch older
// than one it has already seen for the key group (an old owner's last words after a move).
import { randomUUID } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { codecs, type WatchEvent } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { findFeature } from '../core/manifest.ts';
import { keyGroupForKey } from '../core/key-groups.ts';
import { EddyError, InvalidArgumentError, NotFoundError, RetryableError, ensureError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { JobLookup } from './job-directory.ts';
import { MAX_BATCH_IDS, RETRY_AFTER_MS, type FeatureAnswer } from './feature-answer.ts';

export interface FeatureWatchOptions {
  /** Lease given to owners; a router that vanished costs nothing after it. @default 5000 */
  leaseMs?: number;
  /** Renewal period (and epoch check). @default 1000 */
  renewEveryMs?: number;
  /** A key group that cannot be registered for this long ends the stream with UNAVAILABLE. @default 15000 */
  unreachableAfterMs?: number;
}

export interface WatchChange {
  value: FeatureAnswer;
  initial: boolean;
}

export interface WatchSink {
  send(change: WatchChange): void;
  end(error: Error): void;
}

export class FeatureWatch {
  readonly #nc: NatsConnection;
  readonly #jobs: JobLookup;
  readonly #logger: Logger;
  readonly #jobId: string;
  readonly #feature: string;
  readonly #byGroup = new Map<number, string[]>();
  readonly #sink: WatchSink;
  readonly #options: Required<FeatureWatchOptions>;
  readonly #id = randomUUID();
  // Not an _INBOX subject: workers may not publish into the coordinator's inboxes.
  readonly #inbox = subjects.watchEvents(randomUUID().replaceAll('-', ''));
  #sub: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #epoch = -1;
  #lastRenewMs = 0;
  #renewing = false;
  /** Per key group: newest epoch seen in an event, and since when registration fails. */
  readonly #seenEpoch = new Map<number, number>();
  readonly #failingSince = new Map<number, number>();

  constructor(nc: NatsConnection, jobs: JobLookup, logger: Logger, request: { jobId: string; feature: string; entityIds: readonly string[] }, sink: WatchSink, options: FeatureWatchOptions = {}) {
    this.#nc = nc;
    this.#jobs = jobs;
    this.#logger = logger;
    this.#jobId = request.jobId;
    this.#feature = request.feature;
    this.#sink = sink;
    this.#options = { leaseMs: 5000, renewEveryMs: 1000, unreachableAfterMs: 15_000, ...options };
    const { entityIds } = request;
    if (entityIds.length === 0) throw new InvalidArgumentError('watch at least one entity id');
    if (entityIds.length > MAX_BATCH_IDS) throw new InvalidArgumentError(`at most ${MAX_BATCH_IDS} entity ids per watch, got ${entityIds.length}`);
    for (const id of entityIds) if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('entity ids must be non-empty strings');
    const job = jobs.get(request.jobId);
    if (!findFeature(job.manifest, request.feature)) throw new NotFoundError(`job ${request.jobId} has no feature ${request.feature}`);
    if (job.state === 'FAILED' || job.state === 'CANCELLED') throw new EddyError('FAILED_PRECONDITION', `job ${job.id} is ${job.state}; its features are not served`);
    for (const id of new Set(entityIds)) {
      const kg = keyGroupForKey(id, job.manifest.maxParallelism);
      const list = this.#byGroup.get(kg);
      if (list) list.push(id);
      else this.#byGroup.set(kg, [id]);
    }
  }

  start(): void {
    this.#sub = this.#nc.subscribe(this.#inbox, { callback: (_err, msg) => this.#onEvent(codecs.watchEvent.decode(msg.data)) });
    const tick = () => {
      if (this.#stopped) return;
      const job = this.#jobs.get(this.#jobId);
      const due = Date.now() - this.#lastRenewMs >= this.#options.renewEveryMs;
      if ((due || job.epoch !== this.#epoch) && !this.#renewing) void this.#renew();
    };
    this.#timer = setInterval(tick, Math.min(250, this.#options.renewEveryMs));
    tick();
  }

  /** Ends the watch: owners are told to drop it at once (else the lease ends it). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#sub?.unsubscribe();
    for (const [kg, ids] of this.#byGroup) {
      this.#nc.publish(subjects.watch(this.#jobId as never, kg), codecs.watchRegister.encode({ watchId: this.#id, feature: this.#feature, entityIds: ids, leaseMs: 0, inbox: this.#inbox }));
    }
  }

  async #renew(): Promise<void> {
    this.#renewing = true;
    try {
      const job = this.#jobs.get(this.#jobId);
      if (job.state === 'FAILED' || job.state === 'CANCELLED') {
        return this.#fail(new EddyError('FAILED_PRECONDITION', `job ${job.id} is ${job.state}; the watch ends`));
      }
      this.#epoch = job.epoch;
      this.#lastRenewMs = Date.now();
      const now = Date.now();
      await Promise.all(
        [...this.#byGroup].map(async ([kg, ids]) => {
          const error = job.state === 'RUNNING' ? await this.#register(kg, ids) : `job ${job.id} is ${job.state}`;
          if (error === '') {
            this.#failingSince.delete(kg);
            return;
          }
          if (error.startsWith('NOT_FOUND:')) return this.#fail(new NotFoundError(error.slice('NOT_FOUND:'.length)));
          const since = this.#failingSince.get(kg) ?? now;
          this.#failingSince.set(kg, since);
          // Ask again soon rather than at the next renewal.
          this.#lastRenewMs = 0;
          if (now - since >= this.#options.unreachableAfterMs) {
            this.#fail(new RetryableError(`key group ${kg} of job ${this.#jobId} could not be watched for ${now - since} ms: ${error}`, RETRY_AFTER_MS));
          }
        }),
      );
    } catch (e) {
      this.#fail(ensureError(e));
    } finally {
      this.#renewing = false;
    }
  }

  async #register(keyGroup: number, entityIds: string[]): Promise<string> {
    const message = codecs.watchRegister.encode({ watchId: this.#id, feature: this.#feature, entityIds, leaseMs: this.#options.leaseMs, inbox: this.#inbox });
    try {
      const reply = codecs.ack.decode((await this.#nc.request(subjects.watch(this.#jobId as never, keyGroup), message, { timeout: 1000 })).data);
      return reply.ok ? '' : reply.error || 'refused';
    } catch (e) {
      return ensureError(e).message;
    }
  }

  #onEvent(event: WatchEvent): void {
    if (this.#stopped || event.watchId !== this.#id) return;
    const seen = this.#seenEpoch.get(event.keyGroup) ?? 0;
    if (event.epoch < seen) return;
    this.#seenEpoch.set(event.keyGroup, event.epoch);
    for (const v of event.values) {
      this.#sink.send({
        initial: event.initial,
        value: {
          entityId: v.entityId,
          found: v.found,
          valueJson: v.valueJson,
          keyGroup: event.keyGroup,
          eventTimeUnixMs: v.hasEventTime ? v.eventTimeUnixMs : undefined,
          checkpointId: event.checkpointId,
          uncommitted: v.uncommitted,
          beyondRetention: false,
        },
      });
    }
  }

  #fail(error: Error): void {
    if (this.#stopped) return;
    this.#logger.info({ jobId: this.#jobId, watchId: this.#id, err: error.message }, 'watch ended');
    this.stop();
    this.#sink.end(error);
  }
}
