// The job directory: what every coordinator needs to know of the cluster's jobs to route a feature
// read and to draw the dashboard's map, when it is not the one running them
// (docs/ARCHITECTURE.md, "Standby coordinators"). The leader publishes one entry per job under
// `directory.<jobId>` in the job store's KV bucket — state, epoch, manifest and key-group
// assignment, the move under way — whenever one of them changes; standbys watch the keys and
// keep the latest entry of each job in memory.
//
// An entry can be a moment behind the leader (it polls every DEFAULT_DIRECTORY_POLL_MS, and the
// watch adds a KV round trip). That is safe for reads: the router names the owner and epoch it
// expects, and a worker answers with data only for key groups it serves at that epoch as that
// owner; anything else is a data-less UNAVAILABLE, which makes the router ask again, reading the
// directory again (coordinator/feature-router.ts).
import type { KV } from '@nats-io/kv';
import { ensureError } from '../core/errors.ts';
import type { KeyGroupRange } from '../core/key-groups.ts';
import type { Logger } from '../core/logger.ts';
import { parseManifest, type JobManifest } from '../core/manifest.ts';
import type { WorkerAssignment } from './rebalancer.ts';

const DIRECTORY_KEY_PREFIX = 'directory.';
/** How often the leader looks for changes to publish. @default */
export const DEFAULT_DIRECTORY_POLL_MS = 100;

export type RoutedJobState = 'SUBMITTED' | 'DEPLOYING' | 'RUNNING' | 'RESTARTING' | 'CANCELLED' | 'FAILED';

/**
 * What the feature router and feature watches read of a job: the leader's job record, or a
 * standby's directory entry. Read again on every attempt, never kept.
 */
export interface RoutedJob {
  readonly id: string;
  readonly manifest: JobManifest;
  readonly state: RoutedJobState;
  readonly epoch: number;
  readonly assignment: ReadonlyMap<string, WorkerAssignment>;
  readonly lastFailure?: { message: string } | undefined;
}

/** Finds a job to route to; throws NotFoundError, or NotLeaderError when only the leader knows. */
export interface JobLookup {
  get(jobId: string): RoutedJob;
}

interface StoredAssignment {
  workerId: string;
  keyGroups: KeyGroupRange[];
  splits: number[];
}

/** The KV value of one job (JSON). */
export interface DirectoryEntry {
  jobId: string;
  /** The leader epoch of the coordinator that wrote it. */
  term: number;
  state: RoutedJobState;
  epoch: number;
  submittedAtUnixMs: number;
  restarts: number;
  manifestJson: string;
  assignment: StoredAssignment[];
  /** The assignment a move under way goes to (absent: no move). */
  movingTo?: StoredAssignment[];
  lastFailure: { message: string; stageId: string; keyGroup: number; workerId: string; stack: string; atUnixMs: number } | null;
}

/** What the publisher reads of the leader's jobs (coordinator/job-manager.ts, read-only). */
export interface PublishedJob {
  id: string;
  state: RoutedJobState;
  epoch: number;
  submittedAtMs: number;
  restarts: number;
  manifestJson: string;
  assignment: ReadonlyMap<string, WorkerAssignment>;
  lastFailure?: DirectoryEntry['lastFailure'] | undefined;
}

const storeAssignment = (a: ReadonlyMap<string, WorkerAssignment>): StoredAssignment[] => [...a].map(([workerId, w]) => ({ workerId, keyGroups: w.keyGroups, splits: w.splits }));

export interface DirectoryPublisherOptions {
  kv: KV;
  /** The jobs this coordinator runs (none on a standby). */
  jobs: () => readonly PublishedJob[];
  /** The assignment a move under way goes to. */
  movingTo: (jobId: string) => ReadonlyMap<string, WorkerAssignment> | undefined;
  /** The leader epoch, and whether the lease surely holds: a deposed leader publishes nothing. */
  term: () => number;
  holds: () => boolean;
  /** @default DEFAULT_DIRECTORY_POLL_MS */
  pollMs?: number;
  logger: Logger;
}

/** The leader's half: publishes each job's entry when it changed. */
export class DirectoryPublisher {
  readonly #o: DirectoryPublisherOptions;
  readonly #published = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #failures = 0;

  constructor(options: DirectoryPublisherOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer = setInterval(() => void this.publish(), this.#o.pollMs ?? DEFAULT_DIRECTORY_POLL_MS);
    this.#timer.unref();
  }

  /** One round: every changed entry is written. */
  async publish(): Promise<void> {
    if (this.#busy || !this.#o.holds()) return;
    this.#busy = true;
    try {
      const term = this.#o.term();
      for (const job of this.#o.jobs()) {
        const moving = this.#o.movingTo(job.id);
        const entry: DirectoryEntry = {
          jobId: job.id,
          term,
          state: job.state,
          epoch: job.epoch,
          submittedAtUnixMs: job.submittedAtMs,
          restarts: job.restarts,
          manifestJson: job.manifestJson,
          assignment: storeAssignment(job.assignment),
          ...(moving && { movingTo: storeAssignment(moving) }),
          lastFailure: job.lastFailure ?? null,
        };
        const value = JSON.stringify(entry);
        if (this.#published.get(job.id) === value) continue;
        await this.#o.kv.put(`${DIRECTORY_KEY_PREFIX}${job.id}`, value);
        this.#published.set(job.id, value);
      }
      this.#failures = 0;
    } catch (e) {
      // The next round tries again; a standby routes with the previous entry meanwhile.
      if (this.#failures++ % 50 === 0) this.#o.logger.warn({ err: ensureError(e).message, failures: this.#failures }, 'job directory publish failed');
    } finally {
      this.#busy = false;
    }
  }

  /** Forget what was published: after a takeover every entry is written again under the new term. */
  reset(): void {
    this.#published.clear();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** A directory entry as the router reads it. */
export interface DirectoryJob extends RoutedJob {
  readonly entry: DirectoryEntry;
  readonly movingTo: ReadonlyMap<string, WorkerAssignment> | undefined;
}

/** The standby's half: the latest entry of every job, kept by a KV watch. */
export class JobDirectory {
  readonly #kv: KV;
  readonly #logger: Logger;
  readonly #jobs = new Map<string, DirectoryJob>();
  #stop: (() => void) | undefined;

  constructor(kv: KV, logger: Logger) {
    this.#kv = kv;
    this.#logger = logger;
  }

  /** Starts watching; returns at once (entries arrive as the watch delivers them). */
  async start(): Promise<void> {
    const watch = await this.#kv.watch({ key: `${DIRECTORY_KEY_PREFIX}>` });
    this.#stop = () => watch.stop();
    void (async () => {
      for await (const e of watch) {
        const jobId = e.key.slice(DIRECTORY_KEY_PREFIX.length);
        if (e.operation !== 'PUT') {
          this.#jobs.delete(jobId);
          continue;
        }
        try {
          this.#jobs.set(jobId, this.#parse(e.string()));
        } catch (err) {
          this.#logger.error({ key: e.key, err: ensureError(err).message }, 'job directory entry unreadable; left out');
        }
      }
    })().catch((err) => this.#logger.warn({ err: ensureError(err).message }, 'job directory watch ended'));
  }

  #parse(text: string): DirectoryJob {
    const entry = JSON.parse(text) as DirectoryEntry;
    // Entries change far more often than manifests: one parsed while it stays the same.
    const previous = this.#jobs.get(entry.jobId);
    const manifest = previous?.entry.manifestJson === entry.manifestJson ? previous.manifest : parseManifest(entry.manifestJson);
    const toMap = (a: StoredAssignment[]) => new Map(a.map((w) => [w.workerId, { keyGroups: w.keyGroups, splits: w.splits }]));
    return {
      entry,
      id: entry.jobId,
      manifest,
      state: entry.state,
      epoch: entry.epoch,
      assignment: toMap(entry.assignment),
      movingTo: entry.movingTo ? toMap(entry.movingTo) : undefined,
      lastFailure: entry.lastFailure ?? undefined,
    };
  }

  get(jobId: string): DirectoryJob | undefined {
    return this.#jobs.get(jobId);
  }

  list(): DirectoryJob[] {
    return [...this.#jobs.values()].sort((a, b) => a.entry.submittedAtUnixMs - b.entry.submittedAtUnixMs);
  }

  stop(): void {
    this.#stop?.();
  }
}
