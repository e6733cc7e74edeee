// Telling workers what to run: control requests over NATS request-reply, each answered with an
// Ack, and the DeployTasks message of a worker's part of a job in its epoch.
import type { NatsConnection } from '@nats-io/transport-node';
import { codecs, type Ack } from '../core/control.ts';
import { ensureError } from '../core/errors.ts';
import type { WorkerId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { subjects } from '../core/subjects.ts';
import type { Job } from './job.ts';
import type { WorkerAssignment } from './rebalancer.ts';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.ts';

/** A worker answered a control request with an error. */
export class WorkerRefusedError extends Error {}

/** What a worker is told to run of the job in its current epoch. */
export function deployTasks(job: Job, a: WorkerAssignment, checkpointIntervalMs: number): Uint8Array {
  const latest = job.latestCheckpoint;
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
    startPositions: latest ? Object.entries(latest.metadata.sources).map(([split, nextSequence]) => ({ split: Number(split), nextSequence })) : (job.initialPositions ?? []),
    checkpointIntervalMs,
  });
}

export interface WorkerControlOptions {
  nc: NatsConnection;
  registry: WorkerRegistry;
  controlTimeoutMs: number;
  checkpointIntervalMs: number;
  logger: Logger;
}

export class WorkerControl {
  readonly #o: WorkerControlOptions;

  constructor(options: WorkerControlOptions) {
    this.#o = options;
  }

  /** Sends a control request; rejects when the worker does not answer or refuses (WorkerRefusedError). */
  async request(worker: WorkerId, subject: string, payload: Uint8Array): Promise<void> {
    let ack: Ack;
    try {
      ack = codecs.ack.decode((await this.#o.nc.request(subject, payload, { timeout: this.#o.controlTimeoutMs })).data);
    } catch (e) {
      // Nobody listens on the worker's control subject: the process is gone, whatever its last heartbeat said.
      if (/no responders/i.test(ensureError(e).message)) this.#o.registry.markDead(worker, `no responders on ${subject}`);
      throw new Error(`worker ${worker} did not answer ${subject.split('.').pop()}: ${ensureError(e).message}`, { cause: e });
    }
    if (!ack.ok) throw new WorkerRefusedError(`worker ${worker}: ${ack.error}`);
  }

  /** Deploys, then starts, each worker's part of the job in its epoch. */
  async deployAndStart(job: Job, targets: ReadonlyArray<[WorkerId, WorkerAssignment]>): Promise<void> {
    // Two phases: every worker subscribes its channels (deploy), then sources start, so no
    // first batch of a channel is published before its receiver listens.
    await Promise.all(targets.map(([worker, a]) => this.request(worker, subjects.deploy(worker), deployTasks(job, a, this.#o.checkpointIntervalMs))));
    await Promise.all(targets.map(([worker]) => this.request(worker, subjects.start(worker), codecs.start.encode({ jobId: job.id }))));
  }

  /** Runs the job on workers that join it in its epoch, with nothing assigned yet (a move follows). */
  async join(job: Job, workers: WorkerId[]): Promise<void> {
    await this.deployAndStart(job, workers.map((w) => [w, { keyGroups: [], splits: [] }]));
  }

  /** Cancels the job on workers; a worker that does not acknowledge is logged, not an error. */
  async stopOnWorkers(job: Job, workers: readonly WorkerRecord[]): Promise<void> {
    await Promise.all(
      workers.map((w) =>
        this.request(w.id, subjects.cancel(w.id), codecs.cancel.encode({ jobId: job.id })).catch((e) =>
          this.#o.logger.warn({ jobId: job.id, workerId: w.id, err: ensureError(e).message }, 'cancel not acknowledged'),
        ),
      ),
    );
  }
}
