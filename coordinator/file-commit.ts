// Commits files-sink part files once their checkpoint completes (FileSink-style exactly-once,
// docs/ARCHITECTURE.md "Sources and sinks"). Workers stage each part under the checkpoint that wrote
// it (jobs/<job>/checkpoints/<N>/files/...); the _metadata of N names staged and final keys.
// Committing copies a staged object to its final key. Final names are deterministic and put is
// atomic (file: write-then-rename; S3: PutObject), so a final object that exists is complete:
// a commit replayed after a coordinator restart skips it, and nothing is ever visible twice or
// half written. Staged objects go with their checkpoint's garbage collection.
import type { CheckpointMetadata } from '../core/checkpoint-format.ts';
import type { ObjectStore } from '../core/object-store.ts';

/** Copies overlapped at once: hides object-store latency without a burst that S3 throttles. */
const COMMIT_CONCURRENCY = 8;

/** Object keys a checkpoint's file commits need until they are done: the staged parts. */
export function stagedFileKeys(metadata: CheckpointMetadata): string[] {
  return (metadata.files ?? []).map((f) => f.stagedKey);
}

/** Makes every part file of the checkpoint visible at its final key; returns how many it copied. */
export async function commitFiles(store: ObjectStore, metadata: CheckpointMetadata): Promise<number> {
  const files = metadata.files ?? [];
  let next = 0;
  let copied = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const f = files[next++]!;
      if (await store.exists(f.finalKey)) continue;
      await store.put(f.finalKey, await store.get(f.stagedKey));
      copied++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(COMMIT_CONCURRENCY, files.length) }, worker));
  return copied;
}
