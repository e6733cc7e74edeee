// Channel batches and acknowledgements of one NATS connection, published together once per
// turn of the event loop.
//
// nats.js writes its outbound buffer to the socket in a microtask after the first publish of a
// macrotask. A keyed stage acknowledges each batch after running it, and running a batch often
// awaits RocksDB, so its acknowledgement is published from a macrotask of its own: one socket
// write per batch, and watermarks and barriers go to every key group. Measured on a sliding-window
// job (Nexmark q5, one worker), those writes were the largest single cost, 15.6 % of the worker's
// CPU (docs/BENCHMARKS.md). Here publishes wait for the check phase of the loop (setImmediate),
// after the I/O callbacks of the turn have run, and go out in one macrotask: one socket write.
//
// Order: publishes through one batcher keep their order, and every channel batch and
// acknowledgement goes through the connection's batcher (publishBatcher), so a channel's batches
// stay in sequence. Control messages published directly may overtake them by one loop turn; none
// depends on the order (barriers are in-band, acknowledged per channel).
import type { NatsConnection } from '@nats-io/transport-node';

export class PublishBatcher {
  readonly #nc: NatsConnection;
  /** subject, data, reply (or undefined), three entries a publish. */
  readonly #queue: Array<string | Uint8Array | undefined> = [];
  /** Run at the start of the next flush, to publish what they gathered over the turn. */
  #beforeFlush: Array<() => void> = [];
  #scheduled = false;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
  }

  /** Publishes that a connection closing or draining in the meantime refused (lost with it). */
  lostOnClose = 0;

  /** Throws at once what the connection's publish would (closed, draining, over max_payload). */
  publish(subject: string, data: Uint8Array, reply?: string): void {
    const nc = this.#nc;
    if (nc.isClosed() || nc.isDraining()) throw new Error(`cannot publish to ${subject}: the NATS connection is ${nc.isClosed() ? 'closed' : 'draining'}`);
    const max = nc.info?.max_payload;
    if (max !== undefined && data.length > max) throw new RangeError(`a message of ${data.length} bytes to ${subject} is over the server's max_payload of ${max}`);
    this.#queue.push(subject, data, reply);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  /**
   * Runs `gather` once at the start of the next flush, before the queued publishes go out, so
   * that what it publishes leaves in the same socket write: a receiver coalesces a turn's
   * acknowledgements this way (channel-receiver.ts). `gather` must not throw.
   */
  beforeFlush(gather: () => void): void {
    this.#beforeFlush.push(gather);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    // Still scheduled while the gatherers run: their publishes join this flush.
    if (this.#beforeFlush.length > 0) {
      const gatherers = this.#beforeFlush;
      this.#beforeFlush = [];
      for (const gather of gatherers) gather();
    }
    this.#scheduled = false;
    const q = this.#queue;
    try {
      for (let i = 0; i < q.length; i += 3) {
        const reply = q[i + 2] as string | undefined;
        this.#nc.publish(q[i] as string, q[i + 1] as Uint8Array, reply === undefined ? undefined : { reply });
      }
    } catch {
      // The connection closed or began draining since these were queued (publish() checked the
      // rest): they are lost with it, as its own unflushed buffer would be. The channel protocol
      // notices (a sequence gap or an acknowledgement time-out), and the process is stopping.
      this.lostOnClose++;
    }
    q.length = 0;
  };
}

const batchers = new WeakMap<NatsConnection, PublishBatcher>();

/** The batcher of a connection: one per connection, so that all its channel traffic keeps one order. */
export function publishBatcher(nc: NatsConnection): PublishBatcher {
  let b = batchers.get(nc);
  if (b === undefined) batchers.set(nc, (b = new PublishBatcher(nc)));
  return b;
}
