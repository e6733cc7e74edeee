// What a feature read may ask, the same at every front door (a coordinator's FeatureService and a
// worker's serving endpoint, worker/query/serving-endpoint.ts), and the two names of a direct read.
import { InvalidArgumentError } from './errors.ts';

/** The header a direct read names the job's assignment epoch in (GetServingMapResponse.epoch). */
export const SERVING_EPOCH_HEADER = 'eddy-serving-epoch';
/** google.rpc.ErrorInfo.reason of a direct read its worker cannot answer now: fetch the map again, retry. */
export const NOT_SERVED_REASON = 'KEY_GROUP_NOT_SERVED';

/** Entity ids one call may name. */
export const MAX_BATCH_IDS = 1000;
/** Features one GetFeatures call may name. */
export const MAX_FEATURES_PER_CALL = 100;

/** Checks a GetFeatures request's features and ids; throws InvalidArgumentError (google.rpc.BadRequest). */
export function checkFeatureRequest(features: readonly string[], entityIds: readonly string[]): void {
  if (features.length === 0) throw new InvalidArgumentError('name at least one feature', { field: 'features' });
  if (features.length > MAX_FEATURES_PER_CALL) throw new InvalidArgumentError(`at most ${MAX_FEATURES_PER_CALL} features per call, got ${features.length}`, { field: 'features' });
  if (new Set(features).size !== features.length) throw new InvalidArgumentError('a feature is named twice', { field: 'features' });
  if (entityIds.length > MAX_BATCH_IDS) throw new InvalidArgumentError(`at most ${MAX_BATCH_IDS} entity ids per request, got ${entityIds.length}`, { field: 'entity_ids' });
  for (const id of entityIds) if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('entity ids must be non-empty strings', { field: 'entity_ids' });
}
