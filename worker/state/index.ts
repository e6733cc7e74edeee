// The state of one job on one worker: the state backend (an overlay over RocksDB, frozen into
// deltas at barriers and written to RocksDB when a checkpoint completes), the handles keyed state
// is read and written through, broadcast and feature state (versions, history retention), the TTL
// sweeper and the size probe. Everything in here stores into the backend's key ranges, so
// checkpoints, moves and restores carry it with no protocol of its own.
export { broadcastStateHandle, broadcastStateNames } from './broadcast-state.ts';
export { featureStates, metaKey, readFeature, readFeatureAsOf, recordFeatureVersion, touchFeature } from './feature-state.ts';
export type { FeatureRead, FeatureStateSpec, MapChange } from './feature-state.ts';
export { HistoryCleaner } from './history-cleanup.ts';
export { StateBackend } from './state-backend.ts';
export type { StateView } from './state-backend.ts';
export { createStateHandle } from './state-handles.ts';
export type { Clock } from './state-handles.ts';
export { StateSizeProbe } from './state-size.ts';
export { TtlSweeper } from './state-ttl-sweeper.ts';
