// Garbage collection of checkpoint objects (docs/ARCHITECTURE.md, "Checkpoints": "files shared
// between checkpoints are reference-counted; what no retained checkpoint or savepoint references
// is deleted"). A delta object holds sections of many key groups and stays on their chains for
// many checkpoints, so the count is over every key group of every retained _metadata.
//
// Objects are uploaded before the checkpoint that names them completes: a part of a checkpoint in
// flight (or being completed) is in no _metadata yet. Only objects written for a checkpoint older
// than the oldest retained one are candidates; the key says which (checkpointIdOfObjectKey).
// Checkpoint ids never repeat, so nothing uploaded later can carry such an id. Exactly-once
// output is needed until it is published, which may lag behind retention: the output objects
// of checkpoints not confirmed published count as referenced.
import { checkpointIdOfObjectKey, isMetadataKey, objectKeys } from '../core/object-keys.ts';
import { ensureError } from '../core/errors.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { Logger } from '../core/logger.ts';
import type { CompletedCheckpoint } from './checkpoint-coordinator.ts';

/** What the collector must keep. */
export interface RetainedCheckpoints {
  /** Completed checkpoints retained, oldest first. Nothing is collected while there is none. */
  checkpoints: readonly CompletedCheckpoint[];
  /** Savepoints, kept until the user deletes them: their objects count as referenced too. */
  savepoints: readonly CompletedCheckpoint[];
  /**
   * Output objects of completed checkpoints whose exactly-once output is not confirmed published:
   * kept, retained or not (publishing can lag behind retention, e.g. while a dead worker's
   * completion request times out). @default none
   */
  unpublishedOutputs?: Iterable<string>;
}

export interface CheckpointGcResult {
  /** Objects under the job's state/ and checkpoints/ prefixes when the collection started. */
  listed: number;
  deleted: number;
  /** Deletes that failed (logged): the next collection tries them again. */
  failed: number;
}

/** Deletes issued at once: overlaps object-store latency without a burst that S3 throttles. */
const DELETE_CONCURRENCY = 8;

/** Every object key a checkpoint references: its _metadata, bases, deltas and output. */
export function referencedKeys(checkpoint: CompletedCheckpoint): Set<string> {
  const keys = new Set<string>([checkpoint.metadataKey]);
  for (const keyGroups of Object.values(checkpoint.metadata.stages)) {
    for (const chain of Object.values(keyGroups)) {
      if (chain.base !== null) keys.add(chain.base.key);
      for (const delta of chain.deltas) keys.add(delta.key);
    }
  }
  for (const key of checkpoint.metadata.outputs ?? []) keys.add(key);
  for (const f of checkpoint.metadata.files ?? []) keys.add(f.stagedKey);
  return keys;
}

/**
 * The keys among `keys` that may be deleted: written for a checkpoint older than the oldest
 * retained one and referenced by no retained checkpoint or savepoint. Keys that carry no
 * checkpoint id are kept. _metadata objects come first: a checkpoint stops existing before any
 * object it names goes, so a reader never finds a _metadata whose objects are missing.
 */
export function unreferencedKeys(keys: Iterable<string>, retained: RetainedCheckpoints): string[] {
  if (retained.checkpoints.length === 0) return [];
  const oldest = Math.min(...retained.checkpoints.map((c) => c.id));
  const referenced = new Set<string>();
  for (const checkpoint of [...retained.checkpoints, ...retained.savepoints]) for (const key of referencedKeys(checkpoint)) referenced.add(key);
  for (const key of retained.unpublishedOutputs ?? []) referenced.add(key);
  const metadata: string[] = [];
  const objects: string[] = [];
  for (const key of keys) {
    const id = checkpointIdOfObjectKey(key);
    if (id === undefined || id >= oldest || referenced.has(key)) continue;
    (isMetadataKey(key) ? metadata : objects).push(key);
  }
  return [...metadata, ...objects];
}

/** One collection: lists the job's state and checkpoint objects and deletes the unreferenced ones. */
export async function collectCheckpointGarbage(store: ObjectStore, jobId: string, retained: RetainedCheckpoints, logger: Logger): Promise<CheckpointGcResult> {
  if (retained.checkpoints.length === 0) return { listed: 0, deleted: 0, failed: 0 };
  const keys = [...(await store.list(objectKeys.checkpoints(jobId))), ...(await store.list(objectKeys.state(jobId)))];
  const doomed = unreferencedKeys(keys, retained);
  let deleted = 0;
  let failed = 0;
  const metadataCount = doomed.filter((key) => isMetadataKey(key)).length;
  const deleteAll = async (batch: string[]): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batch.length) {
        const key = batch[next++]!;
        try {
          await store.delete(key);
          deleted++;
        } catch (e) {
          failed++;
          logger.warn({ jobId, key, err: ensureError(e).message }, 'could not delete an unreferenced checkpoint object');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, batch.length) }, worker));
  };
  // The commit records go first, and all of them before any object (see unreferencedKeys).
  await deleteAll(doomed.slice(0, metadataCount));
  await deleteAll(doomed.slice(metadataCount));
  return { listed: keys.length, deleted, failed };
}

export interface CheckpointGarbageCollectorOptions {
  store: ObjectStore;
  jobId: string;
  /** Read when a collection starts, after `ready`. */
  retained(): RetainedCheckpoints;
  /**
   * Awaited before each collection, e.g. until the job store no longer names the dropped
   * checkpoints (a restarted coordinator must not look for a deleted _metadata).
   * @default resolves at once
   */
  ready?(): Promise<unknown>;
  logger: Logger;
}

/**
 * Runs collections for one job in the background, one at a time: requests made while one runs
 * are coalesced into one more run, so a slow store never queues a collection per checkpoint.
 */
export class CheckpointGarbageCollector {
  readonly #o: CheckpointGarbageCollectorOptions;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(options: CheckpointGarbageCollectorOptions) {
    this.#o = options;
  }

  /** Asks for a collection soon; never throws (failures are logged and retried next time). */
  request(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.request();
      }
    });
  }

  /** Resolves when no collection runs or is asked for. */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #run(): Promise<void> {
    const started = performance.now();
    try {
      await this.#o.ready?.();
      const result = await collectCheckpointGarbage(this.#o.store, this.#o.jobId, this.#o.retained(), this.#o.logger);
      if (result.deleted > 0 || result.failed > 0) {
        this.#o.logger.info({ jobId: this.#o.jobId, ...result, ms: Math.round(performance.now() - started) }, 'checkpoint objects collected');
      }
    } catch (e) {
      this.#o.logger.warn({ jobId: this.#o.jobId, err: ensureError(e).message }, 'checkpoint garbage collection failed');
    }
  }
}
