// The coordinator's state in NATS KV, so that a restarted coordinator picks up where it left off
// (docs/ARCHITECTURE.md, "Failure and scaling"). One JSON value per job under `jobs.<jobId>`, and a
// cluster-wide epoch under `epoch`.
//
// Only the leading coordinator writes (coordinator/leader-lease.ts), and every write is fenced:
// it names the revision this coordinator last wrote (or read when it took over), so a deposed
// leader that wakes up cannot overwrite what its successor claimed (FencedError instead). The
// first write of a new job is a create, which no revision can fence: the leader checks its lease
// before it, and watches the job keys (watchJobs) so that a create a deposed leader made after
// the takeover claimed the jobs is claimed and run too (docs/ARCHITECTURE.md, "Standby
// coordinators").
//
// Designed for nats-server 2.9: no per-message TTL, so nothing here expires by itself; deleted
// jobs leave a delete marker that history 1 keeps to one message per key.
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { KvWatchInclude, Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { EddyError, FencedError, InvalidArgumentError, RetryableError } from '../core/errors.ts';
import { isValidId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { storedPoisonRecordsProblem, type StoredPoisonRecord } from './poison-records.ts';

export interface StoredCheckpoint {
  id: number;
  /** Object-store key of the checkpoint's _metadata. */
  metadataKey: string;
  completedAtUnixMs: number;
}

export type StoredJobState = 'SUBMITTED' | 'DEPLOYING' | 'RUNNING' | 'RESTARTING' | 'CANCELLED' | 'FAILED' | 'FINISHED';

export const STORED_JOB_STATES: readonly StoredJobState[] = ['SUBMITTED', 'DEPLOYING', 'RUNNING', 'RESTARTING', 'CANCELLED', 'FAILED', 'FINISHED'];

export interface StoredJob {
  jobId: string;
  manifestJson: string;
  bundleSha256: string;
  /** Object-store key of the bundle. */
  bundleKey: string;
  state: StoredJobState;
  submittedAtUnixMs: number;
  epoch: number;
  latestCheckpoint: StoredCheckpoint | null;
  /** Completed checkpoints still retained, oldest first. */
  retainedCheckpoints: StoredCheckpoint[];
  savepoints: StoredCheckpoint[];
  /** Highest checkpoint id ever triggered (ids never repeat, even across restarts). */
  lastCheckpointId: number;
  restarts: number;
  lastFailure: { message: string; stageId: string; keyGroup: number; workerId: string; stack: string; atUnixMs: number } | null;
  /** Checkpoint whose exactly-once output is confirmed published (0 = none). */
  publishedCheckpointId: number;
  /**
   * Completed checkpoints whose exactly-once output (messages, part files) is not confirmed
   * published, oldest first, retained or not: a restarted coordinator publishes them again (the
   * streams drop repeats by Nats-Msg-Id). Absent in values written before it existed.
   */
  unpublishedCheckpoints?: StoredCheckpoint[];
  /** The source's startAt resolved at submit, used until a checkpoint completes (Job.initialPositions, coordinator/job.ts). */
  initialPositions?: Array<{ split: number; nextSequence: number }>;
  /**
   * Source records that failed, with their attempts, and the skip list (coordinator/
   * poison-records.ts): part of the job record, so that every later deploy skips the same ones.
   * Absent in values written before it existed.
   */
  poisonRecords?: StoredPoisonRecord[];
}

export interface JobStoreOptions {
  nc: NatsConnection;
  /** The KV bucket; created (history 1, file storage) when missing. @default "eddy-cluster" */
  bucket?: string;
  /** Replicas of the bucket's stream when it is created (a NATS cluster: 3). @default 1 */
  replicas?: number;
  logger: Logger;
}

export const DEFAULT_JOB_STORE_BUCKET = 'eddy-cluster';
const JOB_KEY_PREFIX = 'jobs.';
const EPOCH_KEY = 'epoch';
/** Compare-and-set rounds nextEpoch tries before giving up; each lost round means another caller won. */
const EPOCH_MAX_ATTEMPTS = 100;
/** Upper bound of the random pause between lost rounds, in ms; grows with the attempt up to this. */
const EPOCH_MAX_BACKOFF_MS = 50;

/** A value in the store that cannot be read back: the message names the key. Do not retry. */
export class JobStoreCorruptError extends EddyError {
  readonly key: string;
  constructor(key: string, detail: string, options?: { cause?: unknown }) {
    super('DATA_LOSS', `job store entry ${key} is corrupt: ${detail}`, options);
    this.key = key;
  }
}

/** A create found the job's key there already: another coordinator stored the job first. */
export class JobAlreadyStoredError extends EddyError {
  constructor(jobId: string, options?: { cause?: unknown }) {
    super('ALREADY_EXISTS', `job ${jobId} is in the job store already (stored through another coordinator): see eddy job ${jobId}`, { ...options, reason: 'JOB_ALREADY_STORED', metadata: { job_id: jobId } });
  }
}

export class JobStore {
  readonly bucket: string;
  readonly #kv: KV;
  readonly #logger: Logger;
  /** Per job key: the revision of this coordinator's last write (or claim). */
  readonly #revisions = new Map<string, number>();

  private constructor(bucket: string, kv: KV, logger: Logger) {
    this.bucket = bucket;
    this.#kv = kv;
    this.#logger = logger;
  }

  /** Opens the bucket, creating it when missing. */
  static async open(options: JobStoreOptions): Promise<JobStore> {
    const bucket = options.bucket ?? DEFAULT_JOB_STORE_BUCKET;
    // allow_direct off: direct gets may be answered by any replica and read a value older than
    // one this coordinator (or its predecessor) wrote; reads go through the stream leader.
    const kv = await new Kvm(options.nc).create(bucket, { history: 1, storage: 'file', allow_direct: false, replicas: options.replicas ?? 1 });
    const logger = options.logger.child({ bucket });
    logger.debug('job store open');
    return new JobStore(bucket, kv, logger);
  }

  /** The bucket, for the leader lease (coordinator/leader-lease.ts), which lives beside the jobs. */
  get kv(): KV {
    return this.#kv;
  }

  /**
   * Writes the job, fenced: over the revision this store last wrote or claimed, or creating it.
   * Throws FencedError when the key moved since: a new leader claimed it. (A write of ours that
   * timed out after it was stored moves it too, and is taken for the same: a claim writes the
   * same bytes back, so the two cannot be told apart, and standing by is the safe side.) A create
   * that finds the key there throws JobAlreadyStoredError: another coordinator stored the job
   * (a deposed leader's submit, which the leader takes over), which says nothing about the lease.
   */
  async put(job: StoredJob): Promise<void> {
    const key = jobKey(job.jobId);
    const value = JSON.stringify(job);
    const known = this.#revisions.get(key);
    try {
      this.#revisions.set(key, known === undefined ? await this.#kv.create(key, value) : await this.#kv.update(key, value, known));
    } catch (e) {
      if (isCompareAndSetConflict(e) && known === undefined) throw new JobAlreadyStoredError(job.jobId, { cause: e });
      if (isCompareAndSetConflict(e)) throw new FencedError(`job ${job.jobId} was written by another coordinator (a new leader) since this one last wrote it: this one no longer leads`, { cause: e });
      throw e;
    }
  }

  /** Whether this store has written or claimed the job (its next put is an update, fenced). */
  knows(jobId: string): boolean {
    return this.#revisions.has(jobKey(jobId));
  }

  /**
   * Calls onWrite with the job id of every job key written (created or updated, not deleted) from
   * now on, by any coordinator, until the returned stop(). Started before a takeover's claim(),
   * it sees every job a claim's listing may have missed.
   */
  async watchJobs(onWrite: (jobId: string) => void): Promise<() => void> {
    const watch = await this.#kv.watch({ key: `${JOB_KEY_PREFIX}>`, include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true, headers_only: true });
    void (async () => {
      for await (const e of watch) if (e.operation === 'PUT') onWrite(e.key.slice(JOB_KEY_PREFIX.length));
    })().catch((err: unknown) => this.#logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'job key watch ended'));
    return () => watch.stop();
  }

  /**
   * A new leader takes every job over: each is read and written back unchanged, so that a
   * deposed leader's next write (over the revision it knew) fails. Returns the jobs, as list() does.
   */
  async claim(): Promise<StoredJob[]> {
    const keys: string[] = [];
    for await (const key of await this.#kv.keys(`${JOB_KEY_PREFIX}>`)) keys.push(key);
    keys.sort();
    const jobs: StoredJob[] = [];
    for (const key of keys) {
      const job = await this.#claimKey(key);
      if (job !== undefined) jobs.push(job);
    }
    return jobs;
  }

  /** One job claimed, as claim() does each: undefined when it is gone (or corrupt, logged). */
  claimOne(jobId: string): Promise<StoredJob | undefined> {
    return this.#claimKey(jobKey(jobId));
  }

  async #claimKey(key: string): Promise<StoredJob | undefined> {
    for (let attempt = 1; ; attempt++) {
      const entry = await this.#kv.get(key);
      if (entry === null || entry.operation !== 'PUT') return undefined;
      try {
        this.#revisions.set(key, await this.#kv.update(key, entry.value, entry.revision));
      } catch (e) {
        // The deposed leader wrote in between: read it again.
        if (isCompareAndSetConflict(e) && attempt < EPOCH_MAX_ATTEMPTS) continue;
        throw e;
      }
      try {
        return parseStoredJob(key, entry.value);
      } catch (e) {
        if (!(e instanceof JobStoreCorruptError)) throw e;
        this.#logger.error({ err: e, key }, 'job store entry is corrupt; left out of the job list');
        return undefined;
      }
    }
  }

  /** The job, or undefined when there is none. Throws JobStoreCorruptError naming the key. */
  async get(jobId: string): Promise<StoredJob | undefined> {
    const key = jobKey(jobId);
    const entry = await this.#kv.get(key);
    if (entry === null || entry.operation !== 'PUT') return undefined;
    return parseStoredJob(key, entry.value);
  }

  /**
   * Every readable job, in key order. A corrupt entry is logged (naming its key) and left out,
   * so that one bad value cannot keep a restarted coordinator from the other jobs; get() on it
   * throws JobStoreCorruptError.
   */
  async list(): Promise<StoredJob[]> {
    const keys: string[] = [];
    for await (const key of await this.#kv.keys(`${JOB_KEY_PREFIX}>`)) keys.push(key);
    keys.sort();
    const jobs = await Promise.all(
      keys.map(async (key): Promise<StoredJob | undefined> => {
        const entry = await this.#kv.get(key);
        // Deleted between keys() and get(): no longer a job.
        if (entry === null || entry.operation !== 'PUT') return undefined;
        try {
          return parseStoredJob(key, entry.value);
        } catch (e) {
          if (!(e instanceof JobStoreCorruptError)) throw e;
          this.#logger.error({ err: e, key }, 'job store entry is corrupt; left out of the job list');
          return undefined;
        }
      }),
    );
    return jobs.filter((j): j is StoredJob => j !== undefined);
  }

  /** Idempotent: deleting a missing job succeeds. */
  async delete(jobId: string): Promise<void> {
    const key = jobKey(jobId);
    await this.#kv.delete(key);
    this.#revisions.delete(key);
  }

  /**
   * A cluster-wide, strictly increasing epoch: each call returns a value no caller, on any
   * connection, has had before. Compare-and-set on the `epoch` key's revision; a caller that
   * loses the race reads again and retries after a short random pause.
   */
  async nextEpoch(): Promise<number> {
    for (let attempt = 1; attempt <= EPOCH_MAX_ATTEMPTS; attempt++) {
      const entry = await this.#kv.get(EPOCH_KEY);
      const live = entry !== null && entry.operation === 'PUT';
      const next = (live ? parseEpochValue(entry.value) : 0) + 1;
      try {
        if (live) await this.#kv.update(EPOCH_KEY, String(next), entry.revision);
        else await this.#kv.create(EPOCH_KEY, String(next));
        return next;
      } catch (e) {
        if (!isCompareAndSetConflict(e)) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(EPOCH_MAX_BACKOFF_MS, attempt * 2)));
    }
    this.#logger.warn({ attempts: EPOCH_MAX_ATTEMPTS }, 'epoch compare-and-set kept losing');
    throw new RetryableError(`could not advance the epoch in bucket ${this.bucket}: ${EPOCH_MAX_ATTEMPTS} compare-and-set attempts lost to other callers`, 1_000);
  }
}

function jobKey(jobId: string): string {
  if (!isValidId(jobId)) throw new InvalidArgumentError(`job id ${JSON.stringify(jobId)} is not a valid id`);
  return `${JOB_KEY_PREFIX}${jobId}`;
}

/** The revision moved under us (update) or the key appeared (create): someone else won the round. */
function isCompareAndSetConflict(e: unknown): boolean {
  return e instanceof JetStreamApiError && (e.code === JetStreamApiCodes.StreamWrongLastSequence || e.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

function parseEpochValue(bytes: Uint8Array): number {
  const text = new TextDecoder().decode(bytes);
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new JobStoreCorruptError(EPOCH_KEY, `${JSON.stringify(text.slice(0, 40))} is not a non-negative integer`);
  return n;
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function checkpointProblem(c: unknown): string | undefined {
  if (typeof c !== 'object' || c === null) return 'is not an object';
  const o = c as Record<string, unknown>;
  if (!isCount(o.id)) return `id ${JSON.stringify(o.id)} is not a non-negative integer`;
  if (typeof o.metadataKey !== 'string') return 'metadataKey is not a string';
  if (!isCount(o.completedAtUnixMs)) return 'completedAtUnixMs is not a non-negative integer';
  return undefined;
}

/**
 * Checks what the coordinator relies on, so that a value written by a different (or broken)
 * version fails here, naming its key, rather than deep inside recovery.
 */
function parseStoredJob(key: string, bytes: Uint8Array): StoredJob {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new JobStoreCorruptError(key, `not JSON (${(e as Error).message})`, { cause: e });
  }
  const fail = (detail: string): never => {
    throw new JobStoreCorruptError(key, detail);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('not a JSON object');
  const o = raw as Record<string, unknown>;
  if (`${JOB_KEY_PREFIX}${String(o.jobId)}` !== key) fail(`jobId ${JSON.stringify(o.jobId)} does not match the key`);
  for (const field of ['manifestJson', 'bundleSha256', 'bundleKey'] as const) {
    if (typeof o[field] !== 'string') fail(`${field} is not a string`);
  }
  if (!STORED_JOB_STATES.includes(o.state as StoredJobState)) fail(`state ${JSON.stringify(o.state)} is not one of ${STORED_JOB_STATES.join(', ')}`);
  for (const field of ['submittedAtUnixMs', 'epoch', 'lastCheckpointId', 'restarts', 'publishedCheckpointId'] as const) {
    if (!isCount(o[field])) fail(`${field} ${JSON.stringify(o[field])} is not a non-negative integer`);
  }
  if (o.initialPositions !== undefined) {
    const ok = Array.isArray(o.initialPositions) && o.initialPositions.every((p: unknown) => isCount((p as { split?: unknown })?.split) && isCount((p as { nextSequence?: unknown })?.nextSequence));
    if (!ok) fail(`initialPositions ${JSON.stringify(o.initialPositions)} is not a list of { split, nextSequence }`);
  }
  if (o.poisonRecords !== undefined) {
    const problem = storedPoisonRecordsProblem(o.poisonRecords);
    if (problem !== undefined) fail(`poisonRecords ${problem}`);
  }
  if (o.latestCheckpoint !== null) {
    const problem = checkpointProblem(o.latestCheckpoint);
    if (problem !== undefined) fail(`latestCheckpoint ${problem}`);
  }
  for (const field of ['retainedCheckpoints', 'savepoints', 'unpublishedCheckpoints'] as const) {
    const list = o[field];
    if (field === 'unpublishedCheckpoints' && list === undefined) continue;
    if (!Array.isArray(list)) fail(`${field} is not an array`);
    for (const [i, c] of (list as unknown[]).entries()) {
      const problem = checkpointProblem(c);
      if (problem !== undefined) fail(`${field}[${i}] ${problem}`);
    }
  }
  if (o.lastFailure !== null && (typeof o.lastFailure !== 'object' || typeof (o.lastFailure as Record<string, unknown>).message !== 'string')) {
    fail('lastFailure is neither null nor a failure with a message');
  }
  return raw as StoredJob;
}
