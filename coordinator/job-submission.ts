// What a submit needs besides deploying: a savepoint to start from (checked against the new
// bundle), and where each source starts (its startAt, or the submit's override, resolved to
// stream sequences once).
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeMetadata } from '../core/checkpoint-format.ts';
import type { SourcePosition } from '../core/control.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { remapSourcePositions, splitRanges, splitStreams, type JobManifest } from '../core/manifest.ts';
import { isSavepointMetadataKey } from '../core/object-keys.ts';
import type { ObjectStore } from '../core/object-store.ts';
import { describeStartAt, type StartAtSpec } from '../core/start-at.ts';
import type { CompletedCheckpoint } from './checkpoint-coordinator.ts';
import { resolveStartPositions } from './source-start.ts';

export interface SubmitOptions {
  /** Object-store key of a savepoint's _metadata to start from. */
  fromSavepoint?: string;
  allowNonRestoredState?: boolean;
  /** Overrides the manifest's startAt, per source stream (eddy submit --start-at). Refused with fromSavepoint. */
  startAt?: ReadonlyArray<{ source: string; startAt: StartAtSpec }>;
}

/**
 * Reads a savepoint for a (new version of a) job: every keyed stage of the savepoint must
 * exist in the new manifest, by id, unless its state may be dropped.
 */
export async function loadSavepoint(store: ObjectStore, logger: Logger, manifest: JobManifest, path: string, allowNonRestoredState: boolean): Promise<CompletedCheckpoint> {
  if (!isSavepointMetadataKey(path)) throw new InvalidArgumentError(`${path} is not a savepoint path (jobs/<job>/savepoints/<id>/_metadata, as eddy savepoint prints it)`);
  const metadata = decodeMetadata(await store.get(path), path);
  if (metadata.maxParallelism !== manifest.maxParallelism) {
    throw new InvalidArgumentError(`savepoint ${path} has ${metadata.maxParallelism} key groups, the new bundle ${manifest.maxParallelism}: maxParallelism is fixed for a job's life`);
  }
  const stages = new Set(manifest.stages.filter((st) => st.kind === 'keyed').map((st) => st.id));
  const unmapped = Object.entries(metadata.stages).filter(([stage, groups]) => !stages.has(stage) && Object.keys(groups).length > 0).map(([stage]) => stage);
  if (unmapped.length > 0 && !allowNonRestoredState) {
    throw new InvalidArgumentError(
      `savepoint ${path} holds state of stage(s) ${unmapped.join(', ')}, which the new bundle does not have (its keyed stages: ${[...stages].join(', ') || 'none'}); keep their ids, or pass --allow-non-restored-state to drop that state`,
    );
  }
  if (unmapped.length > 0) logger.warn({ path, dropped: unmapped }, 'savepoint state of stages the new bundle lacks is not restored');
  // Source positions follow their stream and partition into the new bundle's split space (a
  // source added or removed before another shifts its split indexes); a stream the new
  // bundle does not read is dropped, a new one starts at its beginning.
  const sources = remapSourcePositions(metadata, manifest);
  return { id: metadata.checkpointId, metadataKey: path, metadata: { ...metadata, sources, splitStreams: splitStreams(manifest) }, completedAtUnixMs: metadata.createdAtUnixMs, durationMs: 0, bytes: 0 };
}

/**
 * The startAt of each of the job's sources, by stream: the submit's override, else the
 * manifest's. An override must name a source of the job, once, and cannot go with a savepoint
 * (whose positions rule).
 */
export function startAtOf(manifest: JobManifest, options: SubmitOptions): Map<string, StartAtSpec> {
  const overrides = options.startAt ?? [];
  if (overrides.length > 0 && options.fromSavepoint) {
    throw new InvalidArgumentError('start at: a job started from a savepoint goes on from the savepoint\'s source positions; --start-at applies only to a fresh start');
  }
  const streams = manifest.sources.map((s) => s.stream);
  const out = new Map<string, StartAtSpec>();
  for (const s of manifest.sources) if (s.startAt) out.set(s.stream, s.startAt);
  const seen = new Set<string>();
  for (const o of overrides) {
    if (!streams.includes(o.source)) throw new InvalidArgumentError(`start at: job ${manifest.name} has no source ${JSON.stringify(o.source)} (its sources: ${streams.join(', ')})`);
    if (seen.has(o.source)) throw new InvalidArgumentError(`start at: source ${o.source} is given twice`);
    seen.add(o.source);
    out.set(o.source, o.startAt);
  }
  return out;
}

/**
 * Where the splits start on a fresh start, per source in the flat split space (core/manifest.ts
 * splitRanges); a source without a startAt starts at the beginning of its stream.
 */
export async function resolveInitialPositions(nc: NatsConnection, logger: Logger, manifest: JobManifest, startAt: ReadonlyMap<string, StartAtSpec>): Promise<SourcePosition[]> {
  const initialPositions: SourcePosition[] = [];
  for (const range of splitRanges(manifest)) {
    const at = startAt.get(range.spec.stream);
    if (at === undefined) continue;
    const positions = await resolveStartPositions(nc, range.spec, at);
    initialPositions.push(...positions.map((p) => ({ split: range.firstSplit + p.split, nextSequence: p.nextSequence })));
    logger.info({ jobId: manifest.name, stream: range.spec.stream, startAt: describeStartAt(at), sequence: positions[0]?.nextSequence }, 'source start resolved');
  }
  return initialPositions;
}
