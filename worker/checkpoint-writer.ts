// The worker's side of a checkpoint after its state is frozen: upload the frozen deltas (one
// object per stage per checkpoint, with a per-key-group index) and the exactly-once sink
// output, then tell the coordinator what it wrote. A checkpoint that was aborted (say, the
// object store was down) keeps its frozen delta; its upload is retried with the next one, and
// the acknowledgement lists every part not yet completed, oldest first.
import { encodeCheckpointObject, decodeCheckpointIndex, checkpointLayout } from '../core/checkpoint-format.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { CheckpointPart, DeltaRef } from '../core/control.ts';
import type { StateBackend } from './state-backend.ts';
import type { CheckpointOutput } from './sinks.ts';

export class CheckpointWriter {
  readonly #store: ObjectStore;
  readonly #backend: StateBackend;
  readonly #jobId: string;
  readonly #workerId: string;
  /** Exactly-once output per frozen, uncompleted checkpoint. */
  readonly #outputs = new Map<number, CheckpointOutput[]>();
  /** Parts already uploaded, per uncompleted checkpoint. */
  readonly #uploaded = new Map<number, CheckpointPart>();
  /** Frozen, uncompleted checkpoint ids, ascending. */
  #pending: number[] = [];
  bytesUploaded = 0;

  constructor(store: ObjectStore, backend: StateBackend, jobId: string, workerId: string) {
    this.#store = store;
    this.#backend = backend;
    this.#jobId = jobId;
    this.#workerId = workerId;
  }

  /** Records that checkpoint N's state is frozen, with its exactly-once output. */
  frozen(checkpointId: number, output: CheckpointOutput[]): void {
    this.#pending.push(checkpointId);
    this.#outputs.set(checkpointId, output);
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
    for (const { stage, groups } of this.#backend.frozenDelta(id)) {
      if (groups.length === 0) continue;
      const key = checkpointLayout.delta(this.#jobId, stage, this.#workerId, id);
      const bytes = encodeCheckpointObject(stage, groups);
      await this.#store.put(key, bytes);
      this.bytesUploaded += bytes.length;
      const index = decodeCheckpointIndex(bytes, key);
      deltas.push({ stageId: stage, key, sections: index.sections.map((s) => ({ keyGroup: s.keyGroup, offset: s.offset, length: s.length, crc32: s.crc32 })) });
    }
    const output = this.#outputs.get(id) ?? [];
    let outputKey = '';
    if (output.length > 0) {
      outputKey = `jobs/${this.#jobId}/checkpoints/${id}/output-${this.#workerId}.ndjson`;
      const body = new TextEncoder().encode(output.map((o) => JSON.stringify([o.subject, o.data])).join('\n') + '\n');
      await this.#store.put(outputKey, body);
      this.bytesUploaded += body.length;
    }
    return { checkpointId: id, deltas, outputKey, outputCount: output.length };
  }

  /** Checkpoint N completed: its parts and every earlier one are in the metadata now. */
  completed(checkpointId: number): void {
    this.#pending = this.#pending.filter((id) => id > checkpointId);
    for (const id of [...this.#outputs.keys()]) if (id <= checkpointId) this.#outputs.delete(id);
    for (const id of [...this.#uploaded.keys()]) if (id <= checkpointId) this.#uploaded.delete(id);
  }

  /** A rollback dropped every frozen delta: forget their parts. */
  reset(): void {
    this.#pending = [];
    this.#outputs.clear();
    this.#uploaded.clear();
  }
}
