// Where a job's query responder (query-responder.ts) takes its NATS requests: the feature queries
// the coordinator routes to a key group's owner, and watch registrations.
//
// A job in the worker's thread subscribes on the worker's connection (natsInbox). A job in a
// thread of its own (worker/isolated-job.ts) does not read them on its own connection: under a
// backlog its event loop turns only every 100-250 ms, and a routed read waited that long for its
// socket to be read (docs/BENCHMARKS.md). Instead the worker's thread holds the subscriptions
// (InboxRelay) and hands each request over on the job's query port, which the job's thread also
// reads between batches (worker/task/between-batches.ts); the reply comes back on the same port
// and the worker's thread publishes it.
import type { MessagePort } from 'node:worker_threads';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';

/** One request: its payload, and how to answer it (nothing happens when it asked for no reply). */
export interface InboxMessage {
  readonly data: Uint8Array;
  respond(data: Uint8Array): void;
}

export interface InboxSubscription {
  unsubscribe(): void;
  /** Stops taking requests, but answers those already delivered. */
  drain(): void;
}

export interface QueryInbox {
  subscribe(subject: string, handle: (msg: InboxMessage) => void): InboxSubscription;
}

/** Subscriptions on a connection of this thread. */
export function natsInbox(nc: NatsConnection): QueryInbox {
  return {
    subscribe(subject, handle) {
      const sub = nc.subscribe(subject, { callback: (err, msg) => { if (err === null) handle(msg); } });
      return { unsubscribe: () => sub.unsubscribe(), drain: () => void sub.drain().catch(() => undefined) };
    },
  };
}

/** Job's thread → worker's thread, on the query port. */
export type FromInbox =
  | { kind: 'subscribe'; sid: number; subject: string }
  | { kind: 'unsubscribe'; sid: number; drain: boolean }
  | { kind: 'respond'; reply: string; data: Uint8Array };

/** Worker's thread → job's thread, on the query port. `drained`: nothing more comes for sid. */
export type ToInbox = { kind: 'request'; sid: number; data: Uint8Array; reply: string } | { kind: 'drained'; sid: number };

/**
 * A fresh copy of bytes that may view a larger buffer, and the buffer to transfer with it. Not
 * data.slice(): a Buffer's slice is a view, and transferring its buffer would take the
 * connection's read buffer away from it.
 */
function own(data: Uint8Array): [Uint8Array, ArrayBuffer[]] {
  const copy = new Uint8Array(data);
  return [copy, [copy.buffer as ArrayBuffer]];
}

/** The job thread's side: subscriptions held by the worker's thread, requests taken off `port`. */
export class RelayedInbox implements QueryInbox {
  readonly #port: MessagePort;
  readonly #handlers = new Map<number, (msg: InboxMessage) => void>();
  #nextSid = 1;

  constructor(port: MessagePort) {
    this.#port = port;
  }

  subscribe(subject: string, handle: (msg: InboxMessage) => void): InboxSubscription {
    const sid = this.#nextSid++;
    this.#handlers.set(sid, handle);
    this.#post({ kind: 'subscribe', sid, subject });
    return {
      unsubscribe: () => {
        this.#handlers.delete(sid);
        this.#post({ kind: 'unsubscribe', sid, drain: false });
      },
      // The handler stays until the worker's thread says the requests delivered before are all here.
      drain: () => this.#post({ kind: 'unsubscribe', sid, drain: true }),
    };
  }

  /** A message of the query port for this inbox (the port also carries direct reads). */
  onMessage(m: ToInbox): void {
    if (m.kind === 'drained') {
      this.#handlers.delete(m.sid);
      return;
    }
    const reply = m.reply;
    this.#handlers.get(m.sid)?.({
      data: m.data,
      respond: (data) => {
        if (reply === '') return;
        const [copy, transfer] = own(data);
        this.#post({ kind: 'respond', reply, data: copy }, transfer);
      },
    });
  }

  #post(m: FromInbox, transfer: ArrayBuffer[] = []): void {
    this.#port.postMessage(m, transfer);
  }
}

/** The worker thread's side: subscribes for the job's thread and publishes its replies. */
export class InboxRelay {
  readonly #nc: NatsConnection;
  readonly #port: MessagePort;
  readonly #subs = new Map<number, Subscription>();
  #closed = false;

  constructor(nc: NatsConnection, port: MessagePort) {
    this.#nc = nc;
    this.#port = port;
  }

  onMessage(m: FromInbox): void {
    if (this.#closed) return;
    switch (m.kind) {
      case 'subscribe': {
        const sid = m.sid;
        const sub = this.#nc.subscribe(m.subject, {
          callback: (err, msg) => {
            if (err !== null || this.#closed) return;
            const [data, transfer] = own(msg.data);
            this.#port.postMessage({ kind: 'request', sid, data, reply: msg.reply ?? '' } satisfies ToInbox, transfer);
          },
        });
        this.#subs.set(sid, sub);
        return;
      }
      case 'unsubscribe': {
        const sub = this.#subs.get(m.sid);
        this.#subs.delete(m.sid);
        if (sub === undefined) return;
        if (!m.drain) return sub.unsubscribe();
        void sub.drain().catch(() => undefined).then(() => {
          if (!this.#closed) this.#port.postMessage({ kind: 'drained', sid: m.sid } satisfies ToInbox);
        });
        return;
      }
      case 'respond':
        this.#nc.publish(m.reply, m.data);
        return;
    }
  }

  /** The job's thread ended: its subscriptions go, so that nothing is handed to a closed port. */
  close(): void {
    this.#closed = true;
    for (const sub of this.#subs.values()) sub.unsubscribe();
    this.#subs.clear();
  }
}
