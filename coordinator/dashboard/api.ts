// The JSON the dashboard's HTTP API answers (coordinator/dashboard/http-server.ts) and its
// browser code (ui/) reads: one set of types for both sides. Times are ms since the epoch
// (`…UnixMs`) or durations (`…Ms`); rates are per second.

export type JobStateName = 'SUBMITTED' | 'DEPLOYING' | 'RUNNING' | 'RESTARTING' | 'CANCELLED' | 'FAILED';

export interface JobSummary {
  id: string;
  state: JobStateName;
  submittedAtUnixMs: number;
  /** Since submit while the job is live; 0 once it is cancelled or failed. */
  uptimeMs: number;
  epoch: number;
  restarts: number;
  /** Records read by the source stages (summed over workers since their deploy). */
  recordsIn: number;
  recordsInPerSecond: number;
  /** false on a standby: records, rates and stage counts are the leader's (ClusterView). */
  counted: boolean;
  maxParallelism: number;
  features: FeatureInfo[];
}

export interface FeatureInfo {
  name: string;
  stageId: string;
  /** Versions kept for as-of reads; absent: no history (as-of is refused). */
  historyRetentionMs?: number;
}

export type GraphNodeKind = 'source' | 'stage' | 'sink';

export interface GraphNode {
  id: string;
  kind: GraphNodeKind;
  /** What the node shows: a stream, a stage id, a sink's subject or path. */
  label: string;
  /** "keyed", "source", or the sink's kind. */
  detail: string;
  /** Operators chained in a stage, in order. */
  operators?: string[];
}

export interface GraphEdge {
  from: string;
  to: string;
  /** forward: same task; shuffle: keyBy over NATS; broadcast: to every key group; side: a side output. */
  kind: 'forward' | 'shuffle' | 'broadcast' | 'side';
  label?: string;
}

export interface StageView {
  stageId: string;
  kind: string;
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
  recordsInPerSecond: number;
  recordsOutPerSecond: number;
  backpressureMs: number;
  /** Share of the last seconds the stage's channel senders waited with full windows (0..1). */
  backpressureRatio: number;
}

export interface FailureView {
  message: string;
  stageId: string;
  /** -1: not of one key group. */
  keyGroup: number;
  workerId: string;
  stack: string;
  atUnixMs: number;
}

export interface RestartView {
  atUnixMs: number;
  /** worker-lost, task-failure, infrastructure, coordinator-restart, rescale. */
  cause: string;
  message: string;
  stageId: string;
  keyGroup: number;
}

export interface RateSample {
  atUnixMs: number;
  /** Per stage id: records in and out per second at that time. */
  stages: Record<string, { in: number; out: number }>;
}

export interface JobDetail extends JobSummary {
  graph: { nodes: GraphNode[]; edges: GraphEdge[] };
  stages: StageView[];
  lastFailure: FailureView | null;
  /** Recoveries this coordinator saw, newest last (restarts counts all, across coordinators). */
  restartHistory: RestartView[];
  /** The last minutes of stage rates, oldest first. */
  rates: RateSample[];
}

export interface CheckpointEntry {
  id: number;
  epoch: number;
  status: 'COMPLETED' | 'FAILED';
  startedAtUnixMs: number;
  durationMs: number;
  bytes: number;
  /** FAILED: why. */
  reason?: string;
  /** COMPLETED: each worker's acknowledgement time (from the trigger) and bytes uploaded. */
  workers?: Array<{ workerId: string; ackMs: number; bytes: number }>;
  /** COMPLETED and slower than SLOW_CHECKPOINT_FACTOR times the median of the history. */
  slow: boolean;
}

export interface RetainedCheckpoint {
  id: number;
  path: string;
  completedAtUnixMs: number;
}

export interface CheckpointsView {
  jobId: string;
  /** false on a standby: the leader keeps the checkpoint history (ClusterView). */
  kept: boolean;
  intervalMs: number;
  completed: number;
  failed: number;
  inFlightId: number;
  lastFailure: string;
  /** Completed and failed checkpoints this coordinator saw, oldest first. */
  history: CheckpointEntry[];
  /** Median duration of the completed ones in `history` (0: none). */
  medianDurationMs: number;
  retained: RetainedCheckpoint[];
  savepoints: RetainedCheckpoint[];
}

export interface KeyGroupMove {
  keyGroup: number;
  from: string;
  to: string;
}

export interface KeyGroupsView {
  jobId: string;
  maxParallelism: number;
  epoch: number;
  /** Owner of each key group (index = key group); "" when none. */
  owners: string[];
  /** Key groups changing owner in the move under way (none: no move). */
  moving: KeyGroupMove[];
  workers: Array<{ id: string; keyGroups: number; splits: number[]; stateBytes: number }>;
}

export interface WorkerView {
  id: string;
  state: 'ALIVE' | 'LEAVING' | 'DEAD';
  host: string;
  pid: number;
  registeredAtUnixMs: number;
  heartbeatAgeMs: number;
  stateBytes: number;
  /** 0: not reported. */
  rssBytes: number;
  /** Cores busy since the previous heartbeat (1.0 = one core); 0: not reported. */
  cpuCores: number;
  jobs: Array<{ jobId: string; keyGroups: number; splits: number }>;
}

export interface FeatureValueView {
  found: boolean;
  /** The value as JSON text ("" when not found). */
  valueJson: string;
  keyGroup: number;
  eventTimeUnixMs: number | null;
  checkpointId: number;
  uncommitted: boolean;
  beyondRetention: boolean;
}

export interface FeatureLookup {
  jobId: string;
  feature: string;
  entityId: string;
  latest: FeatureValueView;
  committed: FeatureValueView;
  /** Present when asked with asOf. */
  asOf?: FeatureValueView & { asOfUnixMs: number };
}

/** One feature of an entity in a lookup of all the job's features. */
export interface EntityFeature {
  feature: string;
  stageId: string;
  latest: FeatureValueView;
  committed: FeatureValueView;
  /** With asOf, for a feature that keeps history; absent for one that keeps none. */
  asOf?: FeatureValueView & { asOfUnixMs: number };
}

/** /api/jobs/<job>/features?entity=<id>[&asOf=<time>]: every feature of the job for one entity. */
export interface EntityLookup {
  jobId: string;
  entityId: string;
  features: EntityFeature[];
}

/**
 * Who answers and who leads (/api/cluster). Every coordinator serves the dashboard; a standby
 * shows the cluster's jobs, their graphs, key-group maps and feature lookups from the job
 * directory the leader publishes (coordinator/job-directory.ts), while rates, checkpoint history
 * and restarts are the leader's: its page links to the leader's dashboard.
 */
export interface ClusterView {
  /** LEADER: this coordinator runs the jobs; STANDBY: it stands by (or is still taking over). */
  role: 'LEADER' | 'STANDBY';
  /** The leading coordinator as last seen; null while none is known. */
  leader: { address: string; term: number; dashboardUrl: string | null } | null;
}

/** One Server-Sent Event `update` of /api/events: everything the open page shows. */
export interface DashboardUpdate {
  atUnixMs: number;
  cluster: ClusterView;
  jobs: JobSummary[];
  workers: WorkerView[];
  /** With ?job=<id>: that job. */
  job?: JobDetail;
  checkpoints?: CheckpointsView;
  keyGroups?: KeyGroupsView;
}

/** Every error answer: HTTP status and this body. */
export interface ApiError {
  error: { code: string; message: string };
}

/** A completed checkpoint is slow when it took longer than this many times the median. */
export const SLOW_CHECKPOINT_FACTOR = 2;
