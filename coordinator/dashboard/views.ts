// The dashboard's JSON views (api.ts) of what the coordinator holds: the job manager's jobs,
// the worker registry, the rebalancer's move under way and the dashboard's own history. The one
// file that reads job records, so that a change to their shape is met here only.
//
// A standby holds no job records: it shows the job directory the leader publishes
// (coordinator/job-directory.ts) — state, graph, key-group map, features — and leaves rates,
// checkpoint history and restarts to the leader's dashboard, which its page links to.
import { keyGroupsOf } from '../../core/key-groups.ts';
import { NotFoundError, excerpt } from '../../core/errors.ts';
import type { WorkerId } from '../../core/ids.ts';
import type { WorkerAssignment } from '../rebalancer.ts';
import type { DirectoryJob, JobDirectory } from '../job-directory.ts';
import type { JobManager } from '../job-manager.ts';
import type { Job } from '../job.ts';
import type { WorkerRegistry } from '../worker-registry.ts';
import type { JobManifest } from '../../core/manifest.ts';
import { SLOW_CHECKPOINT_FACTOR } from './api.ts';
import type {
  CheckpointsView,
  ClusterView,
  FailureView,
  FeatureInfo,
  GraphEdge,
  GraphNode,
  JobDetail,
  JobStateName,
  JobSummary,
  KeyGroupMove,
  KeyGroupsView,
  RateSample,
  WorkerView,
} from './api.ts';
import type { JobHistory } from './job-history.ts';

export interface DashboardSources {
  jobs: JobManager;
  registry: WorkerRegistry;
  history: JobHistory;
  /** The coordinator's checkpoint interval (jobs have no interval of their own). */
  checkpointIntervalMs: number;
  /** The cluster's jobs as the leader published them: what a standby shows. */
  directory: JobDirectory;
  /** Whether this coordinator runs the jobs (else it reads the directory). */
  leading(): boolean;
  cluster(): ClusterView;
}

/** A job of the directory, or NotFoundError. */
function entryOf(s: DashboardSources, jobId: string): DirectoryJob {
  const job = s.directory.get(jobId);
  if (job === undefined) throw new NotFoundError(`job ${excerpt(jobId)} not found in the job directory the leader publishes`);
  return job;
}

function entrySummary(job: DirectoryJob, now: number): JobSummary {
  const e = job.entry;
  return {
    id: job.id,
    state: job.state,
    submittedAtUnixMs: e.submittedAtUnixMs,
    uptimeMs: live(job.state) ? Math.max(0, now - e.submittedAtUnixMs) : 0,
    epoch: job.epoch,
    restarts: e.restarts,
    // Counted by the leader from the workers' heartbeats; not known here.
    recordsIn: 0,
    recordsInPerSecond: 0,
    counted: false,
    maxParallelism: job.manifest.maxParallelism,
    features: features(job.manifest),
  };
}

const live = (state: string) => state !== 'CANCELLED' && state !== 'FAILED';

export function jobSummaries(s: DashboardSources, now = Date.now()): JobSummary[] {
  if (!s.leading()) return s.directory.list().map((job) => entrySummary(job, now));
  return s.jobs.list().map((job) => summary(s, job, now));
}

function summary(s: DashboardSources, job: Job, now: number): JobSummary {
  const stages = s.jobs.stageStatus(job);
  const sources = new Set(job.manifest.stages.filter((st) => st.kind === 'source').map((st) => st.id));
  let recordsIn = 0;
  let recordsInPerSecond = 0;
  for (const st of stages) {
    if (!sources.has(st.stageId)) continue;
    recordsIn += st.recordsIn;
    recordsInPerSecond += st.recordsInPerSecond;
  }
  return {
    id: job.id,
    state: job.state as JobStateName,
    submittedAtUnixMs: job.submittedAtMs,
    uptimeMs: live(job.state) ? Math.max(0, now - job.submittedAtMs) : 0,
    epoch: job.epoch,
    restarts: job.restarts,
    recordsIn,
    recordsInPerSecond,
    counted: true,
    maxParallelism: job.manifest.maxParallelism,
    features: features(job.manifest),
  };
}

function features(manifest: JobManifest): FeatureInfo[] {
  return manifest.stages.flatMap((st) => st.features.map((f) => ({ name: f.name, stageId: st.id, ...(f.history && { historyRetentionMs: f.history.retentionMs }) })));
}

/** Throws NotFoundError for an unknown job (JobManager.get). */
export function jobDetail(s: DashboardSources, jobId: string, now = Date.now()): JobDetail {
  if (!s.leading()) {
    const entry = entryOf(s, jobId);
    return { ...entrySummary(entry, now), graph: jobGraph(entry.manifest), stages: [], lastFailure: entry.entry.lastFailure ? failureView(entry.entry.lastFailure) : null, restartHistory: [], rates: [] };
  }
  const job = s.jobs.get(jobId);
  const f = job.lastFailure;
  return {
    ...summary(s, job, now),
    graph: jobGraph(job.manifest),
    stages: s.jobs.stageStatus(job),
    lastFailure: f ? failureView(f) : null,
    restartHistory: s.history.restarts(job.id),
    rates: s.history.rates(job.id),
  };
}

export function failureView(f: FailureView): FailureView {
  return { message: f.message, stageId: f.stageId, keyGroup: f.keyGroup, workerId: f.workerId, stack: f.stack, atUnixMs: f.atUnixMs };
}

/** The job's last failure, for a recovery event (the event does not name stage and key group). */
export function lastFailureOf(s: DashboardSources, jobId: string): FailureView | null {
  try {
    return s.jobs.get(jobId).lastFailure ?? null;
  } catch {
    return null;
  }
}

/** Sources, stages and sinks with the edges between them (core/manifest.ts: edges point forward). */
export function jobGraph(manifest: JobManifest): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  manifest.sources.forEach((src) => nodes.push({ id: `source:${src.stream}`, kind: 'source', label: src.stream, detail: `${src.partitions} partition${src.partitions === 1 ? '' : 's'}` }));
  for (const stage of manifest.stages) {
    nodes.push({ id: stage.id, kind: 'stage', label: stage.id, detail: stage.kind, operators: stage.operators.map((op) => (op.name && op.name !== op.kind ? `${op.kind} ${op.name}` : op.kind)) });
    const src = stage.source !== undefined ? manifest.sources[stage.source] : undefined;
    if (src) edges.push({ from: `source:${src.stream}`, to: stage.id, kind: 'forward' });
    for (const op of stage.operators) {
      if (!op.to) continue;
      const side = sideOutputOf(stage.operators, op);
      edges.push({ from: stage.id, to: op.to.stage, kind: op.kind === 'broadcast' ? 'broadcast' : 'shuffle', ...(side !== undefined && { label: side }) });
    }
    stage.sinks.forEach((sink, i) => {
      const id = `sink:${stage.id}:${i}`;
      const label = sink.kind === 'files' ? sink.path : sink.kind === 'jetstream-routed' ? `${sink.subjectPrefix}.>` : sink.subject;
      // A side output is named on the sink itself, or on an operator of the chain it takes.
      const side = sink.sideOutput ?? (sink.input !== undefined && stage.operators[sink.input] ? sideOutputOf(stage.operators, stage.operators[sink.input]!) : undefined);
      nodes.push({ id, kind: 'sink', label, detail: sink.kind });
      edges.push({ from: stage.id, to: id, kind: side !== undefined ? 'side' : 'forward', ...(side !== undefined && { label: side }) });
    });
  }
  return { nodes, edges };
}

/** The side output an operator's chain starts from, if any (to label the edge it ends in). */
function sideOutputOf(operators: JobManifest['stages'][number]['operators'], op: JobManifest['stages'][number]['operators'][number]): string | undefined {
  for (let cur: typeof op | undefined = op, hops = 0; cur && hops <= operators.length; hops++) {
    if (cur.sideOutput !== undefined) return cur.sideOutput;
    cur = cur.input !== undefined ? operators[cur.input] : undefined;
  }
  return undefined;
}

export function checkpointsView(s: DashboardSources, jobId: string): CheckpointsView {
  if (!s.leading()) {
    const entry = entryOf(s, jobId);
    return { jobId: entry.id, kept: false, intervalMs: s.checkpointIntervalMs, completed: 0, failed: 0, inFlightId: 0, lastFailure: '', history: [], medianDurationMs: 0, retained: [], savepoints: [] };
  }
  const job = s.jobs.get(jobId);
  const stats = job.checkpointStats;
  const ref = (c: { id: number; metadataKey: string; completedAtUnixMs: number }) => ({ id: c.id, path: c.metadataKey, completedAtUnixMs: c.completedAtUnixMs });
  return {
    jobId: job.id,
    kept: true,
    intervalMs: s.checkpointIntervalMs,
    completed: stats.completed,
    failed: stats.failed,
    inFlightId: stats.inFlight,
    lastFailure: stats.lastFailure,
    ...s.history.checkpoints(job.id, SLOW_CHECKPOINT_FACTOR),
    retained: job.checkpoints.map(ref),
    savepoints: (job.savepoints ?? []).map(ref),
  };
}

function owners(assignment: ReadonlyMap<string, WorkerAssignment>, maxParallelism: number): string[] {
  const out = new Array<string>(maxParallelism).fill('');
  for (const [worker, a] of assignment) for (const kg of keyGroupsOf(a.keyGroups)) if (kg < maxParallelism) out[kg] = worker;
  return out;
}

export function keyGroupsView(s: DashboardSources, jobId: string): KeyGroupsView {
  const job = s.leading() ? s.jobs.get(jobId) : entryOf(s, jobId);
  const n = job.manifest.maxParallelism;
  const moveTo = 'movingTo' in job ? job.movingTo : s.jobs.rebalancer.inProgress(job.id)?.to;
  const moving: KeyGroupMove[] = [];
  if (moveTo) {
    const before = owners(job.assignment, n);
    const after = owners(moveTo, n);
    for (let kg = 0; kg < n; kg++) if (before[kg] !== after[kg]) moving.push({ keyGroup: kg, from: before[kg]!, to: after[kg]! });
  }
  return {
    jobId: job.id,
    maxParallelism: n,
    epoch: job.epoch,
    owners: owners(job.assignment, n),
    moving,
    workers: [...job.assignment].map(([id, a]) => ({ id, keyGroups: [...keyGroupsOf(a.keyGroups)].length, splits: [...a.splits], stateBytes: s.registry.get(id as WorkerId)?.stateBytes ?? 0 })),
  };
}

export function workerViews(s: DashboardSources, now = Date.now()): WorkerView[] {
  const all: ReadonlyArray<{ id: string; state: string; assignment: ReadonlyMap<string, WorkerAssignment> }> = s.leading() ? s.jobs.list() : s.directory.list();
  const jobs = all.filter((j) => j.state === 'RUNNING' || j.state === 'DEPLOYING' || j.state === 'RESTARTING');
  return s.registry.all().map((w) => ({
    id: w.id,
    state: w.state === 'ALIVE' && w.leaving ? 'LEAVING' : w.state,
    host: w.host,
    pid: w.pid,
    registeredAtUnixMs: w.registeredAtMs,
    heartbeatAgeMs: Math.max(0, now - w.lastHeartbeatMs),
    stateBytes: w.stateBytes,
    rssBytes: w.rssBytes ?? 0,
    cpuCores: w.cpuCores ?? 0,
    jobs: jobs
      .filter((j) => j.assignment.has(w.id))
      .map((j) => {
        const a = j.assignment.get(w.id)!;
        return { jobId: j.id, keyGroups: [...keyGroupsOf(a.keyGroups)].length, splits: a.splits.length };
      }),
  }));
}

/** A sample of every running job's stage rates, for the rate charts. */
export function sampleRates(s: DashboardSources, now = Date.now()): void {
  if (!s.leading()) return;
  for (const job of s.jobs.list()) {
    if (job.state !== 'RUNNING') continue;
    const sample: RateSample = { atUnixMs: now, stages: {} };
    for (const st of s.jobs.stageStatus(job)) sample.stages[st.stageId] = { in: st.recordsInPerSecond, out: st.recordsOutPerSecond };
    s.history.sampleRates(job.id, sample);
  }
}
