// The worker's side of a checkpoint after its state is frozen: upload the frozen deltas (one
// object per stage per checkpoint, with a per-key-group index) and the exactly-once sink
// output, then tell the coordinator what it wrote. A checkpoint that was aborted (say, the
// object store was down) keeps its frozen delta; its upload is retried with the next one, and
// the acknowledgement lists every part not yet completed, oldest first.
//
// A key group whose delta chain grew too long is re-materialized: when the coordinator names it
// for checkpoint N, the part of N also holds a full snapshot of it at N, per keyed stage, one
// object per stage for all such key groups of this worker (docs/ARCHITECTURE.md, "Checkpoints").
import { encodeCheckpointObject, decodeCheckpointIndex } from '../../core/checkpoint-format.ts';
import { objectKeys } from '../../core/object-keys.ts';
import type { ObjectStore } from '../../core/object-store.ts';
import type { CheckpointPart, DeltaRef, FileCommit, StageCounters } from '../../core/control.ts';
import type { StateBackend } from '../state/index.ts';
import { isFilePart, type CheckpointOutput } from '../sink/index.ts';

export class CheckpointWriter {
  readonly #store: ObjectStore;
  readonly #backend: StateBackend;
  readonly #jobId: string;
  readonly #workerId: string;
  /** Exactly-once output per frozen, uncompleted checkpoint. */
  readonly #outputs = new Map<number, CheckpointOutput[]>();
  /** What the stages counted since the previous cut, per frozen, uncompleted checkpoint. */
  readonly #counters = new Map<number, StageCounters[]>();
  /** Parts already uploaded, per uncompleted checkpoint. */
  readonly #uploaded = new Map<number, CheckpointPart>();
  /** Frozen, uncompleted checkpoint ids, ascending. */
  #pending: number[] = [];
  /** Key groups to re-materialize, per uncompleted checkpoint id. */
  readonly #rematerialize = new Map<number, readonly number[]>();
  readonly #keyedStages: readonly string[];
  bytesUploaded = 0;

  /** keyedStages: the stages a re-materialized key group is snapshotted in (none: requests are ignored). */
  constructor(store: ObjectStore, backend: StateBackend, jobId: string, workerId: string, keyedStages: readonly string[] = []) {
    this.#store = store;
    this.#backend = backend;
    this.#jobId = jobId;
    this.#workerId = workerId;
    this.#keyedStages = keyedStages;
  }

  /**
   * The part of checkpoint N is to hold full snapshots of these key groups (owned by this worker)
   * at N. Too late once that part is uploaded: the coordinator asks again at a later checkpoint.
   */
  rematerialize(checkpointId: number, keyGroups: readonly number[]): void {
    if (keyGroups.length === 0 || this.#uploaded.has(checkpointId)) return;
    this.#rematerialize.set(checkpointId, [...new Set(keyGroups)].sort((a, b) => a - b));
  }

  /** Records that checkpoint N's state is frozen, with its exactly-once output and what its stages counted since the previous cut. */
  frozen(checkpointId: number, output: CheckpointOutput[], counters: StageCounters[] = []): void {
    this.#pending.push(checkpointId);
    this.#outputs.set(checkpointId, output);
    this.#counters.set(checkpointId, counters);
  }

  /** Uploads what is missing of every pending part up to N; returns them in order. */
  async upload(checkpointId: number): Promise<CheckpointPart[]> {
    const parts: CheckpointPart[] = [];
    for (const id of this.#pending) {
      if (id > checkpointId) break;
      let part = this.#uploaded.get(id);
      if (!part) {
        part = await this.#uploadPart(id);
        this.#uploaded.set(id, part);
      }
      parts.push(part);
    }
    return parts;
  }

  async #uploadPart(id: number): Promise<CheckpointPart> {
    const deltas: DeltaRef[] = [];
    for (const { stage, groups } of this.#backend.frozenColumns(id)) {
      if (groups.length === 0) continue;
      const key = objectKeys.delta(this.#jobId, stage, this.#workerId, id);
      const bytes = encodeCheckpointObject(stage, groups);
      await this.#store.put(key, bytes);
      this.bytesUploaded += bytes.length;
      deltas.push(refOf(stage, key, bytes));
    }
    const bases: DeltaRef[] = [];
    const keyGroups = this.#rematerialize.get(id) ?? [];
    for (const stage of keyGroups.length > 0 ? this.#keyedStages : []) {
      // Sequential: each snapshot holds a whole key group in memory until it is encoded.
      const groups = [];
      for (const keyGroup of keyGroups) groups.push(await this.#backend.snapshotKeyGroup(stage, keyGroup, id));
      const key = objectKeys.workerSnapshot(this.#jobId, stage, this.#workerId, id);
      const bytes = encodeCheckpointObject(stage, groups, { snapshot: true });
      await this.#store.put(key, bytes);
      this.bytesUploaded += bytes.length;
      bases.push(refOf(stage, key, bytes));
    }
    const all = this.#outputs.get(id) ?? [];
    const output: Array<{ subject: string; data: string }> = [];
    const files: FileCommit[] = [];
    for (const o of all) {
      if (!isFilePart(o)) {
        output.push(o);
        continue;
      }
      const stagedKey = objectKeys.stagedFile(this.#jobId, id, this.#workerId, files.length);
      await this.#store.put(stagedKey, o.file.bytes);
      this.bytesUploaded += o.file.bytes.length;
      files.push({ stagedKey, finalKey: o.file.finalKey, records: o.file.records });
    }
    let outputKey = '';
    if (output.length > 0) {
      outputKey = objectKeys.sinkOutput(this.#jobId, id, this.#workerId);
      const body = new TextEncoder().encode(output.map((o) => JSON.stringify([o.subject, o.data])).join('\n') + '\n');
      await this.#store.put(outputKey, body);
      this.bytesUploaded += body.length;
    }
    return { checkpointId: id, deltas, outputKey, outputCount: output.length, bases, files, counters: this.#counters.get(id) ?? [] };
  }

  /** Checkpoint N completed: its parts and every earlier one are in the metadata now. */
  completed(checkpointId: number): void {
    this.#pending = this.#pending.filter((id) => id > checkpointId);
    for (const id of [...this.#outputs.keys()]) if (id <= checkpointId) this.#outputs.delete(id);
    for (const id of [...this.#counters.keys()]) if (id <= checkpointId) this.#counters.delete(id);
    for (const id of [...this.#uploaded.keys()]) if (id <= checkpointId) this.#uploaded.delete(id);
    for (const id of [...this.#rematerialize.keys()]) if (id <= checkpointId) this.#rematerialize.delete(id);
  }

  /** A rollback dropped every frozen delta: forget their parts. */
  reset(): void {
    this.#pending = [];
    this.#outputs.clear();
    this.#counters.clear();
    this.#uploaded.clear();
    this.#rematerialize.clear();
  }
}

function refOf(stage: string, key: string, bytes: Uint8Array): DeltaRef {
  const index = decodeCheckpointIndex(bytes, key);
  return { stageId: stage, key, sections: index.sections.map((s) => ({ keyGroup: s.keyGroup, offset: s.offset, length: s.length, crc32: s.crc32 })) };
}
