// Jobs in the job store (coordinator/job-store.ts), so that a restarted coordinator, or a standby
// taking over, resumes them (docs/ARCHITECTURE.md, "Recovery" and "Standby coordinators"): each
// job's writes in order, a fenced write turning this coordinator into a standby, and a stored job
// read back with its retained checkpoints, savepoints and unpublished output.
import { FencedError, NotLeaderError, ensureError } from '../core/errors.ts';
import { parseJobId, type Epoch } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { parseManifest } from '../core/manifest.ts';
import type { ObjectStore } from '../core/object-store.ts';
import { decodeMetadata, type CheckpointMetadata } from '../core/checkpoint-format.ts';
import type { CompletedCheckpoint } from './checkpoint-coordinator.ts';
import { Job, type JobState } from './job.ts';
import type { JobStore, StoredCheckpoint, StoredJob } from './job-store.ts';
import type { Leadership } from './leader-lease.ts';
import { hasOutput } from './output-publisher.ts';
import { PoisonRecords } from './poison-records.ts';

/** How long a create waits for a lapsed lease to be renewed before the submit is refused. */
const LAPSED_LEASE_WAIT_MS = 5_000;

/** Pauses between attempts of a failed job-store write, in ms (the last one repeats). */
const WRITE_RETRY_MS = [100, 250, 500, 1_000];

/** Checkpoint ids skipped after a coordinator restart: ids triggered but never recorded are not reused. */
const CHECKPOINT_ID_GAP_AFTER_RESTART = 1000;

export interface JobPersistenceOptions {
  jobStore: JobStore;
  store: ObjectStore;
  leadership: Leadership;
  logger: Logger;
  /** Whether this job is still the one this coordinator holds (not one of an earlier leadership). */
  holds(job: Job): boolean;
  /**
   * Fault injection for tests (CoordinatorOptions.holdJobCreateMs): a submitted job's create waits
   * this long after its lease check. @default 0
   */
  holdJobCreateMs?: number;
}

/** A stored job read back: the job, whether it still runs, and the output to publish again. */
export interface LoadedJob {
  job: Job;
  live: boolean;
  /** Completed checkpoints whose output may not all have reached the streams, in order, with the output to publish. */
  republish: Array<{ checkpoint: CompletedCheckpoint; metadata: CheckpointMetadata }>;
}

export class JobPersistence {
  readonly #o: JobPersistenceOptions;

  #stopped = false;

  constructor(options: JobPersistenceOptions) {
    this.#o = options;
  }

  /** This coordinator stops: a write under way is tried once more at most, not until it is stored. */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * Writes the job to the job store; writes of one job keep their order. A write that fails
   * (NATS unreachable, the bucket's stream electing a leader) is tried again until it is stored,
   * is fenced off, or this coordinator no longer holds the job: `job.persisting` settles only
   * then, and what waits for it (a checkpoint's commit and output, the garbage collector) waits
   * with it. Going on after a failed write would let the store name an older checkpoint than the
   * one whose output went out, or whose predecessors were collected (a takeover then restores
   * what is gone, or replays output under other message ids).
   */
  persist(job: Job): void {
    // A job of an earlier leadership (released, still in some callback) writes nothing.
    if (!this.#o.holds(job)) return;
    const stored = job.toStored();
    job.persisting = (job.persisting ?? Promise.resolve()).then(() => this.#write(job, stored));
  }

  async #write(job: Job, stored: StoredJob): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#o.jobStore.put(stored);
        if (attempt > 1) this.#o.logger.info({ jobId: job.id, attempts: attempt }, 'job store write went through');
        return;
      } catch (e) {
        if (e instanceof FencedError) {
          job.fenced = true;
          this.#o.leadership.fenced(e.message);
          return;
        }
        if (!this.#o.holds(job) || this.#stopped) {
          // Let go meanwhile (or this coordinator stops): whoever holds it next reads the store as
          // it is; nothing of this leadership's is committed on top of a write that may not have
          // happened.
          job.fenced = true;
          this.#o.logger.warn({ jobId: job.id, err: ensureError(e).message }, 'job store write failed; the job is no longer held here');
          return;
        }
        this.#o.logger.warn({ jobId: job.id, attempt, err: ensureError(e).message }, 'job store write failed; trying again');
        await new Promise((r) => setTimeout(r, WRITE_RETRY_MS[Math.min(attempt, WRITE_RETRY_MS.length) - 1]));
      }
    }
  }

  /**
   * The first write of a submitted job, awaited: the submit fails when it fails. Its lease is
   * checked first, as before a commit (leader-lease.ts holds()): no revision fences a create, so
   * a coordinator that no longer surely leads stores no new job. A create can still land after
   * a takeover (a process paused between the check and the create): the new leader sees it in
   * the job-key watch and takes it over (JobManager.onJobWritten).
   */
  async create(job: Job): Promise<void> {
    const { jobStore, leadership, logger } = this.#o;
    // A leader whose lease lapsed (a renewal answered late on a loaded machine) is still leader and
    // usually renews within moments (coordinator/leader-lease.ts, LAPSE_GRACE_LEASES): the submit
    // waits for that rather than being refused.
    const deadline = performance.now() + LAPSED_LEASE_WAIT_MS;
    while (!leadership.holds() && leadership.term > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    if (!leadership.holds()) throw new NotLeaderError(leadership.leaderAddress());
    const holdMs = this.#o.holdJobCreateMs ?? 0;
    if (holdMs > 0) {
      logger.warn({ jobId: job.id, holdMs }, 'job create held after its lease check (fault injection)');
      await new Promise((resolve) => setTimeout(resolve, holdMs));
    }
    const write = jobStore.put(job.toStored());
    job.persisting = write.catch(() => undefined);
    try {
      await write;
    } catch (e) {
      if (!(e instanceof FencedError)) throw e;
      job.fenced = true;
      leadership.fenced(e.message);
      throw new NotLeaderError(leadership.leaderAddress());
    }
  }

  /** Every stored job, claimed: a deposed leader's later writes to these jobs fail (job-store.ts). */
  claim(): Promise<StoredJob[]> {
    return this.#o.jobStore.claim();
  }

  /** One stored job, claimed (a create this leader's claim() did not see); undefined when gone. */
  claimOne(jobId: string): Promise<StoredJob | undefined> {
    return this.#o.jobStore.claimOne(jobId);
  }

  /** A stored job read back, with its checkpoints' _metadata from the object store. */
  async load(stored: StoredJob): Promise<LoadedJob> {
    const { store, logger } = this.#o;
    const manifest = parseManifest(stored.manifestJson);
    const read = async (c: StoredCheckpoint): Promise<CompletedCheckpoint> => ({
      id: c.id,
      metadataKey: c.metadataKey,
      metadata: decodeMetadata(await store.get(c.metadataKey), c.metadataKey),
      completedAtUnixMs: c.completedAtUnixMs,
      durationMs: 0,
      bytes: 0,
    });
    const checkpoints: CompletedCheckpoint[] = [];
    for (const c of stored.retainedCheckpoints) checkpoints.push(await read(c));
    const savepoints: CompletedCheckpoint[] = [];
    for (const c of stored.savepoints) {
      try {
        savepoints.push(await read(c));
      } catch (e) {
        logger.error({ jobId: stored.jobId, savepoint: c.metadataKey, err: ensureError(e).message }, 'savepoint unreadable');
      }
    }
    const live = stored.state !== 'CANCELLED' && stored.state !== 'FAILED' && stored.state !== 'FINISHED';
    const job = new Job(
      {
        id: parseJobId(stored.jobId),
        manifest,
        manifestJson: stored.manifestJson,
        sha256: stored.bundleSha256,
        bundleKey: stored.bundleKey,
        submittedAtMs: stored.submittedAtUnixMs,
        epoch: stored.epoch as Epoch,
        ...(stored.lastFailure ? { lastFailure: stored.lastFailure } : {}),
        checkpoints,
        savepoints,
        lastCheckpointId: stored.lastCheckpointId + CHECKPOINT_ID_GAP_AFTER_RESTART,
        restarts: stored.restarts,
        ...(stored.initialPositions && { initialPositions: stored.initialPositions }),
        poison: new PoisonRecords(stored.poisonRecords ?? []),
      },
      live ? 'RESTARTING' : (stored.state as JobState),
      logger,
    );
    const republish: LoadedJob['republish'] = [];
    if (!live) return { job, live, republish };
    if (stored.unpublishedCheckpoints !== undefined) {
      // Every completed checkpoint whose output was not confirmed published, in order, retained
      // or not: its output may not all have reached the streams. Publishing it again is safe (the
      // streams drop what they have by Nats-Msg-Id; a part file that exists is skipped).
      for (const ref of stored.unpublishedCheckpoints) {
        let c = checkpoints.find((x) => x.id === ref.id);
        try {
          c ??= await read(ref);
        } catch (e) {
          logger.error({ jobId: stored.jobId, checkpoint: ref.id, err: ensureError(e).message }, 'output of a completed checkpoint cannot be published: its _metadata is unreadable');
          continue;
        }
        republish.push({ checkpoint: c, metadata: c.metadata });
      }
    } else {
      // Written by a version that kept no list: part files of the earlier retained checkpoints
      // are committed again, and the latest checkpoint's output is published again.
      for (const c of checkpoints.slice(0, -1)) {
        if ((c.metadata.files ?? []).length === 0) continue;
        republish.push({ checkpoint: c, metadata: { ...c.metadata, outputs: [] } });
      }
      const latest = job.latestCheckpoint;
      if (latest && hasOutput(latest.metadata)) republish.push({ checkpoint: latest, metadata: latest.metadata });
    }
    return { job, live, republish };
  }
}
