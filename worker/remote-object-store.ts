// The object store as a job's thread sees it: every call is performed by the worker's thread
// (worker/isolated-job.ts), which holds the store's client and its credentials. The job's
// thread, and the user code in it, never has them; it can still ask for any object of the store
// through this port (the boundary keeps secrets out, not capabilities: see README, "Isolation").
import type { MessagePort } from 'node:worker_threads';
import { NotFoundError, EddyError } from '../core/errors.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { FromJobThread, StoreMethod, ToJobThread } from './job-thread-protocol.ts';

export class RemoteObjectStore implements ObjectStore {
  readonly url: string;
  readonly #port: MessagePort;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;

  constructor(url: string, port: MessagePort) {
    this.url = url;
    this.#port = port;
  }

  /** A storeReply from the worker's thread. */
  onReply(m: Extract<ToJobThread, { kind: 'storeReply' }>): void {
    const p = this.#pending.get(m.id);
    if (p === undefined) return;
    this.#pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(m.notFound ? new NotFoundError(m.error) : new EddyError('UNAVAILABLE', m.error));
  }

  #call<T>(method: StoreMethod, args: unknown[]): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#port.postMessage({ kind: 'store', id, method, args } satisfies FromJobThread);
    });
  }

  put(key: string, bytes: Uint8Array): Promise<void> {
    return this.#call('put', [key, bytes]);
  }
  get(key: string): Promise<Uint8Array> {
    return this.#call('get', [key]);
  }
  getRange(key: string, start: number, endExclusive: number): Promise<Uint8Array> {
    return this.#call('getRange', [key, start, endExclusive]);
  }
  size(key: string): Promise<number> {
    return this.#call('size', [key]);
  }
  exists(key: string): Promise<boolean> {
    return this.#call('exists', [key]);
  }
  delete(key: string): Promise<void> {
    return this.#call('delete', [key]);
  }
  list(prefix: string): Promise<string[]> {
    return this.#call('list', [prefix]);
  }
}
