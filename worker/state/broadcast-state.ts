// Broadcast state (a stage connected to a broadcast stream) is keyed state under a reserved key,
// in every key group's range: processBroadcastElement runs once per key group and writes its
// key group's copy. So checkpoints, key-group moves and restores carry it with nothing new.
// Its cost is maxParallelism copies of each broadcast state (and processBroadcastElement runs
// maxParallelism times per record); Flink keeps one copy per parallel task and checkpoints it
// per task, which needs a redistribution step on rescale that per-key-group copies avoid.
import type { MapStateDescriptor, StateDescriptor } from '../../sdk/index.ts';
import type { StageSpec } from '../../core/manifest.ts';
import { createStateHandle } from './state-handles.ts';
import type { StateBackend } from './state-backend.ts';
import type { Clock } from './state-handles.ts';

/**
 * The key broadcast state is stored under. keyBy results are strings and numbers from user
 * code: a key starting with NUL is not impossible, but is no key anyone routes by.
 */
export const BROADCAST_KEY = '\u0000broadcast';

/** The names of a stage's broadcast states. */
export function broadcastStateNames(spec: StageSpec): ReadonlySet<string> {
  return new Set(spec.broadcastStates ?? []);
}

/** A read-write map handle on a broadcast state of one key group. */
export function broadcastStateHandle<V>(
  stage: string,
  backend: StateBackend,
  declared: ReadonlyMap<string, StateDescriptor['kind']>,
  services: { broadcastStates?: ReadonlySet<string>; clock?: Clock },
  keyGroup: number,
  descriptor: MapStateDescriptor<V>,
): unknown {
  if (!services.broadcastStates?.has(descriptor?.name) || declared.get(descriptor.name) !== 'map' || descriptor.kind !== 'map') {
    throw new TypeError(`state ${String(descriptor?.name)} is not a broadcast state of stage ${stage}; declare it in { broadcastState: [...] }`);
  }
  return createStateHandle({ backend, stage, keyGroup, key: BROADCAST_KEY, clock: services.clock ?? Date.now }, descriptor as StateDescriptor);
}
