import type { SinkSpec } from '../core/manifest.ts';

export type { SinkSpec };

/**
 * A JetStream subject; the stream is created when the job is submitted if it does not exist.
 * Exactly-once by default: output appears when the checkpoint that produced it completes
 * (about one checkpoint interval later). `delivery: 'at-least-once'` publishes immediately.
 */
export function jetstream(subject: string, options: { stream: string; delivery?: 'exactly-once' | 'at-least-once' }): SinkSpec {
  return { kind: 'jetstream', subject, stream: options.stream, ...(options.delivery ? { delivery: options.delivery } : {}) };
}

/** A plain NATS subject: lowest latency, no persistence. */
export function natsSubject(subject: string): SinkSpec {
  return { kind: 'nats', subject };
}

export interface FilesOptions {
  /** Close a part once it holds this many bytes. @default 134217728 (128 MiB) */
  rollSizeBytes?: number;
  /**
   * Close a part this long after its first record. Every checkpoint closes the open parts too, so
   * a part never holds more than one checkpoint interval. @default 60000
   */
  rollIntervalMs?: number;
  /** A directory per UTC day (`dt=2026-11-22`) or hour (`dt=2026-11-22/hr=09`) of the record's event time. @default 'day' */
  partitionBy?: 'none' | 'day' | 'hour';
}

/**
 * NDJSON part files in the job's object store (S3 or file://), under `path` relative to the
 * store's root. Exactly-once: a part appears at its final name only once the checkpoint that
 * wrote it completes; what was written after the last completed checkpoint is discarded on
 * recovery and written again from the replayed input.
 */
export function files(path: string, options: FilesOptions = {}): SinkSpec {
  return {
    kind: 'files',
    path: path.replace(/\/+$/, ''),
    format: 'ndjson',
    rollSizeBytes: options.rollSizeBytes ?? 128 * 1024 * 1024,
    rollIntervalMs: options.rollIntervalMs ?? 60_000,
    partitionBy: options.partitionBy ?? 'day',
  };
}

/**
 * JetStream with the subject chosen per record: write `{ subject, value }` (RoutedRecord) and
 * `value` goes to `<subjectPrefix>.<subject>`. The stream is created over `<subjectPrefix>.>`
 * (an existing stream must take exactly that); deliveries as for jetstream().
 */
export function jetstreamRouted(subjectPrefix: string, options: { stream: string; delivery?: 'exactly-once' | 'at-least-once' }): SinkSpec {
  return { kind: 'jetstream-routed', subjectPrefix, stream: options.stream, ...(options.delivery ? { delivery: options.delivery } : {}) };
}

/** What a stage writes to a jetstreamRouted sink. */
export interface RoutedRecord<T = unknown> {
  /** Subject tokens under the sink's prefix (no wildcards). */
  subject: string;
  value: T;
}
