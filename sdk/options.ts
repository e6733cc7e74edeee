// The options a job author passes to the job builder (sdk/job.ts): of the job, its sources and
// watermarks, keyed process stages and features, broadcast-connected stages and windows.
import type { JobLimits, SinkSpec } from '../core/manifest.ts';
import type { RestartStrategySpec } from '../core/restart-strategy-spec.ts';
import type { StartAtOption } from '../core/start-at.ts';
import type { KeyedBroadcastOnTimerFunction, OnTimerFunction } from './context.ts';
import type { MapStateDescriptor, StateDescriptor } from './state.ts';

export interface JobOptions {
  /** Key groups of every keyed stage; fixed for the job's life. @default 128 */
  maxParallelism?: number;
  /** A record whose user function throws: fail the job, or send it to the dead-letter subject. @default "fail" */
  errorPolicy?: 'fail' | 'dead-letter';
  /**
   * What happens when user code fails under the "fail" error policy: `none`, `fixed-delay`,
   * `exponential-backoff` or `failure-rate` (Flink's strategies).
   * @default { kind: 'exponential-backoff', initialDelayMs: 500, maxDelayMs: 30000, multiplier: 2, jitter: 0.1, resetAfterMs: 60000 } (the coordinator's DEFAULT_RESTART_STRATEGY)
   */
  restartStrategy?: RestartStrategySpec;
  /**
   * Limits of the job's code where workers isolate jobs (`eddy worker --job-isolation thread`):
   * `maxCallMs`, how long a user function, timer callback or the bundle's import may hold the
   * job's thread before the task fails (the thread is stopped); `maxHeapMb`, the heap of the
   * job's thread on each worker. @default the worker's --max-call-ms and --max-heap-mb
   */
  limits?: JobLimits;
  /**
   * A source record whose processing fails this many times (a user function throws on it under
   * errorPolicy "fail", or the watchdog stops a function running on it) is a poison record: it is
   * dead-lettered with the reason and skipped, on every worker, instead of restarting the job
   * again. 0: never skip (the restart strategy alone decides). @default 3
   */
  maxRecordAttempts?: number;
  /**
   * Environment variables of the worker the job's code may read: an isolated job's process.env
   * holds these and nothing else. @default none
   */
  env?: string[];
}

export interface SourceOptions<T = unknown> {
  /** Subject partitions `<stream>.<p>` (source splits). @default 4 */
  partitions?: number;
  /** Top-level JSON field producers partition by, so that one key stays in order. */
  key?: string;
  /**
   * Top-level JSON field holding the record's event time in ms since the epoch. Absent (or a
   * record without a finite number there): the time JetStream stored the message. Features report
   * it as the event time of their last update, and history is versioned by it.
   */
  timestampField?: string;
  /**
   * The event time of a record in ms since the epoch (an integer >= 0). With it, records carry
   * event time and the source generates watermarks. A record for which it throws or returns
   * something else goes to the dead-letter subject.
   */
  timestamp?: (event: T) => number;
  /** Watermarks of each source split; needs `timestamp`. @default { maxOutOfOrdernessMs: 0 } */
  watermark?: WatermarkOptions;
  /**
   * Where every split starts on the job's first start: a stream sequence, the messages JetStream
   * stored at or after a time (ms since the epoch, a Date, or an ISO 8601 string with a zone),
   * the start of the stream, or only what arrives after the start. Resolved to a stream sequence
   * per split once, when the job is first deployed; restores start from the checkpoint's
   * positions, never from this. `eddy submit --start-at <stream>=...` overrides it.
   * @default "earliest"
   */
  startAt?: StartAtOption;
}

/**
 * Bounded-out-of-orderness watermarks, per source split: after a record with event time t, the
 * split's watermark is (largest t seen) - maxOutOfOrdernessMs - 1, so records up to
 * maxOutOfOrdernessMs behind the largest are still on time.
 */
export interface WatermarkOptions {
  /** How far behind the largest event time seen a record may be and still be on time. @default 0 */
  maxOutOfOrdernessMs?: number;
  /**
   * A split without records for this long is marked idle and stops holding the watermark of
   * the stages after it back, until it reads a record again. @default undefined (never idle)
   */
  idleTimeoutMs?: number;
  /** How often a split sends its watermark when it advanced. @default 200 */
  intervalMs?: number;
}

export interface ProcessOptions<O = unknown> {
  /** Keyed state the function uses. */
  state?: StateDescriptor[];
  /**
   * Called when a timer registered through ctx.timers fires, in order with the key's records.
   * Event-time timers fire when the watermark reaches their time, processing-time ones from the
   * worker's clock.
   */
  onTimer?: OnTimerFunction<O>;
  /**
   * Keyed state served by FeatureService, by feature name; the entity id is the key. Give
   * `{ state, history: { retentionMs } }` to keep the feature's versions for retentionMs of event
   * time (as-of reads); a bare descriptor keeps only the current value.
   */
  features?: Record<string, StateDescriptor | FeatureDeclaration>;
}

/** A feature with options. */
export interface FeatureDeclaration {
  state: StateDescriptor;
  /** Keep versions for as-of reads, for retentionMs of event time before the key's newest version. */
  history?: { retentionMs: number };
}

/** Options of a keyed stage connected to a broadcast stream. */
export interface BroadcastProcessOptions<O = unknown> extends Omit<ProcessOptions<O>, 'onTimer'> {
  /** The broadcast state descriptors (map states) processBroadcastElement writes and processElement reads. */
  broadcastState?: ReadonlyArray<MapStateDescriptor<unknown>>;
  /** As ProcessOptions.onTimer; the context also reads broadcast state. */
  onTimer?: KeyedBroadcastOnTimerFunction<O>;
}

export interface WindowOptions {
  /**
   * How long after a window fired records for it are still accepted; each fires the window again
   * with the updated contents. @default 0
   */
  allowedLatenessMs?: number;
  /** Where late records go (records whose every window is past its lateness); absent: dropped. */
  lateSink?: SinkSpec;
}
