// A job read back from the job store by a restarted coordinator: its retained checkpoints' and
// savepoints' _metadata are read again from the object store, and a job that was live comes back
// RESTARTING (the caller redeploys it from its latest checkpoint).
import { decodeMetadata } from '../core/checkpoint-format.ts';
import { ensureError } from '../core/errors.ts';
import { parseJobId, type Epoch } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { parseManifest } from '../core/manifest.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { CompletedCheckpoint } from './checkpoint-coordinator.ts';
import { Job, type JobState } from './job.ts';
import type { StoredJob } from './job-store.ts';

/** Checkpoint ids skipped after a coordinator restart. */
const CHECKPOINT_ID_GAP_AFTER_RESTART = 1000;

/** Whether a stored job was running (or on its way) when the coordinator stopped. */
export function wasLive(stored: StoredJob): boolean {
  return stored.state !== 'CANCELLED' && stored.state !== 'FAILED' && stored.state !== 'FINISHED';
}

export async function loadStoredJob(stored: StoredJob, store: ObjectStore, logger: Logger): Promise<Job> {
  const manifest = parseManifest(stored.manifestJson);
  const checkpoints: CompletedCheckpoint[] = [];
  for (const c of stored.retainedCheckpoints) {
    const metadata = decodeMetadata(await store.get(c.metadataKey), c.metadataKey);
    checkpoints.push({ id: c.id, metadataKey: c.metadataKey, metadata, completedAtUnixMs: c.completedAtUnixMs, durationMs: 0, bytes: 0 });
  }
  const savepoints: CompletedCheckpoint[] = [];
  for (const c of stored.savepoints) {
    try {
      const metadata = decodeMetadata(await store.get(c.metadataKey), c.metadataKey);
      savepoints.push({ id: c.id, metadataKey: c.metadataKey, metadata, completedAtUnixMs: c.completedAtUnixMs, durationMs: 0, bytes: 0 });
    } catch (e) {
      logger.error({ jobId: stored.jobId, savepoint: c.metadataKey, err: ensureError(e).message }, 'savepoint unreadable');
    }
  }
  return new Job(
    {
      id: parseJobId(stored.jobId),
      manifest,
      manifestJson: stored.manifestJson,
      sha256: stored.bundleSha256,
      bundleKey: stored.bundleKey,
      submittedAtMs: stored.submittedAtUnixMs,
      epoch: stored.epoch as Epoch,
      ...(stored.lastFailure ? { lastFailure: stored.lastFailure } : {}),
      checkpoints,
      savepoints,
      // Ids triggered but never recorded (the coordinator died mid-checkpoint) are skipped.
      lastCheckpointId: stored.lastCheckpointId + CHECKPOINT_ID_GAP_AFTER_RESTART,
      restarts: stored.restarts,
      ...(stored.initialPositions && { initialPositions: stored.initialPositions }),
    },
    wasLive(stored) ? 'RESTARTING' : (stored.state as JobState),
  );
}
