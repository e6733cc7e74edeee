// The rebalancer when the checkpoint before a move is still under way (CI saw a scale-out's move
// give up after 10 s and cost the job a recovery): the move waits and is tried again, and the
// workers it already joined to the job are not deployed a second time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobManifest } from '../../core/manifest.ts';
import { silentLogger } from '../../core/logger.ts';
import { parseWorkerId } from '../../core/ids.ts';
import { CheckpointNotStartedError, type CheckpointCoordinator, type CheckpointNowOptions, type CompletedCheckpoint } from '../../coordinator/checkpoint-coordinator.ts';
import { Rebalancer, type MovableJob } from '../../coordinator/rebalancer.ts';

const [w1, w2] = [parseWorkerId('worker-1'), parseWorkerId('worker-2')];
const manifest = { formatVersion: 2, name: 'orders', maxParallelism: 8, errorPolicy: 'fail', sources: [{ partitions: 1 }], stages: [] } as unknown as JobManifest;

test('rebalancer - a move whose checkpoint cannot start yet is tried again, without a recovery or a second join', async () => {
  const calls: string[] = [];
  let refusals = 1;
  // The checkpoint coordinator's side of a move: the first call finds a checkpoint still in
  // flight; the next runs the move's prepare step and completes.
  const checkpointer = {
    stats: { lastFailedAtMs: 0, lastCompletedAtMs: 0 },
    async checkpointNow(_deadlineMs: number, options: CheckpointNowOptions = {}): Promise<CompletedCheckpoint> {
      if (refusals-- > 0) throw new CheckpointNotStartedError('no checkpoint could start within 10 ms: checkpoint 7 is still in flight');
      await options.prepare?.(8);
      return { id: 8 } as CompletedCheckpoint;
    },
  } as unknown as CheckpointCoordinator;
  const job: MovableJob = {
    id: 'orders',
    manifest,
    state: 'RUNNING',
    epoch: 1,
    assignment: new Map([[w1, { keyGroups: [{ start: 0, end: 7 }], splits: [0] }]]),
    splitSenders: ['split-0'],
    checkpointer,
  };
  const recoveries: string[] = [];
  const rebalancer = new Rebalancer({
    available: () => [w1, w2],
    maxMovingKeyGroups: 128,
    checkpointTimeoutMs: 10,
    control: async (w, subject) => void calls.push(`move ${w} ${subject.split('.').at(-1)}`),
    join: async (_job, workers) => void calls.push(`join ${workers.join(',')}`),
    persist: () => {},
    recover: (_job, reason) => void recoveries.push(reason),
    logger: silentLogger,
  });
  rebalancer.request(job);
  await rebalancer.settled(job.id);

  assert.deepEqual(recoveries, [], 'no recovery');
  assert.equal(rebalancer.postponed, 1, 'the move was put off once');
  assert.equal(rebalancer.moves, 1, 'then carried out');
  assert.deepEqual(calls.filter((c) => c.startsWith('join')), ['join worker-2'], 'worker-2 joined the job once');
  assert.equal(calls.filter((c) => c.startsWith('move')).length, 2, 'both workers were told of the move, once');
  assert.deepEqual(
    [...job.assignment].map(([w, a]) => [w, a.keyGroups.reduce((n, r) => n + r.end - r.start + 1, 0)]),
    [['worker-1', 4], ['worker-2', 4]],
    'the key groups are spread over both',
  );
});
