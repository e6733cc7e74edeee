// The worker's side of checkpoints: the cut (keyed tasks aligned on barrier N, the state frozen
// at it), uploading deltas and exactly-once sink output, acknowledging to the coordinator,
// restoring key groups from a completed checkpoint's objects, and moving key groups between
// workers at a checkpoint's barrier.
export { CheckpointCuts } from './checkpoint-cut.ts';
export type { CountedStage, Cut, SplitPosition } from './checkpoint-cut.ts';
export { readMetadata, restoreKeyGroups } from './checkpoint-restore.ts';
export { CheckpointWriter } from './checkpoint-writer.ts';
export { KeyGroupMove } from './key-group-move.ts';
export type { KeyGroupMoveContext, MovingQueries, MovingTask } from './key-group-move.ts';
export { BarrierAligner } from './barrier-aligner.ts';
export { OverlayBound } from './overlay-bound.ts';
export type { BarrierAlignerOptions } from './barrier-aligner.ts';
