// Job lifecycle: accept a bundle and its manifest, assign key groups and source splits to the
// live workers, deploy, start, track status and failures, cancel.
import type { NatsConnection } from '@nats-io/transport-node';
import { codecs, type Ack, type TaskFailure } from '../core/control.ts';
import { subjects } from '../core/subjects.ts';
import { parseManifest, type JobManifest } from '../core/manifest.ts';
import { assignKeyGroups, assignSplits, type KeyGroupRange } from '../core/key-groups.ts';
import { parseJobId, type Epoch, type JobId, type WorkerId } from '../core/ids.ts';
import { EddyError, InvalidArgumentError, NotFoundError, ensureError } from '../core/errors.ts';
import { sha256Hex } from '../core/bundle.ts';
import { layout, type ObjectStore } from '../core/object-store.ts';
import { ensureDeadLetterStream, ensureSinkStreams, ensureSourceStream } from '../core/nats.ts';
import type { Logger } from '../core/logger.ts';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.ts';

export type JobState = 'SUBMITTED' | 'DEPLOYING' | 'RUNNING' | 'CANCELLED' | 'FAILED';

const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  SUBMITTED: ['DEPLOYING', 'FAILED', 'CANCELLED'],
  DEPLOYING: ['RUNNING', 'FAILED', 'CANCELLED'],
  RUNNING: ['FAILED', 'CANCELLED'],
  CANCELLED: [],
  FAILED: ['CANCELLED'],
};

export interface WorkerAssignment {
  keyGroups: KeyGroupRange[];
  splits: number[];
}

export interface JobFailureInfo {
  message: string;
  stageId: string;
  keyGroup: number;
  workerId: string;
  stack: string;
  atUnixMs: number;
}

export interface JobRecord {
  id: JobId;
  manifest: JobManifest;
  manifestJson: string;
  sha256: string;
  bundleKey: string;
  state: JobState;
  submittedAtMs: number;
  epoch: Epoch;
  assignment: Map<WorkerId, WorkerAssignment>;
  lastFailure?: JobFailureInfo;
  /** (time, recordsIn per stage) samples for rates. */
  samples: Array<{ atMs: number; recordsIn: Map<string, number> }>;
}

export interface StageStatus {
  stageId: string;
  kind: string;
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
  recordsInPerSecond: number;
}

export interface JobManagerOptions {
  nc: NatsConnection;
  store: ObjectStore;
  registry: WorkerRegistry;
  controlTimeoutMs: number;
  logger: Logger;
}

export class JobManager {
  readonly #o: JobManagerOptions;
  readonly #jobs = new Map<JobId, JobRecord>();
  #epoch = 0;

  constructor(options: JobManagerOptions) {
    this.#o = options;
  }

  /** Verifies and stores a bundle, then deploys it to the live workers. */
  async submit(manifestJson: string, declaredSha256: string, bundle: Uint8Array): Promise<JobRecord> {
    const actual = sha256Hex(bundle);
    if (actual !== declaredSha256) {
      throw new InvalidArgumentError(`bundle sha256 mismatch: the header declares ${declaredSha256 || '(none)'}, the ${bundle.length} bytes received hash to ${actual}`);
    }
    const manifest = parseManifest(manifestJson);
    const id = parseJobId(manifest.name);
    const existing = this.#jobs.get(id);
    if (existing && (existing.state === 'RUNNING' || existing.state === 'DEPLOYING' || existing.state === 'SUBMITTED')) {
      throw new EddyError('ALREADY_EXISTS', `job ${id} is ${existing.state}; cancel it before submitting it again`);
    }
    const workers = this.#o.registry.alive();
    if (workers.length === 0) throw new EddyError('FAILED_PRECONDITION', 'no live workers: start at least one worker before submitting a job');

    const bundleKey = layout.bundle(id, actual);
    await this.#o.store.put(bundleKey, bundle);
    await this.#o.store.put(layout.manifest(id, actual), new TextEncoder().encode(manifestJson));
    const { nc } = this.#o;
    await ensureSourceStream(nc, manifest.source);
    await ensureSinkStreams(nc, manifest.stages.flatMap((s) => s.sinks));
    await ensureDeadLetterStream(nc);

    const job: JobRecord = {
      id,
      manifest,
      manifestJson,
      sha256: actual,
      bundleKey,
      state: 'SUBMITTED',
      submittedAtMs: Date.now(),
      epoch: ++this.#epoch as Epoch,
      assignment: this.#assign(manifest, workers),
      samples: [],
    };
    this.#jobs.set(id, job);
    this.#o.logger.info({ jobId: id, sha256: actual, workers: workers.map((w) => w.id), epoch: job.epoch }, 'job submitted');
    await this.#deploy(job);
    return job;
  }

  #assign(manifest: JobManifest, workers: WorkerRecord[]): Map<WorkerId, WorkerAssignment> {
    const ids = workers.map((w) => w.id);
    const ranges = assignKeyGroups(ids, Math.min(manifest.maxParallelism, Number.MAX_SAFE_INTEGER));
    const splits = assignSplits(ids, manifest.source.partitions);
    // More workers than key groups: the surplus gets no key groups (ranges need parallelism <= maxParallelism).
    return new Map(ids.map((w) => [w, { keyGroups: ranges.has(w) ? [ranges.get(w)!] : [], splits: splits.get(w) ?? [] }]));
  }

  async #deploy(job: JobRecord): Promise<void> {
    this.#transition(job, 'DEPLOYING');
    const targets = [...job.assignment.entries()];
    try {
      // Two phases: every worker subscribes its channels (deploy), then sources start, so no
      // first batch of a channel is published before its receiver listens.
      await Promise.all(
        targets.map(([worker, a]) =>
          this.#control(worker, subjects.deploy(worker), codecs.deploy.encode({
            jobId: job.id,
            manifestJson: job.manifestJson,
            bundleSha256: job.sha256,
            bundleKey: job.bundleKey,
            epoch: job.epoch,
            keyGroups: a.keyGroups,
            sourceSplits: a.splits,
          })),
        ),
      );
      await Promise.all(targets.map(([worker]) => this.#control(worker, subjects.start(worker), codecs.start.encode({ jobId: job.id }))));
      this.#transition(job, 'RUNNING');
    } catch (e) {
      const err = ensureError(e);
      this.#failJob(job, { message: `deploy failed: ${err.message}`, stageId: '', keyGroup: -1, workerId: '', stack: err.stack ?? '', atUnixMs: Date.now() });
      throw new EddyError('FAILED_PRECONDITION', `job ${job.id} could not be deployed: ${err.message}`, { cause: err });
    }
  }

  async #control(worker: WorkerId, subject: string, payload: Uint8Array): Promise<void> {
    let ack: Ack;
    try {
      ack = codecs.ack.decode((await this.#o.nc.request(subject, payload, { timeout: this.#o.controlTimeoutMs })).data);
    } catch (e) {
      throw new Error(`worker ${worker} did not answer ${subject.split('.').pop()}: ${ensureError(e).message}`, { cause: e });
    }
    if (!ack.ok) throw new Error(`worker ${worker}: ${ack.error}`);
  }

  get(id: string): JobRecord {
    const job = this.#jobs.get(id as JobId);
    if (!job) throw new NotFoundError(`job ${id} not found`);
    return job;
  }

  list(): JobRecord[] {
    return [...this.#jobs.values()].sort((a, b) => a.submittedAtMs - b.submittedAtMs);
  }

  async cancel(id: string): Promise<JobRecord> {
    const job = this.get(id);
    if (job.state === 'CANCELLED') return job;
    await this.#stopOnWorkers(job);
    this.#transition(job, 'CANCELLED');
    return job;
  }

  async #stopOnWorkers(job: JobRecord): Promise<void> {
    await Promise.all(
      [...job.assignment.keys()].map((w) =>
        this.#control(w, subjects.cancel(w), codecs.cancel.encode({ jobId: job.id })).catch((e) =>
          this.#o.logger.warn({ jobId: job.id, workerId: w, err: ensureError(e).message }, 'cancel not acknowledged'),
        ),
      ),
    );
  }

  /** A task failed on a worker: in this version the job fails (restart strategies come with checkpoints). */
  onTaskFailure(f: TaskFailure): void {
    const job = this.#jobs.get(f.jobId as JobId);
    if (!job || job.state === 'FAILED' || job.state === 'CANCELLED') return;
    this.#failJob(job, { message: f.message, stageId: f.stageId, keyGroup: f.keyGroup, workerId: f.workerId, stack: f.stack, atUnixMs: Number(f.atUnixMs) });
    void this.#stopOnWorkers(job);
  }

  onWorkerDead(worker: WorkerRecord): void {
    for (const job of this.#jobs.values()) {
      if ((job.state === 'RUNNING' || job.state === 'DEPLOYING') && job.assignment.has(worker.id)) {
        this.#failJob(job, {
          message: `worker ${worker.id} stopped heartbeating; its key groups and splits are lost until the job is submitted again (recovery from checkpoints is not in this version)`,
          stageId: '',
          keyGroup: -1,
          workerId: worker.id,
          stack: '',
          atUnixMs: Date.now(),
        });
        void this.#stopOnWorkers(job);
      }
    }
  }

  /** Samples counters for rates; called on every heartbeat. */
  sample(): void {
    const now = Date.now();
    for (const job of this.#jobs.values()) {
      if (job.state !== 'RUNNING') continue;
      const totals = new Map(this.stageStatus(job).map((s) => [s.stageId, s.recordsIn]));
      job.samples.push({ atMs: now, recordsIn: totals });
      while (job.samples.length > 2 && now - job.samples[0]!.atMs > 5000) job.samples.shift();
    }
  }

  stageStatus(job: JobRecord): StageStatus[] {
    const out = job.manifest.stages.map((s) => ({ stageId: s.id, kind: s.kind, recordsIn: 0, recordsOut: 0, deadLetters: 0, recordsInPerSecond: 0 }));
    for (const w of this.#o.registry.all()) {
      const counters = w.jobs.get(job.id);
      if (!counters) continue;
      for (const c of counters.stages) {
        const s = out.find((x) => x.stageId === c.stageId);
        if (!s) continue;
        s.recordsIn += Number(c.recordsIn);
        s.recordsOut += Number(c.recordsOut);
        s.deadLetters += Number(c.deadLetters);
      }
    }
    const first = job.samples[0];
    const last = job.samples[job.samples.length - 1];
    if (first && last && last.atMs > first.atMs) {
      for (const s of out) s.recordsInPerSecond = (((last.recordsIn.get(s.stageId) ?? 0) - (first.recordsIn.get(s.stageId) ?? 0)) * 1000) / (last.atMs - first.atMs);
    }
    return out;
  }

  #failJob(job: JobRecord, failure: JobFailureInfo): void {
    job.lastFailure = failure;
    if (job.state !== 'FAILED') this.#transition(job, 'FAILED');
    this.#o.logger.error({ jobId: job.id, failure }, 'job failed');
  }

  #transition(job: JobRecord, to: JobState): void {
    if (!TRANSITIONS[job.state].includes(to)) throw new EddyError('FAILED_PRECONDITION', `job ${job.id} cannot go from ${job.state} to ${to}`);
    this.#o.logger.info({ jobId: job.id, from: job.state, to }, 'job state');
    job.state = to;
  }
}
