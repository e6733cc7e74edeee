// A worker's metrics (README "Observability" lists them). Hot paths stay free of telemetry
// (STYLE.md rule 10): records in/out and backpressure are the plain counters the heartbeat
// already carries (worker/task/stage-counters.ts, worker/channel/channel-sender.ts), read by observable
// instruments only when Prometheus scrapes; histograms are recorded once per batch, per
// checkpoint or per query, with attribute objects built once per task.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Attributes, Histogram, Meter, MetricOptions } from '@opentelemetry/api';
import { BATCH_RECORDS_BUCKETS, BYTES_BUCKETS, LATENCY_BUCKETS_MS } from '../core/telemetry.ts';
import type { RelayedMeasurements } from './metrics-relay.ts';

/** One stage of one job on this worker, as the heartbeat reports it. */
export interface StageSample {
  stageId: string;
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
  backpressureMs: number;
  /** The stage's event-time watermark on this worker (keyed stages of event-time jobs). */
  watermarkMs?: number;
}

/** One source split: where its reader stands. */
export interface SplitSample {
  stageId: string;
  split: number;
  /** JetStream timestamp (Unix ms) of the last message read; 0 before the first. */
  lastTimestampMs: number;
  /** Messages in the stream after it when it was read (the consumer's pending count). */
  pending: number;
}

/** What a running job offers the worker's metrics (worker/job-runtime.ts implements it). */
export interface ObservedJob {
  readonly jobId: string;
  /** RocksDB's directory of this job on this worker. */
  readonly statePath: string;
  stageSamples(): StageSample[];
  splitSamples(): SplitSample[];
}

/** How often RocksDB directory sizes are measured, once metrics are scraped at all. */
const STATE_SIZE_REFRESH_MS = 5_000;

export class WorkerMetrics {
  readonly #workerId: string;
  readonly #jobs = new Set<ObservedJob>();
  /** Last measured RocksDB directory size per job. */
  readonly #stateBytes = new Map<string, number>();
  #stateTimer: NodeJS.Timeout | undefined;
  /** The measurement under way, which a second caller waits for rather than starting another. */
  #measuring: Promise<void> | undefined;
  readonly #batchRecords: Histogram;
  readonly #checkpointUploadMs: Histogram;
  readonly #checkpointUploadBytes: Histogram;
  readonly #checkpointUploadFailures;
  readonly #queryMs: Histogram;
  /** The recorded (not observed) instruments by name, for measurements relayed from job threads. */
  readonly #byName = new Map<string, (value: number, attributes: Attributes) => void>();

  /**
   * `measureState`: measure RocksDB directory sizes every 5 s (true when metrics are served).
   * They are measured off the scrape path: fs calls share libuv's thread pool with RocksDB's
   * work, and a scrape must not wait behind it.
   */
  constructor(meter: Meter, workerId: string, options: { measureState: boolean }) {
    if (options.measureState) {
      this.#stateTimer = setInterval(() => void this.#measureStateSizes(), STATE_SIZE_REFRESH_MS);
      this.#stateTimer.unref();
    }
    this.#workerId = workerId;
    // Each recorded instrument is also known by name, for replay().
    const histogram = (name: string, options: MetricOptions): Histogram => {
      const h = meter.createHistogram(name, options);
      this.#byName.set(name, (v, a) => h.record(v, a));
      return h;
    };
    this.#batchRecords = histogram('eddy_channel_batch_records', {
      description: 'Records per shuffle batch sent on a channel (sender task to key group), by receiving stage',
      unit: '{record}',
      advice: { explicitBucketBoundaries: BATCH_RECORDS_BUCKETS },
    });
    this.#checkpointUploadMs = histogram('eddy_worker_checkpoint_upload_duration_ms', {
      description: "Time to upload this worker's part of a checkpoint (deltas, snapshots, exactly-once output)",
      unit: 'ms',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
    });
    this.#checkpointUploadBytes = histogram('eddy_worker_checkpoint_upload_bytes', {
      description: "Bytes this worker uploaded for one checkpoint",
      unit: 'By',
      advice: { explicitBucketBoundaries: BYTES_BUCKETS },
    });
    const failures = meter.createCounter('eddy_worker_checkpoint_upload_failures', { description: "Uploads of this worker's part of a checkpoint that failed" });
    this.#byName.set('eddy_worker_checkpoint_upload_failures', (v, a) => failures.add(v, a));
    this.#checkpointUploadFailures = failures;
    this.#queryMs = histogram('eddy_worker_query_duration_ms', {
      description: 'Time a worker takes to answer one feature query for one key group (decode, state read, encode)',
      unit: 'ms',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
    });

    const recordsIn = meter.createObservableCounter('eddy_stage_records_in', { description: 'Records into a stage on this worker since the job was deployed here', unit: '{record}' });
    const recordsOut = meter.createObservableCounter('eddy_stage_records_out', { description: 'Records out of a stage (shuffled or written to sinks) since the job was deployed here', unit: '{record}' });
    const deadLetters = meter.createObservableCounter('eddy_stage_dead_letters', { description: 'Records a stage sent to the dead-letter subject', unit: '{record}' });
    const backpressure = meter.createObservableCounter('eddy_stage_backpressure_ms', {
      description: "Milliseconds a stage's sending tasks waited with full channel windows (backpressure from the next stage), summed over its tasks",
      unit: 'ms',
    });
    const sourceLag = meter.createObservableGauge('eddy_source_lag_ms', {
      description: 'Per source split: now minus the JetStream timestamp of the last message read, while messages are pending after it (0 when caught up). Not a watermark.',
      unit: 'ms',
    });
    const watermarkLag = meter.createObservableGauge('eddy_watermark_lag_ms', {
      description: "Per keyed stage of an event-time job: now minus the stage's watermark on this worker (the least over its key groups)",
      unit: 'ms',
    });
    const stateBytes = meter.createObservableGauge('eddy_rocksdb_size_bytes', {
      description: "Size of a job's RocksDB directory on this worker (measured every 5 s)",
      unit: 'By',
    });
    meter.addBatchObservableCallback(
      async (result) => {
        // A job not measured yet (an isolated job's state path is known only from its thread's
        // first status, after the measurement its attach started): measured now, not 5 s later.
        if ([...this.#jobs].some((j) => !this.#stateBytes.has(j.jobId) && j.statePath !== '')) await this.#measureStateSizes();
        const now = Date.now();
        for (const job of this.#jobs) {
          for (const s of job.stageSamples()) {
            const attrs = { job: job.jobId, stage: s.stageId, worker: this.#workerId };
            result.observe(recordsIn, s.recordsIn, attrs);
            result.observe(recordsOut, s.recordsOut, attrs);
            result.observe(deadLetters, s.deadLetters, attrs);
            result.observe(backpressure, s.backpressureMs, attrs);
            if (s.watermarkMs !== undefined) result.observe(watermarkLag, Math.max(0, now - s.watermarkMs), attrs);
          }
          for (const s of job.splitSamples()) {
            const lag = s.lastTimestampMs > 0 && s.pending > 0 ? Math.max(0, now - s.lastTimestampMs) : 0;
            result.observe(sourceLag, lag, { job: job.jobId, stage: s.stageId, split: s.split, worker: this.#workerId });
          }
          const bytes = this.#stateBytes.get(job.jobId);
          if (bytes !== undefined) result.observe(stateBytes, bytes, { job: job.jobId, worker: this.#workerId });
        }
      },
      [recordsIn, recordsOut, deadLetters, backpressure, sourceLag, watermarkLag, stateBytes],
    );
  }

  /** Starts reporting a deployed job; the returned function stops it (at redeploy or cancel). */
  attach(job: ObservedJob): () => void {
    this.#jobs.add(job);
    if (this.#stateTimer !== undefined) void this.#measureStateSizes();
    return () => {
      this.#jobs.delete(job);
      if (![...this.#jobs].some((j) => j.jobId === job.jobId)) this.#stateBytes.delete(job.jobId);
    };
  }

  /** A recorder of batch sizes for one sender task: attributes built once, one call per batch. */
  batchRecorder(jobId: string, toStage: string): (records: number) => void {
    const attrs: Attributes = { job: jobId, stage: toStage, worker: this.#workerId };
    const h = this.#batchRecords;
    return (records) => h.record(records, attrs);
  }

  /** One checkpoint part uploaded (or failed). */
  checkpointUploaded(jobId: string, durationMs: number, bytes: number, failed: boolean): void {
    const attrs = { job: jobId, worker: this.#workerId };
    if (failed) {
      this.#checkpointUploadFailures.add(1, attrs);
      return;
    }
    this.#checkpointUploadMs.record(durationMs, attrs);
    this.#checkpointUploadBytes.record(bytes, attrs);
  }

  /** A recorder of query latencies for one job: attributes built once. */
  queryRecorder(jobId: string): (ms: number) => void {
    const attrs: Attributes = { job: jobId, worker: this.#workerId };
    const h = this.#queryMs;
    return (ms) => h.record(ms, attrs);
  }

  /**
   * Records what a job's thread measured (worker/metrics-relay.ts) into this worker's
   * instruments. Returns how many measurements named no instrument of this worker (none unless
   * the thread runs other code than the worker).
   */
  replay(batch: readonly RelayedMeasurements[]): number {
    let unknown = 0;
    for (const m of batch) {
      const record = this.#byName.get(m.instrument);
      if (record === undefined) unknown += m.values.length;
      else for (const v of m.values) record(v, m.attributes);
    }
    return unknown;
  }

  #measureStateSizes(): Promise<void> {
    if (this.#measuring !== undefined) return this.#measuring;
    // Cleared in a later microtask, after it is set, even when there is nothing to measure.
    const run = this.#measureAll().finally(() => {
      this.#measuring = undefined;
    });
    this.#measuring = run;
    return run;
  }

  async #measureAll(): Promise<void> {
    for (const job of this.#jobs) {
      if (job.statePath === '') continue;
      const bytes = await directoryBytes(job.statePath);
      // A listing that failed (the directory changed under it) keeps the last size.
      if (bytes !== undefined && this.#jobs.has(job)) this.#stateBytes.set(job.jobId, bytes);
    }
  }

  /** Stops the periodic RocksDB size measurement (the worker is closing). */
  close(): void {
    clearInterval(this.#stateTimer);
  }
}

/**
 * Sum of the sizes of the files in a RocksDB directory (flat: RocksDB keeps no subdirectories
 * unless archiving WAL files, which Eddy does not). Files that vanish between the listing and
 * their stat (a compaction removing its inputs) count 0; undefined when the listing fails.
 */
async function directoryBytes(dir: string): Promise<number | undefined> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return undefined;
  }
  const sizes = await Promise.all(names.map((n) => fs.stat(path.join(dir, n)).then((s) => (s.isFile() ? s.size : 0), () => 0)));
  return sizes.reduce((a, b) => a + b, 0);
}
