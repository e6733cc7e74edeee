// A job as the coordinator holds it: what is persisted in the job store (JobData, written by
// toStored()) apart from the live objects of this coordinator process (its epoch's checkpoint
// coordinator, timers, samples, the output publisher), and a lifecycle state that changes only
// through transition(), which refuses a move the lifecycle does not allow.
import type { SourcePosition } from '../core/control.ts';
import { EddyError } from '../core/errors.ts';
import type { Epoch, JobId, WorkerId } from '../core/ids.ts';
import type { JobManifest } from '../core/manifest.ts';
import type { CheckpointGarbageCollector } from './checkpoint-gc.ts';
import { newCheckpointStats, type CheckpointCoordinator, type CheckpointStats, type CompletedCheckpoint } from './checkpoint-coordinator.ts';
import type { RecoveryTrace } from './coordinator-metrics.ts';
import type { StoredJob } from './job-store.ts';
import type { OutputPublisher } from './output-publisher.ts';
import type { WorkerAssignment } from './rebalancer.ts';
import { RestartStrategy } from './restart-strategy.ts';

export type JobState = 'SUBMITTED' | 'DEPLOYING' | 'RUNNING' | 'RESTARTING' | 'CANCELLED' | 'FAILED';

const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  SUBMITTED: ['DEPLOYING', 'FAILED', 'CANCELLED'],
  DEPLOYING: ['RUNNING', 'RESTARTING', 'FAILED', 'CANCELLED'],
  RUNNING: ['RESTARTING', 'FAILED', 'CANCELLED'],
  RESTARTING: ['DEPLOYING', 'FAILED', 'CANCELLED'],
  CANCELLED: [],
  FAILED: ['CANCELLED'],
};

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

/** What the job store keeps of a job (toStored), besides its state. */
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
  lastCheckpointId: number;
  restarts: number;
  /**
   * Where the splits start while no checkpoint has completed: the source's startAt, resolved once
   * at submit (coordinator/source-start.ts). Absent: sequence 1.
   */
  initialPositions?: SourcePosition[] | undefined;
}

export class Job implements JobData {
  // --- persisted (JobData)
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
  #state: JobState;

  // --- live, in this coordinator process only
  /** Key groups and splits per worker in this epoch. */
  assignment = new Map<WorkerId, WorkerAssignment>();
  /** Sender name of each split in this epoch (core/subjects.ts senderNames; renamed by moves). */
  splitSenders: string[] = [];
  /** (time, counters per stage) samples for rates. */
  samples: Array<{ atMs: number; stages: Map<string, StageSampleTotals> }> = [];
  /** The recovery under way (its span), until the job runs again. */
  recovery?: RecoveryTrace | undefined;
  /** Deletes the checkpoint objects nothing retained references; made at the first completion. */
  checkpointGc?: CheckpointGarbageCollector;
  /**
   * Output object keys per completed checkpoint whose exactly-once output is not confirmed
   * published (by any epoch's checkpoint coordinator): the garbage collector keeps them.
   */
  unpublishedOutputs?: Map<number, readonly string[]>;
  /** Publishes completed checkpoints' exactly-once output, across epochs. */
  outputPublisher?: OutputPublisher;
  /** The checkpoint coordinator of the running epoch. */
  checkpointer?: CheckpointCoordinator | undefined;
  readonly checkpointStats: CheckpointStats = newCheckpointStats();
  readonly restartStrategy: RestartStrategy;
  /** A scheduled restart or redeploy, so cancel can stop it. */
  restartTimer?: NodeJS.Timeout;
  /** Writes of this job to the job store, in order. */
  persisting?: Promise<void>;

  constructor(data: JobData, state: JobState) {
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
    this.#state = state;
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
   * Moves the lifecycle to `to` and returns the state it left; throws FAILED_PRECONDITION when the
   * lifecycle does not allow the move (the caller logs and persists the change).
   */
  transition(to: JobState): JobState {
    const from = this.#state;
    if (!TRANSITIONS[from].includes(to)) throw new EddyError('FAILED_PRECONDITION', `job ${this.id} cannot go from ${from} to ${to}`);
    this.#state = to;
    return from;
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
      publishedCheckpointId: latest?.id ?? 0,
      ...(this.initialPositions && { initialPositions: this.initialPositions }),
    };
  }
}
