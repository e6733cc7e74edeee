// The inputs of a keyed stage, as its task sees them: which senders feed it (every split or
// worker of every upstream stage with an edge to it, one sender per edge), which of them carry
// watermarks, and which input (connect's first or second, or broadcast) a sender's records are
// for. The input is derived from the sender's name (core/subjects.ts senderNames.parse), so
// records carry no input tag and a split that moved to a new sender name still resolves.
import { carriesEventTime, splitRanges, splitSource, stageEdges, type JobManifest, type StageInputKind } from '../../core/manifest.ts';
import { senderNames } from '../../core/subjects.ts';

export interface UpstreamSenders {
  /** Every sender into the stage: alignment counts these times the key groups. */
  all: string[];
  /** The senders whose stage carries event time: the stage's watermark is the minimum over them. */
  watermark: string[];
}

/** The k-th edge of a stage (its k-th keyBy or broadcast operator), as senderNames.edge numbers them. */
function edgeIndex(manifest: JobManifest, stageId: string, operator: number): number {
  const stage = manifest.stages.find((s) => s.id === stageId)!;
  return stage.operators.slice(0, operator).filter((op) => op.kind === 'keyBy' || op.kind === 'broadcast').length;
}

/**
 * The senders into keyed stage `stageId`, given the workers running keyed stages and the current
 * sender name of each split.
 */
export function upstreamSenders(manifest: JobManifest, stageId: string, workers: readonly string[], splitSender: (split: number) => string, epoch: number): UpstreamSenders {
  const all: string[] = [];
  const watermark: string[] = [];
  const ranges = splitRanges(manifest);
  for (const e of stageEdges(manifest)) {
    if (e.to !== stageId) continue;
    const k = edgeIndex(manifest, e.from, e.operator);
    const from = manifest.stages.find((s) => s.id === e.from)!;
    const names: string[] = [];
    if (from.kind === 'source') {
      const r = ranges.find((x) => x.stageId === from.id)!;
      for (let p = r.firstSplit; p < r.firstSplit + r.partitions; p++) names.push(senderNames.edge(splitSender(p), k));
    } else {
      for (const w of workers) names.push(senderNames.edge(senderNames.stage(from.id, w, epoch), k));
    }
    all.push(...names);
    if (carriesEventTime(manifest, from.id)) watermark.push(...names);
  }
  return { all, watermark };
}

export interface StageInputRef {
  index: number;
  kind: StageInputKind;
}

/** Resolves a sender's name to the input of `stageId` its records are for (cached per name). */
export function inputResolver(manifest: JobManifest, stageId: string): (sender: string) => StageInputRef | undefined {
  const cache = new Map<string, StageInputRef | undefined>();
  return (sender) => {
    if (cache.has(sender)) return cache.get(sender);
    let ref: StageInputRef | undefined;
    const parsed = senderNames.parse(sender);
    if (parsed !== undefined) {
      let fromId: string | undefined;
      try {
        fromId = parsed.split !== undefined ? splitSource(manifest, parsed.split).stageId : parsed.stage;
      } catch {
        fromId = undefined;
      }
      const from = manifest.stages.find((s) => s.id === fromId);
      const edges = from?.operators.filter((op) => op.kind === 'keyBy' || op.kind === 'broadcast') ?? [];
      const to = edges[parsed.edge]?.to;
      if (to !== undefined && to.stage === stageId) {
        const kind = manifest.stages.find((s) => s.id === stageId)?.inputs?.[to.input];
        if (kind !== undefined) ref = { index: to.input, kind };
      }
    }
    if (cache.size < 100_000) cache.set(sender, ref);
    return ref;
  };
}
