// Publishes the exactly-once output of completed checkpoints, in checkpoint order, retrying
// until it is out. It belongs to the job, not to one epoch's checkpoint coordinator: output of
// a checkpoint that completed just before a recovery must still be published, once (the
// stream deduplicates a repeat by Nats-Msg-Id).
import type { NatsConnection } from '@nats-io/transport-node';
import type { CheckpointMetadata } from '../core/checkpoint-format.ts';
import type { ObjectStore } from '../core/object-store.ts';
import { ensureError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { publishOutputs } from './checkpoint-coordinator.ts';
import { commitFiles, stagedFileKeys } from './file-commit.ts';

const RETRY_MS = 1000;

export class OutputPublisher {
  readonly #nc: NatsConnection;
  readonly #store: ObjectStore;
  readonly #logger: Logger;
  readonly #onPublished: (checkpointId: number) => void;
  readonly #queue: CheckpointMetadata[] = [];
  #running = false;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(nc: NatsConnection, store: ObjectStore, logger: Logger, onPublished: (checkpointId: number) => void) {
    this.#nc = nc;
    this.#store = store;
    this.#logger = logger;
    this.#onPublished = onPublished;
  }

  enqueue(metadata: CheckpointMetadata): void {
    if (!hasOutput(metadata)) return this.#onPublished(metadata.checkpointId);
    this.#queue.push(metadata);
    this.#run();
  }

  get pending(): number {
    return this.#queue.length;
  }

  #run(): void {
    if (this.#running || this.#stopped || this.#queue.length === 0) return;
    this.#running = true;
    void (async () => {
      try {
        while (this.#queue.length > 0 && !this.#stopped) {
          await publishOutputs(this.#nc, this.#store, this.#queue[0]!);
          await commitFiles(this.#store, this.#queue[0]!);
          this.#onPublished(this.#queue.shift()!.checkpointId);
        }
      } catch (e) {
        this.#logger.warn({ err: ensureError(e).message, pending: this.#queue.length }, 'checkpoint output not published yet; retrying');
        this.#retry = setTimeout(() => this.#run(), RETRY_MS);
      } finally {
        this.#running = false;
      }
    })();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
  }
}

/** Whether a checkpoint has exactly-once output to publish or part files to commit. */
export function hasOutput(metadata: CheckpointMetadata): boolean {
  return (metadata.outputs ?? []).length > 0 || (metadata.files ?? []).length > 0;
}

/** The objects a checkpoint's output needs until it is published: output objects and staged part files. */
export function outputKeys(metadata: CheckpointMetadata): string[] {
  return [...(metadata.outputs ?? []), ...stagedFileKeys(metadata)];
}
