// The dashboard's views (coordinator/dashboard/views.ts) of a leader's job records and of a
// standby's job directory, over small stand-ins for the job manager, the registry and the
// directory: a move under way shows in the key-group map, the last failure and the restarts with
// their causes show on the job, and a standby says what only the leader has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobManifest } from '../../core/manifest.ts';
import type { DashboardSources } from '../../coordinator/dashboard/views.ts';
import { checkpointsView, jobDetail, jobSummaries, keyGroupsView, workerViews } from '../../coordinator/dashboard/views.ts';
import { JobHistory } from '../../coordinator/dashboard/job-history.ts';
import type { ClusterView } from '../../coordinator/dashboard/api.ts';
import type { DirectoryJob } from '../../coordinator/job-directory.ts';

const manifest = {
  name: 'j',
  maxParallelism: 8,
  sources: [{ stream: 'events', partitions: 2 }],
  stages: [
    { id: 'read', kind: 'source', source: 0, operators: [{ kind: 'keyBy', to: { stage: 'count' } }], sinks: [], features: [] },
    { id: 'count', kind: 'keyed', operators: [{ kind: 'process' }], sinks: [{ kind: 'jetstream', subject: 'out' }], features: [{ name: 'total' }] },
  ],
} as unknown as JobManifest;

const all = (worker: string) => new Map([[worker, { keyGroups: [{ start: 0, end: 7 }], splits: [0, 1] }]]);
const halves = new Map([
  ['w1', { keyGroups: [{ start: 0, end: 3 }], splits: [0] }],
  ['w2', { keyGroups: [{ start: 4, end: 7 }], splits: [1] }],
]);
const failure = { message: 'boom', stageId: 'count', keyGroup: 5, workerId: 'w1', stack: 'Error: boom\n    at process', atUnixMs: 1_000 };

function sources(o: { leading: boolean; job?: object; moveTo?: Map<string, unknown>; entry?: DirectoryJob }): DashboardSources {
  const job = { id: 'j', manifest, state: 'RUNNING', submittedAtMs: 0, epoch: 3, restarts: 1, assignment: all('w1'), lastFailure: failure, checkpointStats: { completed: 0, failed: 0, inFlight: 0, lastFailure: '' }, checkpoints: [], ...o.job };
  const worker = (id: string) => ({ id, state: 'ALIVE', pid: 1, host: 'h', registeredAtMs: 0, lastHeartbeatMs: Date.now(), jobs: new Map(), runningJobs: new Set(), leaving: false, stateBytes: id === 'w1' ? 4096 : 0 });
  const cluster: ClusterView = o.leading ? { role: 'LEADER', leader: null } : { role: 'STANDBY', leader: { address: 'l:7400', term: 2, dashboardUrl: 'http://l:7480/' } };
  return {
    jobs: {
      list: () => [job],
      get: () => job,
      stageStatus: () => [],
      rebalancer: { inProgress: () => (o.moveTo ? { from: job.assignment, to: o.moveTo, startedAtMs: 0 } : undefined) },
    } as never,
    registry: { get: (id: string) => worker(id), all: () => [worker('w1'), worker('w2')] } as never,
    history: new JobHistory(),
    checkpointIntervalMs: 1000,
    directory: { get: (id: string) => (id === 'j' ? o.entry : undefined), list: () => (o.entry ? [o.entry] : []) } as never,
    leading: () => o.leading,
    cluster: () => cluster,
  };
}

test('dashboard views - a move under way: the key groups changing owner, from whom to whom', () => {
  const s = sources({ leading: true, moveTo: halves });
  const v = keyGroupsView(s, 'j');
  assert.deepEqual(v.owners, Array(8).fill('w1'), 'owners are the current assignment until the move completes');
  assert.deepEqual(v.moving, [4, 5, 6, 7].map((keyGroup) => ({ keyGroup, from: 'w1', to: 'w2' })));
  assert.deepEqual(v.workers, [{ id: 'w1', keyGroups: 8, splits: [0, 1], stateBytes: 4096 }], "each worker's state size");
  assert.deepEqual(keyGroupsView(sources({ leading: true }), 'j').moving, [], 'no move, nothing moving');
});

test('dashboard views - the last failure with stage, key group and stack; restarts with their causes', () => {
  const s = sources({ leading: true });
  s.history.record({ type: 'recovery-started', jobId: 'j', cause: 'task-failure', failure: 'boom', atUnixMs: 1_000 }, failure);
  s.history.record({ type: 'recovery-started', jobId: 'j', cause: 'worker-lost', failure: 'worker w2 is gone', atUnixMs: 2_000 }, null);
  const d = jobDetail(s, 'j');
  assert.deepEqual(d.lastFailure, failure);
  assert.deepEqual(
    d.restartHistory.map((r) => [r.cause, r.message, r.stageId, r.keyGroup]),
    [
      ['task-failure', 'boom', 'count', 5],
      ['worker-lost', 'worker w2 is gone', '', -1],
    ],
  );
  assert.deepEqual(d.graph.nodes.map((n) => [n.id, n.kind]), [['source:events', 'source'], ['read', 'stage'], ['count', 'stage'], ['sink:count:0', 'sink']]);
  assert.equal(d.counted, true);
});

test('dashboard views - a standby shows the directory: state, graph, key groups with the move, and says what only the leader has', () => {
  const entry: DirectoryJob = {
    id: 'j',
    manifest,
    state: 'RUNNING',
    epoch: 4,
    assignment: all('w1'),
    movingTo: halves,
    lastFailure: failure,
    entry: { jobId: 'j', term: 2, state: 'RUNNING', epoch: 4, submittedAtUnixMs: 0, restarts: 2, manifestJson: '{}', assignment: [], lastFailure: failure },
  };
  // The job manager of a standby holds nothing; everything comes from the directory.
  const s = sources({ leading: false, entry, job: { id: 'other' } });
  const [summary] = jobSummaries(s);
  assert.deepEqual([summary!.id, summary!.state, summary!.epoch, summary!.restarts, summary!.counted], ['j', 'RUNNING', 4, 2, false]);
  assert.deepEqual(summary!.features.map((f) => f.name), ['total']);
  const d = jobDetail(s, 'j');
  assert.equal(d.graph.nodes.length, 4);
  assert.deepEqual(d.lastFailure, failure);
  assert.deepEqual([d.stages, d.rates, d.restartHistory], [[], [], []]);
  assert.equal(checkpointsView(s, 'j').kept, false);
  const kg = keyGroupsView(s, 'j');
  assert.deepEqual(kg.moving.map((m) => m.keyGroup), [4, 5, 6, 7]);
  assert.deepEqual(workerViews(s).map((w) => [w.id, w.jobs]), [['w1', [{ jobId: 'j', keyGroups: 8, splits: 2 }]], ['w2', []]]);
  assert.throws(() => jobDetail(s, 'nope'), /not found/);
});
