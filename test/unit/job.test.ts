// The coordinator's Job (coordinator/job.ts): its lifecycle moves only as the lifecycle allows,
// each move logged, and what it persists holds no live object, in process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Job, type JobState } from '../../coordinator/job.ts';
import { PoisonRecords } from '../../coordinator/poison-records.ts';
import { parseJobId, type Epoch } from '../../core/ids.ts';
import type { CompletedCheckpoint } from '../../coordinator/checkpoint-coordinator.ts';
import type { JobManifest } from '../../core/manifest.ts';

const manifest = { formatVersion: 2, name: 'orders', maxParallelism: 8, errorPolicy: 'fail', sources: [], stages: [] } as unknown as JobManifest;

function newJob(state: JobState, lines: string[] = []): Job {
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
  return new Job(
    { id: parseJobId('orders'), manifest, manifestJson: JSON.stringify(manifest), sha256: 'a'.repeat(64), bundleKey: 'jobs/orders/bundles/a.js', submittedAtMs: 1, epoch: 0 as Epoch, checkpoints: [], savepoints: [], lastCheckpointId: 0, restarts: 0, poison: new PoisonRecords() },
    state,
    logger,
  );
}

test('job - the lifecycle refuses a move it does not allow, changing nothing, and logs each move it makes', () => {
  const lines: string[] = [];
  const job = newJob('SUBMITTED', lines);
  job.transition('DEPLOYING');
  job.transition('RUNNING');
  assert.throws(() => job.transition('DEPLOYING'), /job orders cannot go from RUNNING to DEPLOYING/);
  assert.equal(job.state, 'RUNNING');
  job.transition('RESTARTING');
  job.transition('DEPLOYING');
  job.transition('FAILED');
  job.transition('CANCELLED');
  for (const to of ['SUBMITTED', 'DEPLOYING', 'RUNNING', 'RESTARTING', 'FAILED'] as const) assert.throws(() => job.transition(to), /cannot go from CANCELLED/);
  const moves = lines.map((l) => JSON.parse(l) as { msg: string; jobId: string; from: string; to: string });
  assert.deepEqual(moves.map((m) => `${m.from}>${m.to}`), ['SUBMITTED>DEPLOYING', 'DEPLOYING>RUNNING', 'RUNNING>RESTARTING', 'RESTARTING>DEPLOYING', 'DEPLOYING>FAILED', 'FAILED>CANCELLED']);
  assert.ok(moves.every((m) => m.msg === 'job state' && m.jobId === 'orders'));
});

test('job - what it persists is plain data with no live object, and names the unpublished checkpoints', () => {
  const job = newJob('RUNNING');
  const checkpoint = (id: number): CompletedCheckpoint => ({ id, metadataKey: `jobs/orders/checkpoints/${id}/_metadata`, metadata: { outputs: [`jobs/orders/checkpoints/${id}/output-w.ndjson`] } as never, completedAtUnixMs: id, durationMs: 5, bytes: 10 });
  job.checkpoints.push(checkpoint(3), checkpoint(4));
  job.awaitPublication(checkpoint(3));
  job.awaitPublication(checkpoint(4));
  job.assignment.set('w' as never, { keyGroups: [], splits: [0] });
  job.channelKey = new Uint8Array(32);
  const stored = job.toStored();
  assert.deepEqual(JSON.parse(JSON.stringify(stored)), stored, 'plain data: nothing lost as JSON');
  assert.equal(stored.publishedCheckpointId, 2);
  assert.deepEqual(stored.unpublishedCheckpoints?.map((c) => c.id), [3, 4]);
  assert.ok(!JSON.stringify(stored).includes('channelKey') && !('assignment' in stored), 'live objects stay out of the job store');
  assert.equal(job.published(3), true);
  assert.equal(job.published(3), false, 'confirmed once');
  assert.equal(job.toStored().publishedCheckpointId, 3);
});
