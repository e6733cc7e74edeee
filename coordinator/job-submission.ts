// Submitting a job (docs/ARCHITECTURE.md, "Bundles"): the bundle checked against its declared
// sha256 and stored with its manifest, the streams the job reads and writes created, a savepoint
// to start from read and mapped onto the new bundle, and where each source starts resolved once.
import type { NatsConnection } from '@nats-io/transport-node';
import type { SourcePosition } from '../core/control.ts';
import { EddyError, InvalidArgumentError, excerpt } from '../core/errors.ts';
import { parseJobId, type Epoch, type JobId } from '../core/ids.ts';
import type { Logger } from '../core/logger.ts';
import { parseManifest, remapSourcePositions, splitRanges, splitStreams, type JobManifest } from '../core/manifest.ts';
import { ensureDeadLetterStream, ensureSinkStreams, ensureSourceStream } from '../core/nats.ts';
import { isSavepointMetadataKey, objectKeys } from '../core/object-keys.ts';
import type { ObjectStore } from '../core/object-store.ts';
import { decodeMetadata } from '../core/checkpoint-format.ts';
import { describeStartAt, type StartAtSpec } from '../core/start-at.ts';
import type { StagedBundle } from './bundle-upload.ts';
import type { CompletedCheckpoint } from './checkpoint-coordinator.ts';
import { isFinished, Job } from './job.ts';
import { PoisonRecords } from './poison-records.ts';
import { resolveStartPositions } from './source-start.ts';

export interface SubmitOptions {
  /** Object-store key of a savepoint's _metadata to start from. */
  fromSavepoint?: string;
  allowNonRestoredState?: boolean;
  /** Overrides the manifest's startAt, per source stream (eddy submit --start-at). Refused with fromSavepoint. */
  startAt?: ReadonlyArray<{ source: string; startAt: StartAtSpec }>;
}

export interface SubmissionContext {
  nc: NatsConnection;
  store: ObjectStore;
  logger: Logger;
  /** Replicas of the streams a submit creates. */
  natsReplicas: number;
  /** How many workers are alive now. */
  liveWorkers(): number;
  /** The job of that id this coordinator holds, if any. */
  existing(id: JobId): Job | undefined;
}

/**
 * Checks and stores a submitted bundle and returns the new job (SUBMITTED, not deployed yet).
 * Refuses a second live job of one name, a submit without live workers, a bundle whose bytes do
 * not hash to the declared sha256, and a savepoint the new bundle cannot take.
 */
export async function newJob(ctx: SubmissionContext, manifestJson: string, declaredSha256: string, bundle: StagedBundle, options: SubmitOptions): Promise<Job> {
  const { nc, store, logger } = ctx;
  const actual = bundle.sha256;
  if (actual !== declaredSha256) {
    throw new InvalidArgumentError(`bundle sha256 mismatch: the header declares ${excerpt(declaredSha256 || '(none)')}, the ${bundle.bytes} bytes received hash to ${actual}`);
  }
  const manifest = parseManifest(manifestJson);
  const id = parseJobId(manifest.name);
  const existing = ctx.existing(id);
  if (existing && !isFinished(existing.state)) {
    throw new EddyError('ALREADY_EXISTS', `job ${id} is ${existing.state}; cancel it before submitting it again`);
  }
  if (ctx.liveWorkers() === 0) throw new EddyError('FAILED_PRECONDITION', 'no live workers: start at least one worker before submitting a job');
  const startAt = startAtOf(manifest, options);
  const fromSavepoint = options.fromSavepoint ? await loadSavepoint(store, logger, manifest, options.fromSavepoint, options.allowNonRestoredState ?? false) : undefined;
  // A savepoint's positions are where the job goes on from; the manifest's startAt is for a fresh start only.
  for (const source of manifest.sources) {
    if (fromSavepoint && source.startAt) logger.info({ jobId: id, stream: source.stream, startAt: describeStartAt(source.startAt) }, 'started from a savepoint: the source startAt is not applied');
  }

  const bundleKey = objectKeys.bundle(id, actual);
  await bundle.storeAt(store, bundleKey);
  await store.put(objectKeys.manifest(id, actual), new TextEncoder().encode(manifestJson));
  // A generator source (sdk/generator.ts) makes its records in the job: it has no stream.
  for (const source of manifest.sources) if (!source.generator) await ensureSourceStream(nc, source, ctx.natsReplicas);
  await ensureSinkStreams(nc, manifest.stages.flatMap((s) => s.sinks), ctx.natsReplicas);
  await ensureDeadLetterStream(nc, ctx.natsReplicas);
  // Per source, in the flat split space (core/manifest.ts splitRanges); a source without a
  // startAt starts at the beginning of its stream, as before.
  let initialPositions: SourcePosition[] | undefined;
  if (!fromSavepoint && startAt.size > 0) {
    initialPositions = [];
    for (const range of splitRanges(manifest)) {
      const at = startAt.get(range.spec.stream);
      if (at === undefined) continue;
      const positions = await resolveStartPositions(nc, range.spec, at);
      initialPositions.push(...positions.map((p) => ({ split: range.firstSplit + p.split, nextSequence: p.nextSequence })));
      logger.info({ jobId: id, stream: range.spec.stream, startAt: describeStartAt(at), sequence: positions[0]?.nextSequence }, 'source start resolved');
    }
  }

  return new Job(
    {
      id,
      manifest,
      manifestJson,
      sha256: actual,
      bundleKey,
      submittedAtMs: Date.now(),
      epoch: 0 as Epoch,
      // Started from a savepoint, the job's first deploy restores it like a checkpoint.
      checkpoints: fromSavepoint ? [fromSavepoint] : [],
      lastCheckpointId: Math.max(existing?.lastCheckpointId ?? 0, fromSavepoint?.id ?? 0),
      restarts: 0,
      // Savepoints outlive the job that took them (the garbage collector keeps what they name).
      savepoints: existing?.savepoints ?? [],
      ...(initialPositions && { initialPositions }),
      // A new submit starts over: its input or its code may differ.
      poison: new PoisonRecords(),
    },
    'SUBMITTED',
    logger,
  );
}

/**
 * Reads a savepoint for a (new version of a) job: every keyed stage of the savepoint must
 * exist in the new manifest, by id, unless its state may be dropped.
 */
async function loadSavepoint(store: ObjectStore, logger: Logger, manifest: JobManifest, path: string, allowNonRestoredState: boolean): Promise<CompletedCheckpoint> {
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
  // Event times are not remapped: the new bundle's splits re-derive their watermarks.
  const { sourceEventTimes: _notRemapped, ...kept } = metadata;
  return { id: metadata.checkpointId, metadataKey: path, metadata: { ...kept, sources, splitStreams: splitStreams(manifest) }, completedAtUnixMs: metadata.createdAtUnixMs, durationMs: 0, bytes: 0 };
}

/**
 * The startAt of each of the job's sources, by stream: the submit's override, else the
 * manifest's. An override must name a source of the job, once, and cannot go with a savepoint
 * (whose positions rule).
 */
function startAtOf(manifest: JobManifest, options: SubmitOptions): Map<string, StartAtSpec> {
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
    if (manifest.sources.some((s) => s.stream === o.source && s.generator)) throw new InvalidArgumentError(`start at: source ${o.source} is a generator; it has no stream to start in`);
    seen.add(o.source);
    out.set(o.source, o.startAt);
  }
  return out;
}
