// A job as the coordinator holds it (docs/ARCHITECTURE.md, "Failure and scaling"): what the job
// store keeps of it (JobData, written by toStored()) apart from the live objects of this
// coordinator process (its epoch's assignment, channel key and checkpoint coordinator, timers,
// samples, the output publisher), and a lifecycle state that changes only through transition(),
// which refuses a move the lifecycle does not allow and logs each change.
import type { SourcePosition } from '../core/control.ts';
import { EddyError } from '../core/errors.ts';
import type { Epoch, JobId, WorkerId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import type { JobManifest } from '../core/manifest.ts';
import type { CheckpointGarbageCollector } from './checkpoint-gc.ts';
import { newCheckpointStats, type CheckpointCoordinator, type CheckpointStats, type CompletedCheckpoint } from './checkpoint-coordinator.ts';
import type { RecoveryTrace } from './coordinator-metrics.ts';
import type { StoredJob } from './job-store.ts';
import { outputKeys, type OutputPublisher } from './output-publisher.ts';
import type { PoisonRecords } from './poison-records.ts';
import type { WorkerAssignment } from './rebalancer.ts';
import { RestartStrategy } from './restart-strategy.ts';

export type JobState = 'SUBMITTED' | 'DEPLOYING' | 'RUNNING' | 'RESTARTING' | 'CANCELLED' | 'FAILED';

/** The moves the lifecycle allows: anything else is a bug, refused by transition(). */
const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  SUBMITTED: ['DEPLOYING', 'FAILED', 'CANCELLED'],
  DEPLOYING: ['RUNNING', 'RESTARTING', 'FAILED', 'CANCELLED'],
  RUNNING: ['RESTARTING', 'FAILED', 'CANCELLED'],
  RESTARTING: ['DEPLOYING', 'FAILED', 'CANCELLED'],
  CANCELLED: [],
  FAILED: ['CANCELLED'],
};

/** Whether a job in this state is over (it runs no more until submitted again). */
export const isFinished = (state: JobState): boolean => state === 'CANCELLED' || state === 'FAILED';

export interface JobFailureInfo {
  message: string;
  stageId: string;
  keyGroup: number;
  workerId: string;
  stack: string;
  atUnixMs: number;
}

/** A failure the coordinator itself reports (no stage, key group or stack). */
export function failure(message: string, workerId = ''): JobFailureInfo {
  return { message, stageId: '', keyGroup: -1, workerId, stack: '', atUnixMs: Date.now() };
}

/** A stage's counters summed over workers at one heartbeat. */
export interface StageSampleTotals {
  recordsIn: number;
  recordsOut: number;
  backpressureMs: number;
  senders: number;
}

/** What the job store keeps of a job (toStored()), besides its state. */
export interface JobData {
  id: JobId;
  manifest: JobManifest;
  manifestJson: string;
  sha256: string;
  bundleKey: string;
  submittedAtMs: number;
  epoch: Epoch;
  lastFailure?: JobFailureInfo | undefined;
  /** Completed checkpoints retained, oldest first; the last is what a recovery restores. */
  checkpoints: CompletedCheckpoint[];
  /** Savepoints, kept until the user deletes them: the garbage collector keeps what they reference. */
  savepoints: CompletedCheckpoint[];
  /** Highest checkpoint id ever triggered: ids never repeat. */
  lastCheckpointId: number;
  restarts: number;
  /**
   * Where the splits start while no checkpoint has completed: the source's startAt, resolved once
   * at submit (coordinator/source-start.ts). Absent: sequence 1.
   */
  initialPositions?: SourcePosition[] | undefined;
  /** Failures per source position and the skip list of poison records (coordinator/poison-records.ts). */
  poison: PoisonRecords;
}

export class Job implements JobData {
  // --- persisted (JobData and the state; toStored())
  readonly id: JobId;
  readonly manifest: JobManifest;
  readonly manifestJson: string;
  readonly sha256: string;
  readonly bundleKey: string;
  readonly submittedAtMs: number;
  epoch: Epoch;
  lastFailure?: JobFailureInfo | undefined;
  checkpoints: CompletedCheckpoint[];
  savepoints: CompletedCheckpoint[];
  lastCheckpointId: number;
  restarts: number;
  initialPositions?: SourcePosition[] | undefined;
  readonly poison: PoisonRecords;
  /**
   * The completed checkpoints whose exactly-once output is not confirmed published, in completion
   * order: persisted, so that a restarted coordinator publishes every one of them again, not only
   * the latest.
   */
  readonly unpublished = new Map<number, CompletedCheckpoint>();
  #state: JobState;

  // --- live, in this coordinator process only
  /** Key groups and splits per worker in this epoch. */
  assignment = new Map<WorkerId, WorkerAssignment>();
  /** Sender name of each split in this epoch (core/subjects.ts senderNames; renamed by moves). */
  splitSenders: string[] = [];
  /**
   * The key of this epoch's record batches (core/channel-key.ts): drawn at each deploy, sealed to
   * each worker, never persisted (a restarted coordinator deploys a new epoch with a new key).
   */
  channelKey?: Uint8Array;
  /** (time, counters per stage) samples for rates (coordinator/job-stats.ts). */
  readonly samples: Array<{ atMs: number; stages: Map<string, StageSampleTotals> }> = [];
  /**
   * The largest totals shown per stage: a recovery takes the counted totals back to its
   * checkpoint until the replay passes them again; what is shown never goes back.
   */
  readonly shownTotals = new Map<string, { recordsIn: number; recordsOut: number; deadLetters: number }>();
  /** The recovery under way (its span), until the job runs again. */
  recovery?: RecoveryTrace | undefined;
  /** The checkpoint coordinator of the running epoch. */
  checkpointer?: CheckpointCoordinator | undefined;
  readonly checkpointStats: CheckpointStats = newCheckpointStats();
  /**
   * Resolves once the completions of stopped checkpoint coordinators are settled: a checkpoint
   * whose _metadata was being written when its epoch ended is complete, and a redeploy must
   * restore it (or its output would go out on top of a replay from the one before).
   */
  checkpointsSettled?: Promise<void>;
  /** Deletes the checkpoint objects nothing retained references; made at the first completion. */
  checkpointGc?: CheckpointGarbageCollector;
  /**
   * Output object keys per completed checkpoint whose exactly-once output is not confirmed
   * published (by any epoch's checkpoint coordinator): the garbage collector keeps them.
   */
  readonly unpublishedOutputs = new Map<number, readonly string[]>();
  /** Publishes completed checkpoints' exactly-once output, across epochs. */
  outputPublisher?: OutputPublisher;
  readonly restartStrategy: RestartStrategy;
  /** A scheduled restart or redeploy, so cancel can stop it. */
  restartTimer?: NodeJS.Timeout;
  /** Writes of this job to the job store, in order (coordinator/job-persistence.ts). */
  persisting?: Promise<void>;
  /** A write of this job was fenced off: another coordinator leads; nothing more is committed. */
  fenced = false;
  readonly #logger: Logger;

  constructor(data: JobData, state: JobState, logger: Logger) {
    this.id = data.id;
    this.manifest = data.manifest;
    this.manifestJson = data.manifestJson;
    this.sha256 = data.sha256;
    this.bundleKey = data.bundleKey;
    this.submittedAtMs = data.submittedAtMs;
    this.epoch = data.epoch;
    if (data.lastFailure) this.lastFailure = data.lastFailure;
    this.checkpoints = data.checkpoints;
    this.savepoints = data.savepoints;
    this.lastCheckpointId = data.lastCheckpointId;
    this.restarts = data.restarts;
    if (data.initialPositions) this.initialPositions = data.initialPositions;
    this.poison = data.poison;
    this.#state = state;
    this.#logger = logger;
    this.restartStrategy = new RestartStrategy(data.manifest.restartStrategy);
  }

  get state(): JobState {
    return this.#state;
  }

  /** The latest retained checkpoint: what a deploy restores. */
  get latestCheckpoint(): CompletedCheckpoint | null {
    return this.checkpoints[this.checkpoints.length - 1] ?? null;
  }

  /**
   * Moves the lifecycle to `to` and logs it; throws FAILED_PRECONDITION, changing nothing, when
   * the lifecycle does not allow the move. The caller persists the change.
   */
  transition(to: JobState): void {
    if (!TRANSITIONS[this.#state].includes(to)) throw new EddyError('FAILED_PRECONDITION', `job ${this.id} cannot go from ${this.#state} to ${to}`);
    this.#logger.info({ jobId: this.id, from: this.#state, to }, 'job state');
    this.#state = to;
  }

  /** Stops the epoch's checkpoint coordinator; a completion it has under way settles into checkpointsSettled. */
  stopCheckpointer(): void {
    const checkpointer = this.checkpointer;
    if (checkpointer === undefined) return;
    checkpointer.stop();
    this.checkpointer = undefined;
    this.checkpointsSettled = Promise.all([this.checkpointsSettled, checkpointer.settled()]).then(() => undefined);
  }

  /** Marks a completed checkpoint's output as to be published (before it is handed to the publisher). */
  awaitPublication(c: CompletedCheckpoint, metadata = c.metadata): void {
    // The _metadata too: a restarted coordinator reads it to publish the output again.
    this.unpublishedOutputs.set(c.id, [...outputKeys(metadata), c.metadataKey]);
    this.unpublished.set(c.id, { ...c, metadata });
  }

  /** A completed checkpoint's output is confirmed published; true when the persisted list changed. */
  published(checkpointId: number): boolean {
    this.unpublishedOutputs.delete(checkpointId);
    return this.unpublished.delete(checkpointId);
  }

  /** Stops what runs in the background for this job: checkpoints, publishing, a scheduled restart. */
  stop(): void {
    this.checkpointer?.stop();
    this.outputPublisher?.stop();
    clearTimeout(this.restartTimer);
  }

  /** What the job store keeps: the persisted data and the state, no live object. */
  toStored(): StoredJob {
    const ref = (c: CompletedCheckpoint) => ({ id: c.id, metadataKey: c.metadataKey, completedAtUnixMs: c.completedAtUnixMs });
    const latest = this.latestCheckpoint;
    return {
      jobId: this.id,
      manifestJson: this.manifestJson,
      bundleSha256: this.sha256,
      bundleKey: this.bundleKey,
      state: this.#state,
      submittedAtUnixMs: this.submittedAtMs,
      epoch: this.epoch,
      latestCheckpoint: latest ? ref(latest) : null,
      retainedCheckpoints: this.checkpoints.map(ref),
      savepoints: this.savepoints.map(ref),
      lastCheckpointId: this.lastCheckpointId,
      restarts: this.restarts,
      lastFailure: this.lastFailure ?? null,
      publishedCheckpointId: Math.max(0, ...(this.unpublished.size === 0 ? [latest?.id ?? 0] : [Math.min(...this.unpublished.keys()) - 1])),
      unpublishedCheckpoints: [...this.unpublished.values()].map(ref),
      ...(this.initialPositions && { initialPositions: this.initialPositions }),
      ...(this.poison.size > 0 && { poisonRecords: this.poison.toStored() }),
    };
  }
}
