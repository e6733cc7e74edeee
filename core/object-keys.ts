// Every key Eddy writes into a job's object store, and what a key says about itself. Nothing else
// builds or parses an object key, so the layout below is the whole of it:
//
//   jobs/<job>/bundles/<sha256>.js                       a submitted bundle
//   jobs/<job>/bundles/<sha256>.manifest.json            its manifest
//   jobs/<job>/state/<stage>/<worker>-<N>.delta          one worker's delta of checkpoint N
//   jobs/<job>/state/<stage>/<worker>-<N>.snap           key groups one worker re-materialized at N
//   jobs/<job>/state/<stage>/base-<keyGroup>-<N>.snap    one key group in full
//   jobs/<job>/checkpoints/<N>/_metadata                 checkpoint N's commit record
//   jobs/<job>/checkpoints/<N>/output-<worker>.ndjson    exactly-once sink output of checkpoint N
//   jobs/<job>/checkpoints/<N>/files/<worker>-<i>.ndjson a files-sink part staged until N completes
//   jobs/<job>/savepoints/<N>/_metadata                  a savepoint (kept until deleted)
//
// Stage, job and worker ids are path-safe (core/ids.ts); the stage is the parent "directory" of a
// delta or snapshot, which is what decodeCheckpointIndex checks the index against. Every state
// object's name ends in -<checkpoint id>.delta or .snap, and everything else of checkpoint N lies
// under checkpoints/<N>/: the garbage collector reads the id from the key (checkpointIdOfObjectKey),
// so that it never deletes what a checkpoint still in flight uploaded.

export const objectKeys = {
  bundle: (job: string, sha256: string) => `jobs/${job}/bundles/${sha256}.js`,
  manifest: (job: string, sha256: string) => `jobs/${job}/bundles/${sha256}.manifest.json`,
  delta: (job: string, stage: string, worker: string, checkpointId: number) => `jobs/${job}/state/${stage}/${worker}-${checkpointId}.delta`,
  /** One key group materialized in full, alone in its object. */
  snapshot: (job: string, stage: string, keyGroup: number, checkpointId: number) => `jobs/${job}/state/${stage}/base-${keyGroup}-${checkpointId}.snap`,
  /** Every key group one worker re-materialized at checkpointId, in one object (snapshot flag set). */
  workerSnapshot: (job: string, stage: string, worker: string, checkpointId: number) => `jobs/${job}/state/${stage}/${worker}-${checkpointId}.snap`,
  metadata: (job: string, checkpointId: number) => `jobs/${job}/checkpoints/${checkpointId}/_metadata`,
  /** A worker's exactly-once sink output of one checkpoint, published once it completes. */
  sinkOutput: (job: string, checkpointId: number, worker: string) => `jobs/${job}/checkpoints/${checkpointId}/output-${worker}.ndjson`,
  /**
   * A files-sink part staged under its checkpoint, so that the garbage collector takes it with an
   * aborted or expired checkpoint; only the commit writes its final key (coordinator/file-commit.ts).
   */
  stagedFile: (job: string, checkpointId: number, worker: string, index: number) => `jobs/${job}/checkpoints/${checkpointId}/files/${worker}-${index}.ndjson`,
  savepointMetadata: (job: string, checkpointId: number) => `jobs/${job}/savepoints/${checkpointId}/_metadata`,
  /** Prefix of every object of a job. */
  job: (job: string) => `jobs/${job}/`,
  /** Prefix of every delta and snapshot of a job. */
  state: (job: string) => `jobs/${job}/state/`,
  /** Prefix of every checkpoint's _metadata and exactly-once output. */
  checkpoints: (job: string) => `jobs/${job}/checkpoints/`,
} as const;

const STATE_OBJECT_ID = /-(0|[1-9][0-9]*)\.(?:delta|snap)$/;
const CHECKPOINT_OBJECT_ID = /^jobs\/[^/]+\/checkpoints\/(0|[1-9][0-9]*)\//;
// A job id as core/ids.ts takes it, then a savepoint's checkpoint id.
const SAVEPOINT_METADATA = /^jobs\/[A-Za-z0-9][A-Za-z0-9_-]{0,63}\/savepoints\/(0|[1-9][0-9]*)\/_metadata$/;

/** The checkpoint id a state object or checkpoint object was written for, or undefined for another key. */
export function checkpointIdOfObjectKey(key: string): number | undefined {
  const match = STATE_OBJECT_ID.exec(key) ?? CHECKPOINT_OBJECT_ID.exec(key);
  if (match === null) return undefined;
  const id = Number(match[1]);
  return Number.isSafeInteger(id) ? id : undefined;
}

/** Whether a key is a checkpoint's or a savepoint's _metadata. */
export const isMetadataKey = (key: string): boolean => key.endsWith('/_metadata');

/** Whether a key names a savepoint's _metadata of any job (what `eddy savepoint` prints), and nothing else. */
export const isSavepointMetadataKey = (key: string): boolean => SAVEPOINT_METADATA.test(key);

const STAGED_FILE = /\/files\/[^/]+\.ndjson$/;

/** Whether a key has the shape of a staged files-sink part (objectKeys.stagedFile). */
export const isStagedFileKey = (key: string): boolean => STAGED_FILE.test(key);
