// A move of key groups and source splits at the barrier of checkpoint N (MoveTasks), on one
// worker, from prepare to loaded (docs/ARCHITECTURE.md, "Moves"):
//
// 1. prepare: the keyed tasks subscribe the incoming key groups before barrier N can exist; their
//    channels start at it (worker/task/keyed-task.ts).
// 2. apply, at the cut of N (worker/checkpoint/checkpoint-cut.ts): outgoing key groups are let
//    go (queries for them answer UNAVAILABLE), incoming ones are counted and held until loaded.
// 3. finish, once N completed: what was let go is dropped, the incoming key groups are read from
//    checkpoint N and their held batches replayed.
import type { Logger } from '../../core/logger.ts';
import type { JobId } from '../../core/ids.ts';
import type { JobManifest } from '../../core/manifest.ts';
import type { MoveTasks } from '../../core/control.ts';
import type { ObjectStore } from '../../core/object-store.ts';
import { keyGroupsOf } from '../../core/key-groups.ts';
import { objectKeys } from '../../core/object-keys.ts';
import { toRanges } from '../../core/assignment.ts';
import type { StateBackend } from '../state/index.ts';
import { upstreamSenders } from '../channel/index.ts';
import { readMetadata, restoreKeyGroups } from './checkpoint-restore.ts';

/** What a move needs of a keyed task (worker/task/keyed-task.ts). */
export interface MovingTask {
  prepareMove(checkpointId: number, keyGroups: readonly number[], senders: readonly string[], sendersBefore: readonly string[], watermarkSenders?: readonly string[]): Promise<void>;
  applyMove(checkpointId: number): void;
  activate(keyGroups: readonly number[]): void;
}

/** What a move needs of the query responder (worker/query/query-responder.ts). */
export interface MovingQueries {
  release(keyGroups: readonly number[]): void;
  remove(keyGroups: readonly number[]): void;
  add(keyGroups: readonly number[]): void;
}

/** The job on this worker, as a move sees it. Arrays are the runtime's own (they change as it runs). */
export interface KeyGroupMoveContext {
  jobId: JobId;
  manifest: JobManifest;
  epoch: number;
  store: ObjectStore;
  backend: StateBackend;
  logger: Logger;
  /** The keyed tasks, and the stage of each (same order). */
  tasks: readonly MovingTask[];
  taskStages: readonly string[];
  queries: MovingQueries;
  /** Key groups whose state RocksDB holds: the move drops the outgoing and adds the incoming. */
  stateKeyGroups: Set<number>;
  /** Current sender name per source split: the move's new names are set at prepare. */
  splitSenders: Map<number, string>;
  /** The job still runs here. */
  running(): boolean;
}

export class KeyGroupMove {
  readonly checkpointId: number;
  /** The key groups this worker owns after the move. */
  readonly keyGroups: number[];
  readonly incoming: number[];
  readonly outgoing: number[];
  readonly splitsIn: number[];
  readonly splitsOut: number[];
  readonly #ctx: KeyGroupMoveContext;
  readonly #m: MoveTasks;
  /** When this worker cut barrier N: from then the incoming key groups wait here. */
  #appliedAtMs: number | undefined;

  /** A move of MoveTasks `m` for a worker that owns `owned` and reads the splits `reading`. */
  constructor(ctx: KeyGroupMoveContext, m: MoveTasks, owned: readonly number[], reading: readonly number[]) {
    this.#ctx = ctx;
    this.#m = m;
    this.checkpointId = m.checkpointId;
    const keyGroups = [...keyGroupsOf(m.keyGroups)];
    const next = new Set(keyGroups);
    const ownedSet = new Set(owned);
    const splits = new Set(m.sourceSplits);
    const readingSet = new Set(reading);
    this.keyGroups = keyGroups;
    this.incoming = keyGroups.filter((kg) => !ownedSet.has(kg));
    this.outgoing = owned.filter((kg) => !next.has(kg));
    this.splitsIn = m.sourceSplits.filter((p) => !readingSet.has(p));
    this.splitsOut = [...readingSet].filter((p) => !splits.has(p));
  }

  /**
   * Prepares the move at barrier N: incoming key groups are subscribed before the barrier can
   * exist; channels into them start at it.
   */
  async prepare(): Promise<void> {
    const { manifest, epoch, tasks, taskStages, splitSenders, logger } = this.#ctx;
    const m = this.#m;
    m.splitSenders.forEach((name, p) => splitSenders.set(p, name));
    await Promise.all(
      tasks.map((task, i) => {
        const stageId = taskStages[i]!;
        const after = upstreamSenders(manifest, stageId, m.workers, (p) => splitSenders.get(p)!, epoch);
        const before = upstreamSenders(manifest, stageId, m.previousWorkers, (p) => m.previousSplitSenders[p]!, epoch);
        return task.prepareMove(m.checkpointId, this.keyGroups, after.all, before.all, after.watermark);
      }),
    );
    const { incoming, outgoing, splitsIn, splitsOut } = this;
    logger.info({ checkpoint: m.checkpointId, incoming: toRanges(incoming), outgoing: toRanges(outgoing), splitsIn, splitsOut }, 'move prepared');
  }

  /** At the cut of N, before the tasks go on past barrier N. */
  apply(): void {
    this.#appliedAtMs = performance.now();
    for (const task of this.#ctx.tasks) task.applyMove(this.checkpointId);
    // The old owner stops serving key groups it let go: from here on its state is stale.
    this.#ctx.queries.release(this.outgoing);
  }

  /** Checkpoint N completed (RocksDB holds it): drop what was let go, load what came in. */
  async finish(): Promise<void> {
    const { jobId, manifest, store, backend, stateKeyGroups, queries, tasks, logger } = this.#ctx;
    const t0 = performance.now();
    const stages = manifest.stages.filter((s) => s.kind === 'keyed').map((s) => s.id);
    // Checkpoint N is in RocksDB (committed above): what was let go can be dropped.
    queries.remove(this.outgoing);
    for (const kg of this.outgoing) {
      for (const stage of stages) await backend.dropKeyGroup(stage, kg);
      stateKeyGroups.delete(kg);
    }
    let bytesRead = 0;
    if (this.incoming.length > 0) {
      const metadata = await readMetadata(store, objectKeys.metadata(jobId, this.checkpointId));
      ({ bytesRead } = await restoreKeyGroups(store, backend, metadata, stages, this.incoming));
      for (const kg of this.incoming) stateKeyGroups.add(kg);
    }
    if (!this.#ctx.running()) return;
    for (const task of tasks) task.activate(this.incoming);
    queries.add(this.incoming);
    // The incoming key groups' pause: from the barrier (nothing processed for them since) to now.
    const pausedMs = this.incoming.length > 0 && this.#appliedAtMs !== undefined ? Math.round(performance.now() - this.#appliedAtMs) : undefined;
    logger.info({ checkpoint: this.checkpointId, loadedKeyGroups: this.incoming.length, droppedKeyGroups: this.outgoing.length, bytesRead, pausedMs, ms: Math.round(performance.now() - t0) }, 'move done');
  }
}
