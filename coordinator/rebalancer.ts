// Rebalancing a running job when workers join or leave (docs/ARCHITECTURE.md, "Moves"): compute a balanced assignment that moves the fewest key groups and
// splits, and carry it out at a checkpoint boundary, one batch of key groups per checkpoint,
// while every other key group keeps processing.
//
// One move: every old and new owner is told (MoveTasks) which key groups and splits it holds
// after barrier N; checkpoint N is triggered only once all have answered (new owners are
// subscribed by then). When N completes, new owners load the moved key groups from it and
// replay what they held; old owners drop them. Flink stops the whole job to rescale; here only
// the moving key groups wait, for about one checkpoint. If checkpoint N fails, the job recovers
// from its last completed checkpoint over the new set of workers: never a half-done move.
import { codecs } from '../core/control.ts';
import { senderNames, subjects } from '../core/subjects.ts';
import { rebalance, toRanges } from '../core/assignment.ts';
import { keyGroupsOf, type KeyGroupRange } from '../core/key-groups.ts';
import { ensureError } from '../core/errors.ts';
import { splitCount, type JobManifest } from '../core/manifest.ts';
import type { WorkerId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { CheckpointNotStartedError, type CheckpointCoordinator } from './checkpoint-coordinator.ts';

export interface WorkerAssignment {
  keyGroups: KeyGroupRange[];
  splits: number[];
}

/** What the rebalancer needs of a job (coordinator/job.ts). */
export interface MovableJob {
  id: string;
  manifest: JobManifest;
  state: string;
  epoch: number;
  assignment: Map<WorkerId, WorkerAssignment>;
  /** Sender name of each split in this epoch (renamed when the split moves). */
  splitSenders: string[];
  checkpointer?: CheckpointCoordinator | undefined;
}

/** A move under way: who held what before it, who holds what after it. */
export interface MoveInProgress {
  from: ReadonlyMap<WorkerId, WorkerAssignment>;
  to: ReadonlyMap<WorkerId, WorkerAssignment>;
  startedAtMs: number;
}

export interface RebalancerOptions {
  /** Workers that may take work: alive and not leaving, sorted by id. */
  available(): WorkerId[];
  /** Key groups moved by one checkpoint, at most. */
  maxMovingKeyGroups: number;
  checkpointTimeoutMs: number;
  control(worker: WorkerId, subject: string, payload: Uint8Array): Promise<void>;
  /** Deploys the job, in its epoch and with nothing assigned, on workers that do not run it yet. */
  join(job: MovableJob, workers: WorkerId[]): Promise<void>;
  persist(job: MovableJob): void;
  /** The move's checkpoint failed: recover the job (it rolls back and redeploys over `available`). */
  recover(job: MovableJob, reason: string): void;
  logger: Logger;
}

/**
 * The assignment of a job over `workers`, moving the fewest key groups and splits from
 * `current` (what a recovery deploys). More workers than key groups: the surplus gets none.
 */
export function assignJob(manifest: JobManifest, current: ReadonlyMap<WorkerId, WorkerAssignment>, workers: readonly WorkerId[], maxMoves = Number.POSITIVE_INFINITY): { assignment: Map<WorkerId, WorkerAssignment>; movedKeyGroups: number; movedSplits: number[] } {
  const kg = rebalance(new Map([...current].map(([w, a]) => [w, [...keyGroupsOf(a.keyGroups)]])), workers, manifest.maxParallelism, maxMoves);
  const sp = rebalance(new Map([...current].map(([w, a]) => [w, a.splits])), workers, splitCount(manifest));
  const assignment = new Map<WorkerId, WorkerAssignment>();
  for (const w of new Set([...workers, ...kg.assignment.keys(), ...sp.assignment.keys()])) {
    const keyGroups = kg.assignment.get(w) ?? [];
    const splits = sp.assignment.get(w) ?? [];
    // A worker keeps its place while it holds anything; workers not listed drop out once empty.
    if (keyGroups.length > 0 || splits.length > 0 || workers.includes(w)) assignment.set(w, { keyGroups: toRanges(keyGroups), splits });
  }
  return { assignment, movedKeyGroups: kg.moves.length, movedSplits: sp.moves.map((m) => m.item) };
}

export class Rebalancer {
  readonly #o: RebalancerOptions;
  readonly #running = new Map<string, Promise<void>>();
  readonly #again = new Set<string>();
  /** Moves carried out (for status and tests). */
  moves = 0;
  /** Moves put off because their checkpoint could not start in time (tried again, no recovery). */
  postponed = 0;
  /** The move under way per job: the assignment before and after it (for the dashboard). */
  readonly #inProgress = new Map<string, MoveInProgress>();
  /** Workers that already run the job in this epoch with nothing assigned (a postponed move's join). */
  readonly #joined = new Map<string, { epoch: number; workers: Set<WorkerId> }>();

  constructor(options: RebalancerOptions) {
    this.#o = options;
  }

  /** Brings the job to a balanced assignment, one move at a time; a no-op when it is balanced. */
  request(job: MovableJob): void {
    if (this.#running.has(job.id)) {
      this.#again.add(job.id);
      return;
    }
    const run = (async () => {
      do {
        this.#again.delete(job.id);
        while (await this.#step(job));
      } while (this.#again.has(job.id));
    })()
      .catch((e) => this.#o.logger.error({ jobId: job.id, err: ensureError(e) }, 'rebalance failed'))
      .finally(() => this.#running.delete(job.id));
    this.#running.set(job.id, run);
  }

  /** Waits for the job's moves in progress (tests, shutdown). */
  async settled(jobId: string): Promise<void> {
    await this.#running.get(jobId);
  }

  /** The job's move under way, if any. */
  inProgress(jobId: string): MoveInProgress | undefined {
    return this.#inProgress.get(jobId);
  }

  /** One move; true if another may follow. */
  async #step(job: MovableJob): Promise<boolean> {
    const checkpointer = job.checkpointer;
    if (job.state !== 'RUNNING' || !checkpointer) return false;
    const epoch = job.epoch;
    // While checkpoints fail (the object store is down), a move would only fail with them and
    // cost a recovery: wait for one to complete first.
    while (checkpointer.stats.lastFailedAtMs > checkpointer.stats.lastCompletedAtMs) {
      await new Promise((r) => setTimeout(r, 250));
      if (job.state !== 'RUNNING' || job.epoch !== epoch || job.checkpointer !== checkpointer) return false;
    }
    const workers = this.#o.available();
    if (workers.length === 0) return false;
    const { assignment: next, movedKeyGroups, movedSplits } = assignJob(job.manifest, job.assignment, workers, this.#o.maxMovingKeyGroups);
    if (movedKeyGroups === 0 && movedSplits.length === 0) {
      // Nothing moves; a worker that holds nothing and may not take work drops out.
      if ([...job.assignment.keys()].some((w) => !next.has(w))) {
        job.assignment = next;
        this.#o.persist(job);
      }
      return false;
    }
    const participants = [...new Set([...job.assignment.keys(), ...next.keys()])];
    const keyedWorkers = [...next].filter(([, a]) => a.keyGroups.length > 0).map(([w]) => w);
    const previousWorkers = [...job.assignment].filter(([, a]) => a.keyGroups.length > 0).map(([w]) => w);
    const started = Date.now();
    let checkpointId = 0;
    this.#inProgress.set(job.id, { from: job.assignment, to: next, startedAtMs: started });
    try {
      // A worker new to the job first runs it with nothing assigned: its tasks exist to take over.
      const earlier = this.#joined.get(job.id);
      const joined = earlier?.epoch === epoch ? earlier.workers : new Set<WorkerId>();
      const joining = participants.filter((w) => !job.assignment.has(w) && !joined.has(w));
      if (joining.length > 0) {
        await this.#o.join(job, joining);
        for (const w of joining) joined.add(w);
        this.#joined.set(job.id, { epoch, workers: joined });
      }
      if (job.epoch !== epoch || job.state !== 'RUNNING') return false;
      const done = await checkpointer.checkpointNow(this.#o.checkpointTimeoutMs, {
        workers: participants,
        prepare: async (id) => {
          checkpointId = id;
          const splitSenders = job.splitSenders.map((name, p) => (movedSplits.includes(p) ? senderNames.split(p, epoch, id) : name));
          await Promise.all(
            participants.map((w) => {
              const a = next.get(w) ?? { keyGroups: [], splits: [] };
              const move = {
                jobId: job.id,
                epoch,
                checkpointId: id,
                keyGroups: a.keyGroups,
                sourceSplits: a.splits,
                workers: keyedWorkers,
                movedSplits,
                splitSenders,
                previousWorkers,
                previousSplitSenders: job.splitSenders,
              };
              return this.#o.control(w, subjects.move(w), codecs.move.encode(move));
            }),
          );
          // From barrier N on, the new owners are the job's workers: the checkpoint after N
          // must ask them (new splits inject its barrier), and no longer the ones that left.
          if (job.epoch === epoch) {
            job.assignment = next;
            job.splitSenders = splitSenders;
            this.#o.persist(job);
          }
        },
      });
      checkpointId = done.id;
      this.#joined.delete(job.id);
    } catch (e) {
      if (job.epoch !== epoch) return false; // a recovery overtook the move
      if (e instanceof CheckpointNotStartedError) {
        // The checkpoint before it is still under way (a slow worker, an object store that lags):
        // no worker was told of this move, so it is tried again once that one has ended, and the
        // job goes on as it is.
        this.postponed++;
        this.#o.logger.warn({ jobId: job.id, epoch, movedKeyGroups }, `move postponed: ${e.message}`);
        await new Promise((r) => setTimeout(r, e.retryAfterMs));
        return job.epoch === epoch && job.state === 'RUNNING';
      }
      const reason = `moving ${movedKeyGroups} key group(s) and ${movedSplits.length} split(s) at checkpoint ${checkpointId} failed: ${ensureError(e).message}`;
      this.#o.logger.warn({ jobId: job.id, epoch, checkpoint: checkpointId }, reason);
      this.#o.recover(job, reason);
      return false;
    } finally {
      this.#inProgress.delete(job.id);
    }
    this.moves++;
    this.#o.logger.info(
      { jobId: job.id, epoch, checkpoint: checkpointId, movedKeyGroups, movedSplits, workers: keyedWorkers, ms: Date.now() - started },
      'key groups moved',
    );
    return job.epoch === epoch;
  }
}
