// Sinks: JetStream subjects, exactly-once or at-least-once, and plain NATS subjects
// (docs/ARCHITECTURE.md, "Sources and sinks").
//
// Exactly-once output is buffered per checkpoint: what a task emits between barrier N-1 and
// barrier N is part of checkpoint N, uploaded with its state, and published by the
// coordinator once N completes, with deterministic Nats-Msg-Ids so a repeated publish (after a
// coordinator crash) is deduplicated by the stream.
import type { NatsConnection } from '@nats-io/transport-node';
import { SUBJECT, type SinkSpec } from '../../core/manifest.ts';
import { BulkPublisher } from '../../core/jetstream-publisher.ts';
import { FileSink, type FilePart } from './file-sink.ts';

export type { FilePart };
import { InvalidArgumentError } from '../../core/errors.ts';

export interface Sink {
  /** timestampMs: the record's event time when it has one (files sinks partition by it). */
  write(value: unknown, timestampMs?: number): void;
  /**
   * write() in two steps, for records that are all-or-nothing (worker/task/held-output.ts): prepare
   * encodes and throws whatever write would throw for this record, writing nothing; commit
   * writes what prepare returned.
   */
  prepare(value: unknown, timestampMs?: number): unknown;
  commit(prepared: unknown): void;
  /** Resolves when everything written so far is durable where the sink promises it. */
  flush(): Promise<void>;
  /** Writes not yet confirmed. */
  readonly pending: number;
  /** The first failure of an asynchronous write, if any. */
  readonly failure: Error | undefined;
  close(): void;
}

/** Output held for a checkpoint: a message (subject and JSON payload) or a files-sink part. */
export type CheckpointOutput = { subject: string; data: string } | FilePart;


export function isFilePart(o: CheckpointOutput): o is FilePart {
  return (o as Partial<FilePart>).file !== undefined;
}

export interface ExactlyOnceSink extends Sink {
  readonly exactlyOnce: true;
  /** Takes what was written since the last call: the output of checkpoint `checkpointId`, being cut. */
  take(checkpointId: number): CheckpointOutput[];
}

export function isExactlyOnce(sink: Sink): sink is ExactlyOnceSink {
  return (sink as Partial<ExactlyOnceSink>).exactlyOnce === true;
}

const encoder = new TextEncoder();

/** Where a record goes and what is sent: a fixed subject, or one the record names (routed sinks). */
type Address = (value: unknown) => { subject: string; data: string };

const toSubject = (subject: string): Address => (value) => ({ subject, data: JSON.stringify(value) });

/** At-least-once: published at once. */
class JetStreamSink implements Sink {
  // One shared-inbox publisher instead of js.publish(): js.publish builds a promise and Error
  // objects per message and caps out near 25–29 k msg/s (docs/STACK-NOTES.md).
  readonly #publisher: BulkPublisher;
  readonly #address: Address;

  constructor(nc: NatsConnection, address: Address) {
    this.#publisher = new BulkPublisher(nc);
    this.#address = address;
  }

  get pending(): number {
    return this.#publisher.outstanding;
  }

  get failure(): Error | undefined {
    return this.#publisher.failure;
  }

  write(value: unknown): void {
    // Straight through: no prepared object per record on the at-least-once path.
    const { subject, data } = this.#address(value);
    this.#publisher.publishNow(subject, encoder.encode(data));
  }

  prepare(value: unknown): unknown {
    const { subject, data } = this.#address(value);
    return { subject, bytes: encoder.encode(data) };
  }

  commit(prepared: unknown): void {
    const { subject, bytes } = prepared as { subject: string; bytes: Uint8Array };
    this.#publisher.publishNow(subject, bytes);
  }

  flush(): Promise<void> {
    return this.#publisher.flush();
  }

  close(): void {
    this.#publisher.close();
  }
}

/** Exactly-once: held per checkpoint (CheckpointOutput carries each record's subject). */
class BufferedJetStreamSink implements ExactlyOnceSink {
  readonly exactlyOnce = true;
  readonly pending = 0;
  readonly failure = undefined;
  readonly #address: Address;
  #buffer: CheckpointOutput[] = [];

  constructor(address: Address) {
    this.#address = address;
  }

  write(value: unknown): void {
    this.#buffer.push(this.#address(value));
  }

  prepare(value: unknown): unknown {
    return this.#address(value);
  }

  commit(prepared: unknown): void {
    this.#buffer.push(prepared as CheckpointOutput);
  }

  take(): CheckpointOutput[] {
    const out = this.#buffer;
    this.#buffer = [];
    return out;
  }

  async flush(): Promise<void> {}
  close(): void {}
}

class NatsSubjectSink implements Sink {
  readonly #nc: NatsConnection;
  readonly #subject: string;
  readonly pending = 0;
  readonly failure = undefined;
  constructor(nc: NatsConnection, subject: string) {
    this.#nc = nc;
    this.#subject = subject;
  }
  write(value: unknown): void {
    this.#nc.publish(this.#subject, encoder.encode(JSON.stringify(value)));
  }
  prepare(value: unknown): unknown {
    return encoder.encode(JSON.stringify(value));
  }
  commit(prepared: unknown): void {
    this.#nc.publish(this.#subject, prepared as Uint8Array);
  }
  async flush(): Promise<void> {}
  close(): void {}
}

/**
 * task: names the writing task in files-sink part names (unique per stage and checkpoint across
 * the job: the stage with the worker or the source split).
 */
export function openSinks(nc: NatsConnection, specs: readonly SinkSpec[], task = 'task'): Sink[] {
  return specs.map((s) => {
    if (s.kind === 'nats') return new NatsSubjectSink(nc, s.subject);
    if (s.kind === 'files') return new FileSink(s, task);
    const address = s.kind === 'jetstream-routed' ? toRoutedSubject(s.subjectPrefix) : toSubject(s.subject);
    return s.delivery === 'at-least-once' ? new JetStreamSink(nc, address) : new BufferedJetStreamSink(address);
  });
}

/** Bound on unconfirmed sink writes before a task waits for the stream. */
export const MAX_PENDING_SINK_WRITES = 4096;

/** What a stage writes to a 'jetstream-routed' sink. */
export interface RoutedRecord {
  /** Subject under the sink's prefix: plain tokens, no wildcards. */
  subject: string;
  value: unknown;
}

/**
 * The subject of a routed record: `<subjectPrefix>.<record.subject>`, always under the stream's
 * `<subjectPrefix>.>` because the suffix is checked to be plain tokens.
 */
const toRoutedSubject = (prefix: string): Address => (record) => {
  const r = record as Partial<RoutedRecord> | null;
  if (typeof r !== 'object' || r === null || typeof r.subject !== 'string' || !SUBJECT.test(r.subject)) {
    throw new InvalidArgumentError(`a routed sink record must be { subject, value } with subject tokens under ${prefix}, got subject ${JSON.stringify(r?.subject)}`);
  }
  return { subject: `${prefix}.${r.subject}`, data: JSON.stringify(r.value ?? null) };
};
