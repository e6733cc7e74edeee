// A job's checkpoints across its epochs (docs/ARCHITECTURE.md, "Checkpoints"): each running epoch
// gets a checkpoint coordinator; a completed checkpoint is retained, persisted before its output
// goes out, and its exactly-once output published in completion order; what no retained
// checkpoint or savepoint references is collected; a savepoint is a checkpoint kept under
// savepoints/ until deleted.
import type { NatsConnection } from '@nats-io/transport-node';
import { encodeMetadata, type CheckpointMetadata } from '../core/checkpoint-format.ts';
import { FencedError, RetryableError, ensureError } from '../core/errors.ts';
import type { Epoch, WorkerId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { splitStreams } from '../core/manifest.ts';
import { objectKeys } from '../core/object-keys.ts';
import type { ObjectStore } from '../core/object-store.ts';
import { checkCheckpointAck } from './ack-check.ts';
import { CheckpointCoordinator, type CompletedCheckpoint } from './checkpoint-coordinator.ts';
import { CheckpointGarbageCollector } from './checkpoint-gc.ts';
import { idleSince } from './checkpoint-idle.ts';
import type { CoordinatorMetrics } from './coordinator-metrics.ts';
import type { Job } from './job.ts';
import type { Leadership } from './leader-lease.ts';
import { hasOutput, OutputPublisher } from './output-publisher.ts';
import type { WorkerRegistry } from './worker-registry.ts';

export interface JobCheckpointsOptions {
  nc: NatsConnection;
  store: ObjectStore;
  registry: WorkerRegistry;
  leadership: Leadership;
  checkpointIntervalMs: number;
  checkpointTimeoutMs: number;
  retainedCheckpoints: number;
  maxDeltaChain: number;
  skipIdleCheckpoints: boolean;
  logger: Logger;
  metrics?: CoordinatorMetrics | undefined;
  /** Writes the job to the job store (coordinator/job-persistence.ts). */
  persist(job: Job): void;
  /** Whether this job is still the one this coordinator holds (not one of an earlier leadership). */
  holds(job: Job): boolean;
}

export class JobCheckpoints {
  readonly #o: JobCheckpointsOptions;

  constructor(options: JobCheckpointsOptions) {
    this.#o = options;
  }

  /** Starts checkpointing the job's running epoch. */
  start(job: Job, epoch: Epoch): void {
    const o = this.#o;
    job.checkpointer = new CheckpointCoordinator({
      nc: o.nc,
      store: o.store,
      intervalMs: o.checkpointIntervalMs,
      timeoutMs: o.checkpointTimeoutMs,
      retain: o.retainedCheckpoints,
      maxDeltaChain: o.maxDeltaChain,
      logger: o.logger.child({ jobId: job.id, epoch }),
      nextId: () => ++job.lastCheckpointId,
      target: () =>
        job.state === 'RUNNING' && job.epoch === epoch
          ? {
              jobId: job.id,
              epoch,
              bundleSha256: job.sha256,
              maxParallelism: job.manifest.maxParallelism,
              splitStreams: splitStreams(job.manifest),
              workers: [...job.assignment.keys()],
              assignment: new Map(job.assignment),
            }
          : undefined,
      checkAck: (ack, triggered) =>
        checkCheckpointAck(ack, {
          jobId: job.id,
          maxParallelism: job.manifest.maxParallelism,
          owners: [triggered.assignment ?? new Map(), job.assignment],
          filesSinkPaths: job.manifest.stages.flatMap((s) => s.sinks.flatMap((k) => (k.kind === 'files' ? [k.path] : []))),
        }),
      latest: () => job.latestCheckpoint,
      leaderEpoch: o.leadership.term,
      mayCommit: () => o.leadership.holds() && o.holds(job),
      idleSince: (checkpointId) => o.skipIdleCheckpoints && idleSince(checkpointId, epoch, [...job.assignment.keys()], (w) => o.registry.get(w as WorkerId)?.jobs.get(job.id)),
      onCompleted: async (c) => this.#retain(job, c),
      publish: (metadata) => this.publish(job, metadata),
      stats: job.checkpointStats,
      ...(o.metrics !== undefined && { metrics: o.metrics }),
    });
  }

  /** Hands a completed checkpoint's output to the job's publisher (made at the first use). */
  publish(job: Job, metadata: CheckpointMetadata): void {
    job.outputPublisher ??= new OutputPublisher(this.#o.nc, this.#o.store, this.#o.logger.child({ jobId: job.id }), (id) => {
      if (job.published(id)) this.#o.persist(job);
    });
    job.outputPublisher.enqueue(metadata);
  }

  /** Takes a savepoint: a checkpoint now, its _metadata kept under savepoints/ until deleted. */
  async savepoint(job: Job): Promise<{ path: string; checkpointId: number }> {
    const checkpointer = job.checkpointer;
    if (checkpointer === undefined) throw new Error(`job ${job.id} has no checkpoint coordinator`);
    let checkpoint: CompletedCheckpoint;
    try {
      checkpoint = await checkpointer.checkpointNow(this.#o.checkpointTimeoutMs);
    } catch (e) {
      throw new RetryableError(`savepoint of job ${job.id} failed: ${ensureError(e).message}`, 1000, { cause: e });
    }
    const path = objectKeys.savepointMetadata(job.id, checkpoint.id);
    // The output already went out with the checkpoint: a savepoint restores state, not output.
    const metadata = { ...checkpoint.metadata, savepoint: true, outputs: [], files: [] };
    await this.#o.store.put(path, encodeMetadata(metadata));
    job.savepoints.push({ ...checkpoint, metadataKey: path, metadata });
    this.#o.persist(job);
    return { path, checkpointId: checkpoint.id };
  }

  /**
   * Checkpoint c completed: keep the last retainedCheckpoints, then, in the background, delete
   * the _metadata of the dropped ones and every object no retained checkpoint or savepoint
   * references (coordinator/checkpoint-gc.ts).
   */
  async #retain(job: Job, c: CompletedCheckpoint): Promise<void> {
    job.checkpoints.push(c);
    if (hasOutput(c.metadata)) job.awaitPublication(c);
    while (job.checkpoints.length > this.#o.retainedCheckpoints) job.checkpoints.shift();
    // Persisted after the shift, and collected only once that write is done: a restarted
    // coordinator never looks for a checkpoint whose objects are gone.
    this.#o.persist(job);
    job.checkpointGc ??= new CheckpointGarbageCollector({
      store: this.#o.store,
      jobId: job.id,
      retained: () => ({
        checkpoints: job.checkpoints,
        savepoints: job.savepoints,
        unpublishedOutputs: [...job.unpublishedOutputs.values()].flat(),
      }),
      ready: () => job.persisting ?? Promise.resolve(),
      logger: this.#o.logger,
    });
    job.checkpointGc.request();
    // The output goes out only once the job store names this checkpoint: a coordinator that
    // restarts after a crash here restores it, rather than the one before it, whose replay would
    // publish the same results again under other message ids.
    await job.persisting;
    // A new leader claimed the job first: it restores an earlier checkpoint, so this one's output
    // must not go out, nor may workers commit it.
    if (job.fenced) throw new FencedError(`checkpoint ${c.id} of job ${job.id} not committed: another coordinator leads`);
  }
}
