// A job's counters as `eddy job`, the dashboard and the Prometheus counters show them
// (docs/ARCHITECTURE.md, "Counters"): totals per stage over the job's life, read from the latest
// completed checkpoint and the workers' heartbeats, and rates from samples taken at heartbeats.
import type { StageCounters } from '../core/control.ts';
import type { CompletedCheckpoint } from './checkpoint-coordinator.ts';
import type { Job, StageSampleTotals } from './job.ts';
import type { WorkerRegistry } from './worker-registry.ts';

export interface StageStatus {
  stageId: string;
  kind: string;
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
  recordsInPerSecond: number;
  recordsOutPerSecond: number;
  /** Milliseconds the stage's channel senders waited with full windows, summed over workers. */
  backpressureMs: number;
  /** Share of the sampled interval the stage's senders spent waiting with full windows (0..1). */
  backpressureRatio: number;
}

/** How far back rates look: samples older than this are dropped (two are always kept). */
const RATE_WINDOW_MS = 5000;

/** Samples a running job's counters for rates; called on every heartbeat. */
export function sampleJob(job: Job, registry: WorkerRegistry, now = Date.now()): void {
  job.samples.push({ atMs: now, stages: stageTotals(job, registry) });
  while (job.samples.length > 2 && now - job.samples[0]!.atMs > RATE_WINDOW_MS) job.samples.shift();
}

/**
 * Each stage's counters over the job's life: the totals of the latest completed checkpoint
 * (carried across recoveries, moves and coordinator restarts in its _metadata) plus what the
 * workers of the current epoch counted since their cuts that checkpoint holds. A recovery
 * therefore takes the counters back to the checkpoint, and the replay counts each record once
 * (what is shown meanwhile stays at its largest). Backpressure is since each worker's deploy.
 */
function stageTotals(job: Job, registry: WorkerRegistry): Map<string, StageSampleTotals & { deadLetters: number }> {
  // A runtime of an earlier epoch (being replaced) counted what the new one replays.
  // Workers of the job's assignment: one that left holds nothing and counts no more.
  const reports = registry.all().flatMap((w) => {
    const counters = job.assignment.has(w.id) ? w.jobs.get(job.id) : undefined;
    return counters && (Number(counters.epoch ?? 0) === 0 || Number(counters.epoch) === job.epoch) ? [counters] : [];
  });
  // The newest retained checkpoint every worker's last heartbeat is past (it reports a cut at or
  // after it; a worker without cuts: a checkpoint of an earlier epoch): its totals hold exactly
  // each worker's cuts up to it. A heartbeat sent before the worker cut the latest checkpoint
  // would otherwise count that worker's part of it twice.
  const past = (r: (typeof reports)[number], c: CompletedCheckpoint): boolean =>
    (r.cuts ?? []).length === 0 ? c.metadata.epoch !== job.epoch : (r.cuts ?? []).some((cut) => Number(cut.checkpointId) >= c.id);
  let base: CompletedCheckpoint | undefined = job.checkpoints[0];
  for (const c of job.checkpoints) if (reports.every((r) => past(r, c))) base = c;
  const totals = base?.metadata.counters ?? {};
  const out = new Map(job.manifest.stages.map((s) => [s.id, { recordsIn: totals[s.id]?.recordsIn ?? 0, recordsOut: totals[s.id]?.recordsOut ?? 0, deadLetters: totals[s.id]?.deadLetters ?? 0, backpressureMs: 0, senders: 0 }]));
  for (const counters of reports) {
    // Its counters at its last cut that checkpoint holds (none: all it counted is after it).
    let counted: StageCounters[] = [];
    const cuts = counters.cuts ?? [];
    for (const cut of cuts) if (base !== undefined && Number(cut.checkpointId) <= base.id) counted = cut.stages;
    // A base of this epoch, and no cut of this worker at or before it in its report: the report is
    // older than its cut of the base (no cuts: everything it reports is in the base already), or
    // its bounded list of cuts no longer reaches back to it. Its count at the base is unknown;
    // a lower bound is taken (its count at its oldest reported cut, or all it reports), since
    // what is shown only grows: an overcount would stay for good (a source counted twice once).
    if (base !== undefined && base.metadata.epoch === job.epoch && !cuts.some((cut) => Number(cut.checkpointId) <= base!.id)) {
      counted = cuts.length > 0 ? cuts[0]!.stages : counters.stages;
    }
    for (const c of counters.stages) {
      const s = out.get(c.stageId);
      if (!s) continue;
      const before = counted.find((x) => x.stageId === c.stageId);
      s.recordsIn += Number(c.recordsIn) - Number(before?.recordsIn ?? 0);
      s.recordsOut += Number(c.recordsOut) - Number(before?.recordsOut ?? 0);
      s.deadLetters += Number(c.deadLetters) - Number(before?.deadLetters ?? 0);
      s.backpressureMs += Number(c.backpressureMs ?? 0);
      s.senders += Number(c.senders ?? 0);
    }
  }
  // Within an epoch each record is counted once, so these never exceed the final totals: the
  // largest shown so far is exact once the replay caught up, and monotonic (a Prometheus counter).
  const shown = job.shownTotals;
  for (const [stage, s] of out) {
    const before = shown.get(stage);
    if (before !== undefined) {
      s.recordsIn = Math.max(s.recordsIn, before.recordsIn);
      s.recordsOut = Math.max(s.recordsOut, before.recordsOut);
      s.deadLetters = Math.max(s.deadLetters, before.deadLetters);
    }
    shown.set(stage, { recordsIn: s.recordsIn, recordsOut: s.recordsOut, deadLetters: s.deadLetters });
  }
  return out;
}

/** Each stage's totals and its rates over the sampled interval. */
export function stageStatus(job: Job, registry: WorkerRegistry): StageStatus[] {
  const totals = stageTotals(job, registry);
  const first = job.samples[0];
  const last = job.samples[job.samples.length - 1];
  const spanMs = first && last ? last.atMs - first.atMs : 0;
  // Counters restart at a redeploy: a negative difference means no rate yet, not a negative one.
  const perSecond = (a: number | undefined, b: number | undefined) => (spanMs > 0 ? Math.max(0, (((b ?? 0) - (a ?? 0)) * 1000) / spanMs) : 0);
  return job.manifest.stages.map((stage) => {
    const t = totals.get(stage.id)!;
    const a = first?.stages.get(stage.id);
    const b = last?.stages.get(stage.id);
    const senders = b?.senders ?? 0;
    return {
      stageId: stage.id,
      kind: stage.kind,
      recordsIn: t.recordsIn,
      recordsOut: t.recordsOut,
      deadLetters: t.deadLetters,
      recordsInPerSecond: perSecond(a?.recordsIn, b?.recordsIn),
      recordsOutPerSecond: perSecond(a?.recordsOut, b?.recordsOut),
      backpressureMs: t.backpressureMs,
      backpressureRatio: senders > 0 ? Math.min(1, perSecond(a?.backpressureMs, b?.backpressureMs) / 1000 / senders) : 0,
    };
  });
}
