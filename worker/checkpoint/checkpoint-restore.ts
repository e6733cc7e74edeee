// Restoring key groups from a completed checkpoint: for each stage, the key group's base
// snapshot (if any) and then its deltas in order, each a range read of one section of a
// larger object (docs/ARCHITECTURE.md, "Checkpoints"). Only key groups that change owner are read
// from the object store; a survivor keeps what its RocksDB already holds.
import { decodeMetadata, decodeSection, type CheckpointMetadata, type ObjectRef } from '../../core/checkpoint-format.ts';
import type { ObjectStore } from '../../core/object-store.ts';
import type { StateBackend } from '../state/index.ts';

/** Key groups restored concurrently: enough to overlap object-store latency, bounded memory. */
const RESTORE_CONCURRENCY = 16;

export async function readMetadata(store: ObjectStore, key: string): Promise<CheckpointMetadata> {
  return decodeMetadata(await store.get(key), key);
}

async function readSection(store: ObjectStore, ref: ObjectRef, keyGroup: number) {
  const bytes = await store.getRange(ref.key, ref.offset, ref.offset + ref.length);
  return decodeSection(bytes, { keyGroup, length: ref.length, crc32: ref.crc32 }, ref.key);
}

/** Replaces each key group's state, in every keyed stage, with its state in the checkpoint (or empty). */
export async function restoreKeyGroups(
  store: ObjectStore,
  backend: StateBackend,
  metadata: CheckpointMetadata | null,
  stages: readonly string[],
  keyGroups: readonly number[],
): Promise<{ bytesRead: number }> {
  let bytesRead = 0;
  const work = keyGroups.flatMap((kg) => stages.map((stage) => ({ stage, kg })));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < work.length) {
      const { stage, kg } = work[next++]!;
      const chain = metadata?.stages[stage]?.[String(kg)];
      if (!chain) {
        await backend.importKeyGroup(stage, { keyGroup: kg, entries: [] }, { replace: true });
        continue;
      }
      // Read every section first: a missing or corrupt one fails the restore before anything is written.
      const refs = [...(chain.base ? [chain.base] : []), ...chain.deltas];
      const groups = await Promise.all(refs.map((ref) => readSection(store, ref, kg)));
      for (const ref of refs) bytesRead += ref.length;
      await backend.importKeyGroup(stage, chain.base ? groups[0]! : { keyGroup: kg, entries: [] }, { replace: true });
      for (const g of chain.base ? groups.slice(1) : groups) await backend.importKeyGroup(stage, g);
    }
  };
  await Promise.all(Array.from({ length: Math.min(RESTORE_CONCURRENCY, work.length) }, worker));
  return { bytesRead };
}
