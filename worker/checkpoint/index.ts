// The worker's side of checkpoints after a barrier froze the state: uploading deltas and
// exactly-once sink output, acknowledging to the coordinator, and restoring key groups from a
// completed checkpoint's objects.
export { readMetadata, restoreKeyGroups } from './checkpoint-restore.ts';
export { CheckpointWriter } from './checkpoint-writer.ts';
