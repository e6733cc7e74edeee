// A job's per-stage counters and rates, summed over the workers' heartbeats: the totals now, and
// rates over the samples of the last few seconds (JobManager.sample on every heartbeat).
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

/** How long samples are kept for rates (at least two are). */
const SAMPLE_WINDOW_MS = 5000;

/** Takes a sample of a running job's counters. */
export function sampleJob(job: Job, registry: WorkerRegistry, now: number): void {
  job.samples.push({ atMs: now, stages: stageTotals(job, registry) });
  while (job.samples.length > 2 && now - job.samples[0]!.atMs > SAMPLE_WINDOW_MS) job.samples.shift();
}

function stageTotals(job: Job, registry: WorkerRegistry): Map<string, StageSampleTotals & { deadLetters: number }> {
  const out = new Map(job.manifest.stages.map((s) => [s.id, { recordsIn: 0, recordsOut: 0, deadLetters: 0, backpressureMs: 0, senders: 0 }]));
  for (const w of registry.all()) {
    const counters = w.jobs.get(job.id);
    if (!counters) continue;
    for (const c of counters.stages) {
      const s = out.get(c.stageId);
      if (!s) continue;
      s.recordsIn += Number(c.recordsIn);
      s.recordsOut += Number(c.recordsOut);
      s.deadLetters += Number(c.deadLetters);
      s.backpressureMs += Number(c.backpressureMs ?? 0);
      s.senders += Number(c.senders ?? 0);
    }
  }
  return out;
}

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
