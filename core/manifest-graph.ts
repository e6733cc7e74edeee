// Reading the job graph: the edges between stages, which stages carry event time, which stage
// serves a feature.
import type { FeatureSpec, JobManifest, StageInputKind, StageSpec, StateSpec } from './manifest-format.ts';

/** A keyBy or broadcast operator sending to a keyed stage's input. */
export interface StageEdge {
  from: string;
  /** The operator's index in its stage. */
  operator: number;
  to: string;
  input: number;
  kind: StageInputKind;
}

/** Every edge of the graph, in stage and operator order. */
export function stageEdges(manifest: JobManifest): StageEdge[] {
  const out: StageEdge[] = [];
  for (const s of manifest.stages) {
    s.operators.forEach((op, operator) => {
      if ((op.kind === 'keyBy' || op.kind === 'broadcast') && op.to) out.push({ from: s.id, operator, to: op.to.stage, input: op.to.input, kind: op.kind === 'keyBy' ? 'keyed' : 'broadcast' });
    });
  }
  return out;
}

/**
 * Whether a stage's output carries event time (and watermarks): a source stage when its source
 * assigns timestamps, a keyed stage when any of its inputs does.
 */
export function carriesEventTime(manifest: JobManifest, stageId: string): boolean {
  const stage = manifest.stages.find((s) => s.id === stageId);
  if (!stage) return false;
  if (stage.kind === 'source') return manifest.sources[stage.source!]?.eventTime !== undefined;
  return stageEdges(manifest).some((e) => e.to === stageId && carriesEventTime(manifest, e.from));
}

/** Finds the stage that serves a feature. */
export function findFeature(manifest: JobManifest, feature: string): { stage: StageSpec; spec: FeatureSpec; state: StateSpec } | undefined {
  for (const stage of manifest.stages) {
    const spec = stage.features.find((f) => f.name === feature);
    if (spec) return { stage, spec, state: stage.states.find((s) => s.name === spec.state)! };
  }
  return undefined;
}
