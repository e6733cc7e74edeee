// A source actor: reads one split (subject partition <stream>.<p>) of one of the job's JetStream
// sources from an exact stream sequence, decodes JSON, runs the source stage's chained
// operators and shuffles by key (docs/ARCHITECTURE.md, "Sources and sinks").
//
// Pull size. A consumer asks the server for up to N messages ahead of what the split has read;
// the server sends them as fast as the socket takes them, and cuts off a client that falls more
// than its max_pending (64 MB by default) behind, losing whatever was in flight on the connection,
// shuffle batches included. A pull of 1,024 frames of 100 records (~28 KB each) was 28 MB a split:
// a backlog of frames broke every Nexmark query with a shuffle. So N is the split's share of the
// worker's pull budget (WorkerOptions.sourcePullBytes) over the largest message seen (at a new
// consumer with nothing read yet, the next stored message of the split), between 4 and 1,024; a
// message more than twice that size makes a new consumer, sized for it.
import { jetstream, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../core/logger.ts';
import { subjects } from '../../core/subjects.ts';
import { UserFunctionError, ensureError } from '../../core/errors.ts';
import type { JobManifest, SourceSpec } from '../../core/manifest.ts';
import type { StageOutput } from './stage-output.ts';
import type { CheckpointOutput } from '../sink/index.ts';
import type { DeadLetters, SourcePosition } from './dead-letters.ts';
import { startSplitWatermarks, type WatermarkGenerator } from './watermark-generator.ts';
import { decodeJsonRecord, eventTimeProblem } from './record-decoding.ts';
import { callSite } from './call-site.ts';
import { ConsumerWatch, nextStoredMessage, unreadMessage } from './consumer-watch.ts';
import type { ErrorPolicy } from './error-policy.ts';
import type { StageCounters } from './stage-counters.ts';
import { encodeOrigin } from '../../core/record-origin.ts';
import { FRAME_HEADER, FRAME_FORMAT_NDJSON, forEachFrameRecord } from '../../core/record-frame.ts';
import type { SkippedRecord } from '../../core/control.ts';
import { betweenBatches } from './between-batches.ts';

const decoder = new TextDecoder();

export interface SourceTaskOptions {
  nc: NatsConnection;
  manifest: JobManifest;
  stageId: string;
  /** The source this split belongs to (a job may have several). */
  source: SourceSpec;
  /** The split's index in the job's flat split space (positions, sender names). */
  partition: number;
  /** The split's subject partition in its own stream: `<stream>.<streamPartition>`. */
  streamPartition: number;
  /** First stream sequence to read. */
  startSequence: number;
  output: StageOutput;
  counters: StageCounters;
  deadLetters: DeadLetters;
  /** What becomes of a record whose user code throws (shared with the stage's output). */
  errorPolicy: ErrorPolicy;
  logger: Logger;
  /** A failure the task cannot get past (user code under the "fail" policy, a broken channel). */
  onFailure(error: Error): void;
  /** This split's share of the worker's pull budget, in bytes, when a consumer is made ("Pull size"). @default 4 MiB */
  pullBytes?: () => number;
  /** The job's timestamp assigner (StagePlan.timestamp), when the source has event time. */
  timestampOf?: (event: unknown) => number;
  /** The largest event time the split read before the checkpoint it restarts from. @default none */
  restoredMaxEventTimeMs?: number;
  /**
   * Poison records of this split, by stream sequence (DeployTasks.skipped_records): dead-lettered
   * with their reason and not processed. @default none
   */
  skipped?: ReadonlyMap<number, SkippedRecord>;
}

export type SourceTaskState = 'CREATED' | 'RUNNING' | 'STOPPED' | 'FAILED';

/**
 * The idle heartbeat asked of a split's consumer, in ms: the server sends one whenever it has
 * nothing to deliver, so a live consumer is never silent for long.
 */
const HEARTBEAT_MS = 1_000;
/** Pauses between attempts to make a split's consumer, in ms (the last one repeats). */
const CONSUMER_RETRY_MS = [100, 250, 500, 1_000];
/** How long a split goes on trying to make a consumer before its task fails, in ms. */
const CONSUMER_DEADLINE_MS = 60_000;
/** Messages a pull asks for: at most (small messages) and at least (large ones); see "Pull size". */
const PULL_MESSAGES_MAX = 1024;
const PULL_MESSAGES_MIN = 4;
/** The size a pull is sized for when no message has been seen, in bytes. */
const PULL_SIZE_FLOOR = 256;
/** A split's pull budget when the worker gives none, in bytes. */
const DEFAULT_PULL_BYTES = 4 * 1024 * 1024;

export class SourceTask {
  readonly #o: SourceTaskOptions;
  #state: SourceTaskState = 'CREATED';
  #messages: ConsumerMessages | undefined;
  /** Resolves when the split stops reading (halted, stopped or failed). */
  readonly #stopping = stopSignal();
  #loop: Promise<void> | undefined;
  #watermarks: WatermarkGenerator | undefined;
  /** The largest event time read, restored ones included (what a checkpoint records). */
  #maxEventTimeMs: number;
  #watermarkTimer: NodeJS.Timeout | undefined;
  /** A message is being processed, or the split waits for room downstream (not a stalled consumer). */
  #busy = false;
  /** The largest message the split has seen, in bytes ("Pull size"). */
  #largest = 0;
  /** The message size the current consumer's pull was sized for; a message over twice it makes a new one. */
  #sizedFor = PULL_SIZE_FLOOR;
  /** Why the split stopped its consumer itself (a message outgrew the pull), for the replacement's log line. */
  #resized: string | undefined;
  /** Stream sequence of the last message read: what a checkpoint records. */
  lastSequence = 0;
  /**
   * The last message read, kept (a reference, no copy) so that metrics can read its JetStream
   * timestamp and pending count at scrape time rather than per record.
   */
  lastMessage: JsMsg | undefined;

  /** The split's subject: `<stream>.<streamPartition>`. */
  readonly #subject: string;

  constructor(options: SourceTaskOptions) {
    this.#o = options;
    this.#subject = subjects.sourcePartition(options.source.stream, options.streamPartition);
    this.lastSequence = options.startSequence - 1;
    this.#maxEventTimeMs = options.restoredMaxEventTimeMs ?? Number.NEGATIVE_INFINITY;
  }

  get state(): SourceTaskState {
    return this.#state;
  }

  /**
   * Starts reading. The split's consumer is made in the background (see #read): on a NATS cluster
   * with a node down, making one can take several attempts, and the job's start does not wait.
   */
  async start(): Promise<void> {
    if (this.#state !== 'CREATED') return;
    this.#state = 'RUNNING';
    this.#startWatermarks();
    this.#o.logger.info({ partition: this.#o.partition, startSequence: this.#o.startSequence }, 'source split started');
    this.#loop = this.#read().catch((e) => this.#fail(ensureError(e)));
  }

  /**
   * Reads the split from consumer to consumer: each starts right after the last message read, so
   * a replaced consumer neither skips nor repeats one. A consumer is replaced when the watch says
   * so (worker/task/consumer-watch.ts: silent, stalled, or the connection reconnected), or when it
   * ends on its own while the split still runs.
   */
  async #read(): Promise<void> {
    while (this.#state === 'RUNNING') {
      const messages = await this.#openConsumer();
      if (messages === undefined) return;
      this.#messages = messages;
      const watch = this.#watchConsumer(messages);
      this.#resized = undefined;
      try {
        await this.#run(messages);
      } finally {
        watch.stop();
      }
      if (this.#state !== 'RUNNING') return;
      const at = { partition: this.#o.partition, nextSequence: this.lastSequence + 1 };
      const why = watch.why();
      if (why === undefined && this.#resized !== undefined) this.#o.logger.info({ ...at, why: this.#resized }, 'source split consumer resized');
      else this.#o.logger.warn({ ...at, why: why ?? 'the consumer ended' }, 'source split consumer replaced');
    }
  }

  /**
   * A new ordered consumer from the next sequence to read; undefined once the split stops.
   * nats-server 2.9 places an R1 consumer on a random server of the stream's: one on a server
   * that is down never answers, and the next attempt likely lands on a live one. Every failure
   * is retried until CONSUMER_DEADLINE_MS passes without a consumer: then the task fails and the
   * job recovers.
   */
  async #openConsumer(): Promise<ConsumerMessages | undefined> {
    const source = this.#o.source;
    const js = jetstream(this.#o.nc);
    const since = Date.now();
    for (let attempt = 0; ; attempt++) {
      const made = (async () => {
        // An ordered consumer: no acks, server-side flow control, recreated by the client at the
        // next sequence after a gap, so the split is read exactly in stream order.
        const max = await this.#pullMessages();
        const consumer = await js.consumers.get(source.stream, {
          filter_subjects: this.#subject,
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: this.lastSequence + 1,
        });
        return consumer.consume({ max_messages: max, idle_heartbeat: HEARTBEAT_MS });
      })();
      try {
        // A stop does not wait for an attempt under way (up to the JetStream request time-out).
        const messages = await Promise.race([made, this.#stopping.promise]);
        if (messages !== undefined && this.#state === 'RUNNING') return messages;
        // Halted or stopped while the consumer was being made.
        void made.then((m) => m.stop(), () => undefined);
        return undefined;
      } catch (e) {
        if (this.#state !== 'RUNNING') return undefined;
        if (Date.now() - since > CONSUMER_DEADLINE_MS) throw new Error(`split ${this.#o.partition}: no consumer on stream ${source.stream} for ${CONSUMER_DEADLINE_MS} ms: ${ensureError(e).message}`, { cause: e });
        this.#o.logger.warn({ partition: this.#o.partition, attempt, err: ensureError(e).message }, 'source split consumer not made; trying again');
        const pause = CONSUMER_RETRY_MS[Math.min(attempt, CONSUMER_RETRY_MS.length - 1)];
        await Promise.race([new Promise((r) => setTimeout(r, pause)), this.#stopping.promise]);
      }
    }
  }

  /** How many messages the next consumer pulls ahead ("Pull size"). */
  async #pullMessages(): Promise<number> {
    if (this.#largest === 0) {
      // Nothing read yet: a backlog's first message tells its size. Unknown (none yet, or the
      // stream not answering) is sized as small; a large message then resizes.
      const next = await nextStoredMessage(this.#o.nc, this.#o.source.stream, this.#subject, this.lastSequence).catch(() => null);
      if (next !== null) this.#largest = next.data.length;
    }
    this.#sizedFor = Math.max(PULL_SIZE_FLOOR, this.#largest);
    const budget = this.#o.pullBytes?.() ?? DEFAULT_PULL_BYTES;
    return Math.min(PULL_MESSAGES_MAX, Math.max(PULL_MESSAGES_MIN, Math.floor(budget / this.#sizedFor)));
  }

  /**
   * Stops `messages` when the consumer must be replaced (worker/task/consumer-watch.ts): silent,
   * idle while the stream holds a message the split has not read, or the connection reconnected.
   * Counted in ticks, not time: a tick that comes late because the event loop was busy is one
   * tick, and the I/O that was waiting (heartbeats among it) runs before the next.
   */
  #watchConsumer(messages: ConsumerMessages): { stop(): void; why(): string | undefined } {
    let beats = 0;
    let why: string | undefined;
    let probing = false;
    const watch = new ConsumerWatch(this.lastSequence);
    const replace = (reason: string) => {
      if (why !== undefined) return;
      why = reason;
      stop();
      messages.stop();
    };
    void (async () => {
      for await (const s of messages.status()) if (s.type === 'heartbeat') beats++;
    })().catch(() => undefined);
    const connection = this.#o.nc.status();
    void (async () => {
      for await (const s of connection) if (s.type === 'reconnect') replace(`the NATS connection reconnected (to ${s.server})`);
    })().catch(() => undefined);
    const timer = setInterval(() => {
      const verdict = watch.tick({ beats, sequence: this.lastSequence, pending: messages.getPending(), busy: this.#busy });
      if (verdict.kind === 'silent') replace(`no message and no heartbeat for ${verdict.ticks} heartbeat intervals of ${HEARTBEAT_MS} ms`);
      else if (verdict.kind === 'probe' && !probing) {
        probing = true;
        const from = this.lastSequence;
        unreadMessage(this.#o.nc, this.#o.source.stream, this.#subject, from, 2 * HEARTBEAT_MS)
          .then((unread) => {
            if (unread !== undefined && this.lastSequence === from) replace(`nothing delivered for ${verdict.ticks} heartbeat intervals of ${HEARTBEAT_MS} ms while the stream holds sequence ${unread.seq}, stored ${unread.ageMs} ms ago`);
          })
          // The stream could not be asked (a NATS node down): the next probe asks again.
          .catch(() => undefined)
          .finally(() => (probing = false));
      }
    }, HEARTBEAT_MS);
    timer.unref();
    const stop = () => {
      clearInterval(timer);
      (connection as { stop?: () => void }).stop?.();
    };
    return { stop, why: () => why };
  }

  async #run(messages: ConsumerMessages): Promise<void> {
    const { output, counters, deadLetters, manifest, stageId } = this.#o;
    const source = this.#o.source;
    const stageIndex = manifest.stages.findIndex((st) => st.id === stageId);
    const split = this.#o.partition;
    const skipped = this.#o.skipped;
    for await (const m of messages) {
      if (this.#state !== 'RUNNING') break;
      this.#busy = true;
      const size = m.data.length;
      if (size > this.#largest) {
        this.#largest = size;
        if (size > 2 * this.#sizedFor && this.#resized === undefined) {
          // This message is read; the consumer after it pulls fewer, larger messages.
          this.#resized = `a message of ${size} bytes, over twice the ${this.#sizedFor} its pull was sized for`;
          messages.stop();
        }
      }
      // For the watchdog of an isolated job (worker/call-site.ts): which record holds the thread.
      callSite.sourceRecord(stageIndex, split, m.seq);
      this.lastSequence = m.seq;
      this.lastMessage = m;
      const poison = skipped !== undefined && skipped.size > 0 ? skipped.get(m.seq) : undefined;
      if (m.headers?.get(FRAME_HEADER) === FRAME_FORMAT_NDJSON) {
        // A frame (core/record-frame.ts): its records one after another, synchronously, so that
        // no barrier falls inside it and the frame's sequence stays the position a replay takes up.
        const data = m.data;
        forEachFrameRecord(data, (start, end, index) => {
          const bytes = data.subarray(start, end);
          if (poison !== undefined) {
            // Positions are per message: a poison record takes its frame with it, each record a
            // dead letter of its own (README, "Known limits").
            counters.recordsIn++;
            deadLetters.publish({ stageId: poison.stageId || stageId, reason: `poison record in this frame: failed ${poison.attempts} attempts, frame skipped; last failure: ${poison.reason}`, stack: poison.stack, record: decoder.decode(bytes), source: { stream: source.stream, sequence: m.seq, index } }, counters);
          } else this.#record(bytes, undefined, m, index);
        });
      } else if (poison !== undefined) {
        // A poison record (docs/ARCHITECTURE.md, "Poison records"): every worker that reads this
        // position skips it, since the decision is part of the job record.
        counters.recordsIn++;
        deadLetters.publish({ stageId: poison.stageId || stageId, reason: `poison record: failed ${poison.attempts} attempts, skipped; last failure: ${poison.reason}`, stack: poison.stack, record: m.string(), source: { stream: source.stream, sequence: m.seq } }, counters);
      } else this.#record(m.data, m.string(), m, undefined);
      // Backpressure: stop pulling while the channel windows are full.
      if (output.sender?.blocked) await output.sender.whenWritable();
      const sinksFull = output.checkSinks();
      if (sinksFull) await sinksFull;
      betweenBatches();
      this.#busy = false;
    }
    output.sender?.flush();
    await output.flushSinks();
  }

  /**
   * One source record: decoded, given its event time, and emitted through the stage's operators.
   * `index` is its line in a frame (undefined: the message is the record).
   */
  #record(data: Uint8Array, raw: string | undefined, m: JsMsg, index: number | undefined): void {
    const { output, counters, deadLetters, stageId } = this.#o;
    const policy = this.#o.errorPolicy;
    const split = this.#o.partition;
    counters.recordsIn++;
    const text = raw ?? decoder.decode(data);
    const decoded = decodeJsonRecord(data, text);
    if (!decoded.ok) {
      // The raw payload, not a value: a refused record may be too deep to serialise again.
      deadLetters.publish({ stageId, reason: decoded.reason, record: text, source: this.#position(m, index) }, counters);
      return;
    }
    const value = decoded.value;
    // Event time: the job's timestamp assigner (which also drives watermarks; a record it
    // refuses is a dead letter), else the field the job names, else the time JetStream stored
    // the message. Each is the same on a replay, so feature versions and metadata are too.
    let timestamp = Math.floor(Number(m.info.timestampNanos) / 1e6);
    if (this.#o.timestampOf !== undefined) {
      const assigned = this.#timestamp(value);
      if (typeof assigned === 'string') {
        deadLetters.publish({ stageId, reason: assigned, record: value, source: this.#position(m, index) }, counters);
        return;
      }
      timestamp = assigned;
      if (timestamp > this.#maxEventTimeMs) this.#maxEventTimeMs = timestamp;
      this.#watermarks?.onRecord(timestamp);
    } else if (this.#o.source.timestampField !== undefined) {
      const timestampField = this.#o.source.timestampField;
      const t = (value as Record<string, unknown> | null)?.[timestampField];
      if (typeof t === 'number') {
        // A number that is no possible time is a bad record, not a reason to use another clock.
        const problem = eventTimeProblem(t, `event time field ${timestampField}`);
        if (problem !== undefined) {
          deadLetters.publish({ stageId, reason: problem, record: value, source: this.#position(m, index) }, counters);
          return;
        }
        timestamp = t;
      }
    }
    output.setOrigin(encodeOrigin(split, m.seq));
    try {
      // Under "dead-letter" a record is all-or-nothing: a throw anywhere in the operator tree
      // (a flatMap's second output, a sink's encoding) leaves none of its output behind.
      if (policy.atomicRecords) output.atomically(() => output.emit(value, timestamp));
      else output.emit(value, timestamp);
    } catch (e) {
      if (e instanceof UserFunctionError) e.sourcePosition ??= { split, sequence: m.seq };
      if (!(e instanceof UserFunctionError) || policy.fails) throw e;
      policy.deadLetter(e, value, -1, this.#position(m, index));
    }
  }

  /** Where a record came from: built for a dead letter only, not for every record. */
  #position(m: JsMsg, index: number | undefined): SourcePosition {
    const stream = this.#o.source.stream;
    return index === undefined ? { stream, sequence: m.seq } : { stream, sequence: m.seq, index };
  }

  /** The record's event time, or why it has none (a bad record). */
  #timestamp(value: unknown): number | string {
    let ts: unknown;
    try {
      ts = this.#o.timestampOf!(value);
    } catch (e) {
      return `timestamp assigner threw: ${ensureError(e).message}`;
    }
    const problem = eventTimeProblem(ts, 'the timestamp assigner\'s result');
    if (problem !== undefined) return problem;
    if (!Number.isSafeInteger(ts)) return `the timestamp assigner returned ${String(ts)}, not an integer (ms since the epoch)`;
    return ts as number;
  }

  // Watermarks go out on a clock, between messages (the read loop emits each message
  // synchronously, so a watermark never splits one), after every record sent before them.
  #startWatermarks(): void {
    const spec = this.#o.source.eventTime;
    if (spec === undefined || this.#o.timestampOf === undefined || !this.#o.output.sender) return;
    const output = this.#o.output;
    const { generator, timer } = startSplitWatermarks(spec, this.#maxEventTimeMs, (wm, idle) => output.watermark(wm, idle), () => this.#state === 'RUNNING', (e) => this.#fail(e));
    this.#watermarks = generator;
    this.#watermarkTimer = timer;
  }

  #fail(error: Error): void {
    if (this.#state === 'STOPPED' || this.#state === 'FAILED') return;
    clearInterval(this.#watermarkTimer);
    this.#state = 'FAILED';
    this.#stopping.resolve(undefined);
    this.#messages?.stop();
    this.#o.onFailure(error);
  }

  /**
   * Cuts checkpoint N at this split: everything read so far is before the barrier. Safe at any
   * callback: the read loop emits a message synchronously, so no message is half-processed.
   * Returns the stream sequence to resume from after a restore to N, and the stage's
   * exactly-once output before the barrier (a promise while an asyncMap still holds records
   * read before it: the barrier goes out after them).
   */
  injectBarrier(checkpointId: number): { nextSequence: number; maxEventTimeMs: number; output: CheckpointOutput[] | Promise<CheckpointOutput[]> } {
    return { nextSequence: this.lastSequence + 1, maxEventTimeMs: this.#maxEventTimeMs, output: this.#o.output.barrier(checkpointId) };
  }

  /**
   * Sends the split's current watermark again, after the barrier of a checkpoint that moves key
   * groups: their new owners start every channel at -Infinity, and a split that reads nothing
   * more would otherwise never tell them (their windows would wait for new input).
   */
  resendWatermark(): void {
    const last = this.#watermarks?.lastSent();
    if (last === undefined || this.#state !== 'RUNNING') return;
    this.#o.output.watermark(last.watermark, last.idle);
  }

  get partition(): number {
    return this.#o.partition;
  }

  /**
   * Stops reading at once, synchronously: called right after injectBarrier when the split is
   * handed over, so that nothing after the barrier is read here.
   */
  halt(): void {
    if (this.#state === 'RUNNING' || this.#state === 'CREATED') this.#state = 'STOPPED';
    this.#stopping.resolve(undefined);
    this.#messages?.stop();
  }

  async stop(): Promise<void> {
    if (this.#state === 'RUNNING' || this.#state === 'CREATED') this.#state = 'STOPPED';
    this.#stopping.resolve(undefined);
    clearInterval(this.#watermarkTimer);
    this.#messages?.stop();
    await this.#loop;
  }
}

/** A promise resolved (with undefined) by a call, for racing waits against a stop. */
function stopSignal(): { promise: Promise<undefined>; resolve(value: undefined): void } {
  let resolve!: (value: undefined) => void;
  const promise = new Promise<undefined>((r) => (resolve = r));
  return { promise, resolve };
}
