// Sinks of this version: JetStream subjects (at-least-once: published as records are emitted,
// acknowledged by the stream before the input batch that caused them is acknowledged) and plain
// NATS subjects. Exactly-once JetStream output arrives with checkpoints.
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import type { SinkSpec } from '../core/manifest.ts';

export interface Sink {
  write(value: unknown): void;
  /** Resolves when everything written so far is durable where the sink promises it. */
  flush(): Promise<void>;
  readonly pending: number;
}

const encoder = new TextEncoder();

class JetStreamSink implements Sink {
  readonly #js: JetStreamClient;
  readonly #subject: string;
  #inflight: Array<Promise<PubAck>> = [];

  constructor(js: JetStreamClient, subject: string) {
    this.#js = js;
    this.#subject = subject;
  }

  get pending(): number {
    return this.#inflight.length;
  }

  write(value: unknown): void {
    this.#inflight.push(this.#js.publish(this.#subject, encoder.encode(JSON.stringify(value))));
  }

  async flush(): Promise<void> {
    if (this.#inflight.length === 0) return;
    const batch = this.#inflight;
    this.#inflight = [];
    await Promise.all(batch);
  }
}

class NatsSubjectSink implements Sink {
  readonly #nc: NatsConnection;
  readonly #subject: string;
  constructor(nc: NatsConnection, subject: string) {
    this.#nc = nc;
    this.#subject = subject;
  }
  readonly pending = 0;
  write(value: unknown): void {
    this.#nc.publish(this.#subject, JSON.stringify(value));
  }
  async flush(): Promise<void> {}
}

export function openSinks(nc: NatsConnection, specs: readonly SinkSpec[]): Sink[] {
  const js = jetstream(nc);
  return specs.map((s) => (s.kind === 'jetstream' ? new JetStreamSink(js, s.subject) : new NatsSubjectSink(nc, s.subject)));
}
