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
