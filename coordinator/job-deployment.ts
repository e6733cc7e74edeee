// Commands to workers about a job (docs/ARCHITECTURE.md, "Control plane"): deploy an epoch (every
// worker subscribes its channels, then sources start), let workers join a running epoch with
// nothing assigned (a move follows), cancel. Every command carries the leader epoch and goes out
// only while the lease surely holds (docs/ARCHITECTURE.md, "Standby coordinators").
import type { NatsConnection } from '@nats-io/transport-node';
import { codecs, leaderEpochHeaders, type Ack } from '../core/control.ts';
import { FencedError, ensureError } from '../core/errors.ts';
import type { WorkerId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { subjects } from '../core/subjects.ts';
import { sealChannelKey } from '../core/channel-key.ts';
import { sourcePositions } from './checkpoint-coordinator.ts';
import type { Job } from './job.ts';
import type { Leadership } from './leader-lease.ts';
import type { WorkerAssignment } from './rebalancer.ts';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.ts';

/** A worker answered a control request with an error: it will likely answer it again. */
export class WorkerRefusedError extends Error {}

export interface WorkerControlOptions {
  nc: NatsConnection;
  registry: WorkerRegistry;
  leadership: Leadership;
  controlTimeoutMs: number;
  /** A deploy's time-out: a worker may start a job thread for it (CoordinatorOptions.deployTimeoutMs). */
  deployTimeoutMs: number;
  /** Sent in every DeployTasks. */
  checkpointIntervalMs: number;
  logger: Logger;
}

export class WorkerControl {
  readonly #o: WorkerControlOptions;

  constructor(options: WorkerControlOptions) {
    this.#o = options;
  }

  /** One command to one worker; throws WorkerRefusedError when it answers with an error. */
  async send(worker: WorkerId, subject: string, payload: Uint8Array, timeoutMs = this.#o.controlTimeoutMs): Promise<void> {
    const { leadership } = this.#o;
    if (!leadership.holds()) throw new FencedError(`not sending ${subject.split('.').pop()} to worker ${worker}: this coordinator does not hold the leader lease`);
    let ack: Ack;
    try {
      ack = codecs.ack.decode((await this.#o.nc.request(subject, payload, { timeout: timeoutMs, headers: leaderEpochHeaders(leadership.term) })).data);
    } catch (e) {
      // Nobody listens on the worker's control subject: the process is gone, whatever its last heartbeat said.
      if (/no responders/i.test(ensureError(e).message)) this.#o.registry.markDead(worker, `no responders on ${subject}`);
      throw new Error(`worker ${worker} did not answer ${subject.split('.').pop()}: ${ensureError(e).message}`, { cause: e });
    }
    if (!ack.ok) throw new WorkerRefusedError(`worker ${worker}: ${ack.error}`);
  }

  /**
   * Runs the job's current epoch on `workers` with what each is assigned, in two phases: every
   * worker subscribes its channels (deploy), then sources start, so no first batch of a channel
   * is published before its receiver listens.
   */
  async deploy(job: Job, workers: ReadonlyArray<readonly [WorkerId, WorkerAssignment]>): Promise<void> {
    await Promise.all(workers.map(([worker, a]) => this.send(worker, subjects.deploy(worker), this.#deployTasks(job, worker, a), this.#o.deployTimeoutMs)));
    await Promise.all(workers.map(([worker]) => this.send(worker, subjects.start(worker), codecs.start.encode({ jobId: job.id }))));
  }

  /** Runs the job on workers that join it in its epoch, with nothing assigned yet (a move follows). */
  join(job: Job, workers: readonly WorkerId[]): Promise<void> {
    return this.deploy(job, workers.map((w) => [w, { keyGroups: [], splits: [] }] as const));
  }

  /** Stops the job on `workers` (by default every live one); a worker that does not acknowledge is logged. */
  async stop(job: Job, workers: readonly WorkerRecord[] = this.#o.registry.alive()): Promise<void> {
    await Promise.all(
      workers.map((w) =>
        this.send(w.id, subjects.cancel(w.id), codecs.cancel.encode({ jobId: job.id })).catch((e) =>
          this.#o.logger.warn({ jobId: job.id, workerId: w.id, err: ensureError(e).message }, 'cancel not acknowledged'),
        ),
      ),
    );
  }

  /** What a worker is told to run of the job in its current epoch. */
  #deployTasks(job: Job, worker: WorkerId, a: WorkerAssignment): Uint8Array {
    const latest = job.latestCheckpoint;
    const publicKey = this.#o.registry.get(worker)?.channelPublicKey;
    if (publicKey === undefined || job.channelKey === undefined) throw new Error(`worker ${worker} has registered no channel key: it cannot be sent job ${job.id}'s`);
    return codecs.deploy.encode({
      jobId: job.id,
      manifestJson: job.manifestJson,
      bundleSha256: job.sha256,
      bundleKey: job.bundleKey,
      epoch: job.epoch,
      keyGroups: a.keyGroups,
      sourceSplits: a.splits,
      workers: [...job.assignment].filter(([, x]) => x.keyGroups.length > 0).map(([w]) => w),
      restore: latest ? { metadataKey: latest.metadataKey, checkpointId: latest.id } : null,
      // Until a checkpoint completes, the positions startAt resolved to at submit (never resolved
      // again: a redeploy before the first checkpoint starts where the first deploy did).
      startPositions: latest ? sourcePositions(latest.metadata) : (job.initialPositions ?? []),
      checkpointIntervalMs: this.#o.checkpointIntervalMs,
      skippedRecords: job.poison.skipped(),
      sealedChannelKey: sealChannelKey(job.channelKey, publicKey, { jobId: job.id, epoch: job.epoch, workerId: worker }),
    });
  }
}
