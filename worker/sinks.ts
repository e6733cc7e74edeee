// Sinks of this version: JetStream subjects (at-least-once: published as records are emitted;
// the stream's acknowledgements are counted asynchronously, and a refused or unacknowledged
// publish fails the job) and plain NATS subjects. Exactly-once JetStream output arrives with
// checkpoints.
import type { NatsConnection } from '@nats-io/transport-node';
import type { SinkSpec } from '../core/manifest.ts';
import { BulkPublisher } from '../core/jetstream-publisher.ts';

export interface Sink {
  write(value: unknown): void;
  /** Resolves when everything written so far is durable where the sink promises it. */
  flush(): Promise<void>;
  /** Writes not yet confirmed. */
  readonly pending: number;
  /** The first failure of an asynchronous write, if any. */
  readonly failure: Error | undefined;
  close(): void;
}

const encoder = new TextEncoder();

class JetStreamSink implements Sink {
  // One shared-inbox publisher instead of js.publish(): js.publish builds a promise and Error
  // objects per message and caps out near 25–29 k msg/s (STACK-NOTES.md).
  readonly #publisher: BulkPublisher;
  readonly #subject: string;

  constructor(nc: NatsConnection, subject: string) {
    this.#publisher = new BulkPublisher(nc);
    this.#subject = subject;
  }

  get pending(): number {
    return this.#publisher.outstanding;
  }

  get failure(): Error | undefined {
    return this.#publisher.failure;
  }

  write(value: unknown): void {
    this.#publisher.publishNow(this.#subject, encoder.encode(JSON.stringify(value)));
  }

  flush(): Promise<void> {
    return this.#publisher.flush();
  }

  close(): void {
    this.#publisher.close();
  }
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
  async flush(): Promise<void> {}
  close(): void {}
}

export function openSinks(nc: NatsConnection, specs: readonly SinkSpec[]): Sink[] {
  return specs.map((s) => (s.kind === 'jetstream' ? new JetStreamSink(nc, s.subject) : new NatsSubjectSink(nc, s.subject)));
}

/** Bound on unconfirmed sink writes before a task waits for the stream. */
export const MAX_PENDING_SINK_WRITES = 4096;
