// The flat split index space of a job's sources: source k's splits follow source k-1's, so
// assignment, sender names and checkpoint positions stay per split index.
import { InvalidArgumentError } from './errors.ts';
import type { JobManifest, SourceSpec } from './manifest-format.ts';

/** One source's splits in the flat split index space: [firstSplit, firstSplit + partitions). */
export interface SplitRange {
  /** Index in manifest.sources. */
  source: number;
  spec: SourceSpec;
  /** The source stage that reads it. */
  stageId: string;
  firstSplit: number;
  partitions: number;
}

/** The flat split index space: source k's splits follow source k-1's. */
export function splitRanges(manifest: JobManifest): SplitRange[] {
  let first = 0;
  return manifest.sources.map((spec, source) => {
    const stage = manifest.stages.find((s) => s.kind === 'source' && s.source === source);
    if (!stage) throw new InvalidArgumentError(`source ${source} has no source stage`);
    const range = { source, spec, stageId: stage.id, firstSplit: first, partitions: spec.partitions };
    first += spec.partitions;
    return range;
  });
}

/** What each split of the flat split space reads, as "<stream>.<partition>". */
export function splitStreams(manifest: JobManifest): string[] {
  return manifest.sources.flatMap((s) => Array.from({ length: s.partitions }, (_, p) => `${s.stream}.${p}`));
}

/**
 * Source positions of a checkpoint (by split index of the job that wrote it) in the split space
 * of `manifest`, matched by stream and partition. A checkpoint without splitStreams comes from a
 * one-source job: its splits are taken as the partitions of the manifest's first source.
 */
export function remapSourcePositions(checkpoint: { sources: Record<string, number>; splitStreams?: string[] }, manifest: JobManifest): Record<string, number> {
  const now = splitStreams(manifest);
  const before = checkpoint.splitStreams ?? now.filter((s) => s.startsWith(`${manifest.sources[0]!.stream}.`));
  const out: Record<string, number> = {};
  for (const [split, sequence] of Object.entries(checkpoint.sources)) {
    const name = before[Number(split)];
    const index = name === undefined ? -1 : now.indexOf(name);
    if (index >= 0) out[String(index)] = sequence;
  }
  return out;
}

/** How many source splits the job has in all. */
export function splitCount(manifest: JobManifest): number {
  return manifest.sources.reduce((n, s) => n + s.partitions, 0);
}

/** The source, and the partition of its stream, that a flat split index reads. */
export function splitSource(manifest: JobManifest, split: number): SplitRange & { partition: number } {
  for (const r of splitRanges(manifest)) if (split >= r.firstSplit && split < r.firstSplit + r.partitions) return { ...r, partition: split - r.firstSplit };
  throw new InvalidArgumentError(`split ${split} is outside the job's ${splitCount(manifest)} splits`);
}
