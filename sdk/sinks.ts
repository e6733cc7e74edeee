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
