// Waiting for "a checkpoint later": exactly-once output is published when a checkpoint completes,
// so two more completed checkpoints mean that anything emitted twice would be there by now. An
// idle job (nothing read, emitted or dead-lettered since its latest checkpoint) takes no periodic
// checkpoints (coordinator/checkpoint-idle.ts): everything it did is in the latest one already.
//
// A recovery needs no such care: a job is idle only since a checkpoint of its current epoch
// (CheckpointCoordinator's tick), so a new epoch restored from checkpoint N always takes one
// more; "RUNNING, a newer epoch and latestId > N" is reached without any input. Idle is not
// claimed while a job recovers: the old epoch's checkpoint coordinator clears it as it stops.
import type { EddyClient } from '../../cli/client.ts';
import { decodeMetadata } from '../../core/checkpoint-format.ts';
import { objectKeys } from '../../core/object-keys.ts';
import type { ObjectStore } from '../../core/object-store.ts';
import { waitFor } from './wait-for.ts';

/** Idle must hold this long (three heartbeats and more) with no new checkpoint to count. */
const IDLE_FOR_MS = 1_500;

/** Resolves once `more` checkpoints completed after the call, or the job stayed idle for IDLE_FOR_MS. */
export async function checkpointsOrIdle(client: EddyClient, job: string, options: { more?: number; timeoutMs?: number } = {}): Promise<void> {
  const more = options.more ?? 2;
  const start = Number((await client.getJob(job)).checkpoints?.latestId ?? 0);
  let idleSince: { atMs: number; latestId: number } | undefined;
  await waitFor(
    async () => {
      const c = (await client.getJob(job)).checkpoints;
      const latestId = Number(c?.latestId ?? 0);
      if (latestId >= start + more) return true;
      if (c?.idle !== true || Number(c.inFlightId ?? 0) !== 0) {
        idleSince = undefined;
        return false;
      }
      if (idleSince === undefined || idleSince.latestId !== latestId) idleSince = { atMs: Date.now(), latestId };
      return Date.now() - idleSince.atMs >= IDLE_FOR_MS;
    },
    { timeoutMs: options.timeoutMs ?? 30_000, what: `${more} more checkpoints of ${job}, or the job idle with everything it did in its latest checkpoint` },
  );
}

/**
 * The job's latest completed checkpoint and the stream sequence each of its source splits goes on
 * from (read from its _metadata in the store): what the job has committed.
 */
export async function committedSourcePositions(client: EddyClient, store: ObjectStore, job: string): Promise<{ checkpointId: number; nextSequences: number[] }> {
  const checkpointId = Number((await client.getJob(job)).checkpoints!.latestId);
  if (checkpointId === 0) return { checkpointId, nextSequences: [] };
  const metadata = decodeMetadata(await store.get(objectKeys.metadata(job, checkpointId)), `checkpoint ${checkpointId} of ${job}`);
  return { checkpointId, nextSequences: Object.values(metadata.sources) };
}
