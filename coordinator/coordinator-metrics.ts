// The coordinator's metrics and spans (README "Observability" lists them): checkpoints (duration,
// size, failures) with a span per checkpoint, recoveries with a span from the decision to
// recover until the job runs again, submits, and FeatureService latency as the coordinator
// serves it. Nothing here is on a per-record path.
import { SpanStatusCode, type Attributes, type Counter, type Histogram, type Span, type Tracer } from '@opentelemetry/api';
import { BYTES_BUCKETS, LATENCY_BUCKETS_MS, type Telemetry } from '../core/telemetry.ts';

/** Why a job recovers: the recoveries counter's `cause` attribute. */
export type RecoveryCause = 'worker-lost' | 'task-failure' | 'infrastructure' | 'coordinator-restart' | 'rescale';

/** A recovery under way: its span and start, ended when the job runs again (or fails). */
export interface RecoveryTrace {
  span: Span;
  startedAtMs: number;
}

/**
 * What the coordinator's observers hear of the events metered here (the dashboard keeps a
 * history of them: coordinator/dashboard/job-history.ts). Called synchronously; must not throw.
 */
export type CoordinatorEvent =
  | { type: 'checkpoint-completed'; jobId: string; checkpointId: number; epoch: number; startedAtUnixMs: number; durationMs: number; bytes: number; workers: CheckpointWorkerPart[] }
  | { type: 'checkpoint-failed'; jobId: string; checkpointId: number; epoch: number; startedAtUnixMs: number; reason: string }
  | { type: 'recovery-started'; jobId: string; cause: RecoveryCause; failure: string; atUnixMs: number };

/** One worker's part of a completed checkpoint: when its acknowledgement came, what it uploaded. */
export interface CheckpointWorkerPart {
  workerId: string;
  /** From the trigger to the worker's acknowledgement. */
  ackMs: number;
  bytes: number;
}

export class CoordinatorMetrics {
  readonly tracer: Tracer;
  /** Set by whoever wants the events (the dashboard). @default none */
  onEvent: ((event: CoordinatorEvent) => void) | undefined;
  /**
   * Which checkpoint each span is: checkpointCompleted/Failed are handed the span, not the id.
   * Every startSpan returns a new object (recording or not), so the span is a sound key.
   */
  readonly #checkpoints = new WeakMap<Span, { checkpointId: number; epoch: number; startedAtUnixMs: number }>();
  readonly #checkpointMs: Histogram;
  readonly #checkpointBytes: Histogram;
  readonly #checkpointsCompleted: Counter;
  readonly #checkpointFailures: Counter;
  readonly #recoveries: Counter;
  readonly #recoveryMs: Histogram;
  readonly #queryMs: Histogram;

  constructor(telemetry: Pick<Telemetry, 'meter' | 'tracer'>) {
    const meter = telemetry.meter;
    this.tracer = telemetry.tracer;
    this.#checkpointMs = meter.createHistogram('eddy_checkpoint_duration_ms', {
      description: 'Time from triggering a checkpoint to writing its _metadata (completed checkpoints)',
      unit: 'ms',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
    });
    this.#checkpointBytes = meter.createHistogram('eddy_checkpoint_size_bytes', {
      description: 'Bytes uploaded for a completed checkpoint, summed over workers',
      unit: 'By',
      advice: { explicitBucketBoundaries: BYTES_BUCKETS },
    });
    this.#checkpointsCompleted = meter.createCounter('eddy_checkpoints_completed', { description: 'Checkpoints completed' });
    this.#checkpointFailures = meter.createCounter('eddy_checkpoint_failures', { description: 'Checkpoints aborted: a worker failed its part, a time-out, the store failed, or the job left its epoch' });
    this.#recoveries = meter.createCounter('eddy_job_recoveries', { description: 'Times a job was rolled back to its last completed checkpoint and redeployed, by cause' });
    this.#recoveryMs = meter.createHistogram('eddy_job_recovery_duration_ms', {
      description: 'Time from the decision to recover until the job runs again (restart delay included)',
      unit: 'ms',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
    });
    this.#queryMs = meter.createHistogram('eddy_feature_query_duration_ms', {
      description: 'FeatureService Get/BatchGet latency on the serving coordinator, routing over NATS included',
      unit: 'ms',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
    });
  }

  /**
   * Each job's per-stage totals over its life (what `eddy job` shows: carried across recoveries,
   * moves and coordinator restarts, each record once), read at scrape time.
   */
  observeJobTotals(meter: Pick<Telemetry, 'meter'>['meter'], totals: () => Array<{ jobId: string; stages: Array<{ stageId: string; recordsIn: number; recordsOut: number; deadLetters: number }> }>): void {
    const recordsIn = meter.createObservableCounter('eddy_job_stage_records_in', { description: "Records into a stage over the job's life, each once (checkpointed totals plus the current epoch's counts)", unit: '{record}' });
    const recordsOut = meter.createObservableCounter('eddy_job_stage_records_out', { description: "Records out of a stage over the job's life, each once", unit: '{record}' });
    const deadLetters = meter.createObservableCounter('eddy_job_stage_dead_letters', { description: "Records a stage dead-lettered over the job's life, each once", unit: '{record}' });
    meter.addBatchObservableCallback(
      (result) => {
        for (const job of totals()) {
          for (const s of job.stages) {
            const attrs = { job: job.jobId, stage: s.stageId };
            result.observe(recordsIn, s.recordsIn, attrs);
            result.observe(recordsOut, s.recordsOut, attrs);
            result.observe(deadLetters, s.deadLetters, attrs);
          }
        }
      },
      [recordsIn, recordsOut, deadLetters],
    );
  }

  checkpointStarted(jobId: string, checkpointId: number, epoch: number): Span {
    const span = this.tracer.startSpan('eddy.checkpoint', { attributes: { 'eddy.job': jobId, 'eddy.checkpoint': checkpointId, 'eddy.epoch': epoch } });
    this.#checkpoints.set(span, { checkpointId, epoch, startedAtUnixMs: Date.now() });
    return span;
  }

  checkpointCompleted(span: Span | undefined, jobId: string, durationMs: number, bytes: number, workers: CheckpointWorkerPart[] = []): void {
    const attrs = { job: jobId };
    this.#checkpointMs.record(durationMs, attrs);
    this.#checkpointBytes.record(bytes, attrs);
    this.#checkpointsCompleted.add(1, attrs);
    span?.setAttribute('eddy.checkpoint.bytes', bytes);
    span?.end();
    const c = span && this.#checkpoints.get(span);
    if (c) this.onEvent?.({ type: 'checkpoint-completed', jobId, ...c, durationMs, bytes, workers });
  }

  checkpointFailed(span: Span | undefined, jobId: string, reason: string): void {
    this.#checkpointFailures.add(1, { job: jobId });
    span?.setStatus({ code: SpanStatusCode.ERROR, message: reason });
    span?.end();
    const c = span && this.#checkpoints.get(span);
    if (c) this.onEvent?.({ type: 'checkpoint-failed', jobId, ...c, reason });
  }

  /**
   * A recovery is decided: counted, and traced from here until the job runs again. A recovery
   * decided while one is under way (its redeploy failed too) is counted and joins its span.
   */
  recoveryStarted(jobId: string, cause: RecoveryCause, failure: string, underWay?: RecoveryTrace): RecoveryTrace {
    this.#recoveries.add(1, { job: jobId, cause });
    this.onEvent?.({ type: 'recovery-started', jobId, cause, failure, atUnixMs: Date.now() });
    if (underWay) {
      underWay.span.addEvent('recovery decided again', { 'eddy.recovery.cause': cause, 'eddy.failure': failure });
      return underWay;
    }
    const span = this.tracer.startSpan('eddy.job.recovery', { attributes: { 'eddy.job': jobId, 'eddy.recovery.cause': cause, 'eddy.failure': failure } });
    return { span, startedAtMs: Date.now() };
  }

  /** The recovered job runs again (ok) or gave up (failed). */
  recoveryEnded(trace: RecoveryTrace | undefined, jobId: string, outcome: { epoch: number } | { error: string }): void {
    if (!trace) return;
    if ('epoch' in outcome) {
      this.#recoveryMs.record(Date.now() - trace.startedAtMs, { job: jobId });
      trace.span.setAttribute('eddy.epoch', outcome.epoch);
    } else {
      trace.span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
    }
    trace.span.end();
  }

  /** Runs a job submit inside its span, recording the outcome. */
  async traceSubmit<T>(jobId: string, submit: () => Promise<T>): Promise<T> {
    return this.tracer.startActiveSpan('eddy.job.submit', { attributes: { 'eddy.job': jobId } }, async (span) => {
      try {
        return await submit();
      } catch (e) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
        throw e;
      } finally {
        span.end();
      }
    });
  }

  /** One FeatureService request answered (or failed) after `ms`. */
  queryAnswered(jobId: string, ok: boolean, ms: number): void {
    const attrs: Attributes = { job: jobId, outcome: ok ? 'ok' : 'error' };
    this.#queryMs.record(ms, attrs);
  }
}
