// Request-reply for feature queries over one shared inbox subscription. nc.request() builds Error
// objects (with stacks) for every request whether it fails or not, which the Get profile showed
// among the coordinator's top costs; here a request is a publish with a reply subject and a timer.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { connectionInbox } from '../core/nats-connect.ts';

/** unavailable: nobody answered in time (timedOut), or nobody is subscribed (no responders). */
export type QueryOutcome = { kind: 'reply'; data: Uint8Array } | { kind: 'unavailable'; reason: string; timedOut: boolean };

interface Pending {
  resolve: (outcome: QueryOutcome) => void;
  timer: NodeJS.Timeout;
  /** Why a reply is not the one asked for (a forgery), or undefined to accept it. */
  check?: (data: Uint8Array) => string | undefined;
}

const NO_RESPONDERS = 503;

export class QueryRequester {
  readonly #nc: NatsConnection;
  // Under the connection's own inbox prefix: the only role allowed to read replies there.
  readonly #prefix: string;
  readonly #pending = new Map<string, Pending>();
  #sub: Subscription | undefined;
  #next = 0;

  readonly #onRejected: (subject: string, reason: string) => void;

  constructor(nc: NatsConnection, onRejected: (subject: string, reason: string) => void = () => {}) {
    this.#nc = nc;
    this.#onRejected = onRejected;
    this.#prefix = connectionInbox(nc);
  }

  /**
   * Resolves with the reply, or "unavailable" on no responder or time-out; never rejects. A reply
   * `check` refuses is dropped (and reported) and the request keeps waiting: a forged reply that
   * arrives first does not win, and does not keep the owner's answer out either.
   */
  request(subject: string, data: Uint8Array, timeoutMs: number, check?: (data: Uint8Array) => string | undefined): Promise<QueryOutcome> {
    this.#sub ??= this.#nc.subscribe(`${this.#prefix}.*`, { callback: (_err, msg) => this.#onReply(msg.subject, msg.data, msg.headers?.code ?? 0) });
    const token = (this.#next++).toString(36);
    return new Promise<QueryOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(token);
        resolve({ kind: 'unavailable', reason: `no answer within ${timeoutMs} ms`, timedOut: true });
      }, timeoutMs);
      this.#pending.set(token, { resolve, timer, ...(check ? { check } : {}) });
      try {
        this.#nc.publish(subject, data, { reply: `${this.#prefix}.${token}` });
      } catch (e) {
        clearTimeout(timer);
        this.#pending.delete(token);
        resolve({ kind: 'unavailable', reason: e instanceof Error ? e.message : String(e), timedOut: false });
      }
    });
  }

  #onReply(subject: string, data: Uint8Array, statusCode: number): void {
    const token = subject.slice(this.#prefix.length + 1);
    const pending = this.#pending.get(token);
    if (pending === undefined) return; // timed out already
    if (statusCode !== NO_RESPONDERS && pending.check) {
      let refused: string | undefined;
      try {
        refused = pending.check(data);
      } catch (e) {
        refused = `undecodable reply: ${e instanceof Error ? e.message : String(e)}`;
      }
      if (refused !== undefined) {
        this.#onRejected(subject, refused);
        return;
      }
    }
    this.#pending.delete(token);
    clearTimeout(pending.timer);
    // The server answers a request nobody is subscribed to with an empty 503 status message.
    if (statusCode === NO_RESPONDERS) pending.resolve({ kind: 'unavailable', reason: 'no responders: the key group has no owner right now', timedOut: false });
    else pending.resolve({ kind: 'reply', data });
  }

  close(): void {
    this.#sub?.unsubscribe();
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
  }
}
