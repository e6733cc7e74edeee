// Publishing many messages into JetStream quickly. js.publish() builds a request, a promise and
// (per docs/STACK-NOTES.md) Error objects for every message, which caps a client at ~25–29 k msg/s
// with many outstanding. Here each message is a plain core publish whose reply subject is a token
// under one shared inbox; the stream's acknowledgements arrive on one subscription and are only
// counted (parsed only when one is not a plain ack).
import { type MsgHdrs, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { connectionInbox } from './nats-connect.ts';

/** No acknowledgement at all for this long while publishes are outstanding: the stream is gone. */
export const DEFAULT_ACK_TIMEOUT_MS = 10_000;
const PROGRESS_CHECK_INTERVAL_MS = 500;
/** A JetStream ack starts with `{"stream"`: byte 2 is the `s`. */
const ACK_MARKER = 0x73;

export interface BulkPublisherOptions {
  /** Publishes awaiting acknowledgement at most. @default 1000 */
  window?: number;
  /** @default 10000 */
  ackTimeoutMs?: number;
  /** Called as acknowledgements arrive, with the count acknowledged so far. */
  onAck?: (acknowledged: number) => void;
}

export class JetStreamPublishError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JetStreamPublishError';
  }
}

export class BulkPublisher implements Disposable {
  readonly #nc: NatsConnection;
  readonly #inbox: string;
  readonly #sub: Subscription;
  readonly #window: number;
  readonly #ackTimeoutMs: number;
  readonly #onAck: ((acknowledged: number) => void) | undefined;
  readonly #progressTimer: NodeJS.Timeout;
  #next = 0;
  #outstanding = 0;
  #acknowledged = 0;
  #failure: Error | undefined;
  #lastAckAt = Date.now();
  /** Waiters, each woken once outstanding falls to its mark (hysteresis: not once per ack). */
  #waiters: Array<{ at: number; wake: () => void }> = [];

  constructor(nc: NatsConnection, options: BulkPublisherOptions = {}) {
    this.#nc = nc;
    this.#window = Math.max(1, options.window ?? 1_000);
    this.#ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    this.#onAck = options.onAck;
    this.#inbox = connectionInbox(nc);
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (err, msg) => this.#onReply(err, msg) });
    // A lost acknowledgement must not hang the publisher.
    this.#progressTimer = setInterval(() => {
      if (this.#outstanding > 0 && Date.now() - this.#lastAckAt > this.#ackTimeoutMs) {
        this.#fail(new JetStreamPublishError(`no acknowledgement from JetStream for ${this.#ackTimeoutMs} ms (${this.#outstanding} publishes outstanding)`));
      }
    }, PROGRESS_CHECK_INTERVAL_MS);
    this.#progressTimer.unref();
  }

  get acknowledged(): number {
    return this.#acknowledged;
  }

  /** Publishes one message; while the window is full it first waits for half of it to drain. */
  async publish(subject: string, payload: Uint8Array, headers?: MsgHdrs): Promise<void> {
    if (this.#outstanding >= this.#window) await this.#waitUntil(this.#window >> 1);
    this.publishNow(subject, payload, headers);
  }

  /**
   * Publishes without waiting for window room: for callers that bound their own output (a
   * stage's batch) and flush at their own boundaries. Throws the first failure seen so far.
   */
  publishNow(subject: string, payload: Uint8Array, headers?: MsgHdrs): void {
    if (this.#failure) throw this.#failure;
    this.#outstanding++;
    this.#nc.publish(subject, payload, { reply: `${this.#inbox}.${this.#next++}`, ...(headers ? { headers } : {}) });
  }

  get outstanding(): number {
    return this.#outstanding;
  }

  /** The first failure, if any publish failed. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Resolves once every publish is acknowledged; throws the first failure. */
  async flush(): Promise<void> {
    await this.#waitUntil(0);
    if (this.#failure) throw this.#failure;
  }

  close(): void {
    clearInterval(this.#progressTimer);
    this.#sub.unsubscribe();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #waitUntil(outstanding: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#outstanding <= outstanding) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiters.push({ at: outstanding, wake: resolve }));
  }

  #fail(e: Error): void {
    this.#failure ??= e;
    for (const w of this.#waiters.splice(0)) w.wake();
  }

  #wakeWaiters(): void {
    const still: Array<{ at: number; wake: () => void }> = [];
    for (const w of this.#waiters) {
      if (this.#outstanding <= w.at) w.wake();
      else still.push(w);
    }
    this.#waiters = still;
  }

  #onReply(err: Error | null, msg: Msg): void {
    this.#outstanding--;
    this.#lastAckAt = Date.now();
    if (err) {
      this.#fail(err);
    } else if (msg.headers?.hasError) {
      this.#fail(new JetStreamPublishError(msg.headers.code === 503 ? 'no stream accepts the subject (503 no responders)' : `${msg.headers.code} ${msg.headers.description}`));
    } else if (msg.data[2] !== ACK_MARKER) {
      const reply = msg.json<{ error?: { description?: string } }>();
      if (reply.error) this.#fail(new JetStreamPublishError(`JetStream refused a message: ${reply.error.description ?? msg.string()}`));
      else this.#acknowledge();
    } else {
      this.#acknowledge();
    }
    if (this.#waiters.length > 0) this.#wakeWaiters();
  }

  #acknowledge(): void {
    this.#acknowledged++;
    this.#onAck?.(this.#acknowledged);
  }
}
