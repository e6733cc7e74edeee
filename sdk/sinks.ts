import type { SinkSpec } from '../core/manifest.ts';

export type { SinkSpec };

/** A JetStream subject; the stream is created when the job is submitted if it does not exist. */
export function jetstream(subject: string, options: { stream: string }): SinkSpec {
  return { kind: 'jetstream', subject, stream: options.stream };
}

/** A plain NATS subject: lowest latency, no persistence. */
export function natsSubject(subject: string): SinkSpec {
  return { kind: 'nats', subject };
}
