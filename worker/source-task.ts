// A source actor: reads one split (subject partition <stream>.<p>) of the job's JetStream
// source from an exact stream sequence, decodes JSON, runs the source stage's chained
// operators and shuffles by key (ARCHITECTURE.md, "Sources and sinks").
import { jetstream, DeliverPolicy, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../core/logger.ts';
import { subjects } from '../core/subjects.ts';
import { UserFunctionError, ensureError } from '../core/errors.ts';
import type { JobManifest } from '../core/manifest.ts';
import type { StageOutput } from './stage-output.ts';
import type { DeadLetters } from './dead-letters.ts';
import { WatermarkGenerator } from './watermark-generator.ts';
import type { StageCounters } from './stage-counters.ts';

export interface SourceTaskOptions {
  nc: NatsConnection;
  manifest: JobManifest;
  stageId: string;
  partition: number;
  /** First stream sequence to read. */
  startSequence: number;
  output: StageOutput;
  counters: StageCounters;
  deadLetters: DeadLetters;
  logger: Logger;
  /** A failure the task cannot get past (user code under the "fail" policy, a broken channel). */
  onFailure(error: Error): void;
  /** The job's timestamp assigner (StagePlan.timestamp), when the source has event time. */
  timestampOf?: (event: unknown) => number;
}

export type SourceTaskState = 'CREATED' | 'RUNNING' | 'STOPPED' | 'FAILED';

export class SourceTask {
  readonly #o: SourceTaskOptions;
  #state: SourceTaskState = 'CREATED';
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  #watermarks: WatermarkGenerator | undefined;
  #watermarkTimer: NodeJS.Timeout | undefined;
  /** Stream sequence of the last message read: what a checkpoint records. */
  lastSequence = 0;

  constructor(options: SourceTaskOptions) {
    this.#o = options;
    this.lastSequence = options.startSequence - 1;
  }

  get state(): SourceTaskState {
    return this.#state;
  }

  async start(): Promise<void> {
    const { manifest, partition } = this.#o;
    const js = jetstream(this.#o.nc);
    // An ordered consumer: no acks, server-side flow control, recreated by the client at the
    // next sequence after a gap, so the split is read exactly in stream order.
    const consumer = await js.consumers.get(manifest.source.stream, {
      filter_subjects: subjects.sourcePartition(manifest.source.stream, partition),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.#o.startSequence,
    });
    this.#messages = await consumer.consume({ max_messages: 1024 });
    this.#state = 'RUNNING';
    this.#startWatermarks();
    this.#o.logger.info({ partition, startSequence: this.#o.startSequence }, 'source split started');
    this.#loop = this.#run(this.#messages).catch((e) => this.#fail(ensureError(e)));
  }

  async #run(messages: ConsumerMessages): Promise<void> {
    const { output, counters, deadLetters, manifest, stageId } = this.#o;
    const errorPolicy = manifest.errorPolicy;
    for await (const m of messages) {
      if (this.#state !== 'RUNNING') break;
      counters.recordsIn++;
      this.lastSequence = m.seq;
      let value: unknown;
      try {
        value = JSON.parse(m.string());
      } catch (e) {
        deadLetters.publish({ stageId, reason: `invalid JSON: ${ensureError(e).message}`, record: m.string(), source: { stream: manifest.source.stream, sequence: m.seq } }, counters);
        continue;
      }
      let timestamp = -1;
      if (this.#o.timestampOf !== undefined) {
        const assigned = this.#timestamp(value);
        if (typeof assigned === 'string') {
          deadLetters.publish({ stageId, reason: assigned, record: value, source: { stream: manifest.source.stream, sequence: m.seq } }, counters);
          continue;
        }
        timestamp = assigned;
        this.#watermarks?.onRecord(timestamp);
      }
      try {
        output.emit(value, timestamp);
      } catch (e) {
        if (!(e instanceof UserFunctionError) || errorPolicy === 'fail') throw e;
        deadLetters.publish({ stageId, operator: e.operator, reason: e.message, stack: ensureError(e.cause).stack ?? '', record: value, source: { stream: manifest.source.stream, sequence: m.seq } }, counters);
      }
      // Backpressure: stop pulling while the channel windows are full.
      if (output.sender?.blocked) await output.sender.whenWritable();
      const sinksFull = output.checkSinks();
      if (sinksFull) await sinksFull;
    }
    output.sender?.flush();
    await output.flushSinks();
  }

  /** The record's event time, or why it has none (a bad record). */
  #timestamp(value: unknown): number | string {
    let ts: unknown;
    try {
      ts = this.#o.timestampOf!(value);
    } catch (e) {
      return `timestamp assigner threw: ${ensureError(e).message}`;
    }
    if (!Number.isSafeInteger(ts) || (ts as number) < 0) return `timestamp assigner returned ${String(ts)}, not an integer >= 0 (ms since the epoch)`;
    return ts as number;
  }

  // Watermarks go out on a clock, between messages (the read loop emits each message
  // synchronously, so a watermark never splits one), after every record sent before them.
  #startWatermarks(): void {
    const spec = this.#o.manifest.source.eventTime;
    if (spec === undefined || this.#o.timestampOf === undefined || !this.#o.output.sender) return;
    const generator = new WatermarkGenerator(spec);
    this.#watermarks = generator;
    this.#watermarkTimer = setInterval(() => {
      const update = generator.poll();
      if (update === undefined || this.#state !== 'RUNNING') return;
      try {
        this.#o.output.sender?.sendWatermark(update.watermark, update.idle);
      } catch (e) {
        this.#fail(ensureError(e));
      }
    }, spec.watermarkIntervalMs);
    this.#watermarkTimer.unref();
  }

  #fail(error: Error): void {
    if (this.#state === 'STOPPED' || this.#state === 'FAILED') return;
    clearInterval(this.#watermarkTimer);
    this.#state = 'FAILED';
    this.#messages?.stop();
    this.#o.onFailure(error);
  }

  /**
   * Cuts checkpoint N at this split: everything read so far is before the barrier. Safe at any
   * callback: the read loop emits a message synchronously, so no message is half-processed.
   * Returns the stream sequence to resume from after a restore to N.
   */
  injectBarrier(checkpointId: number): number {
    this.#o.output.sender?.flush();
    this.#o.output.sender?.sendBarrier(checkpointId);
    return this.lastSequence + 1;
  }

  get partition(): number {
    return this.#o.partition;
  }

  async stop(): Promise<void> {
    if (this.#state === 'RUNNING') this.#state = 'STOPPED';
    clearInterval(this.#watermarkTimer);
    this.#messages?.stop();
    await this.#loop;
  }
}
