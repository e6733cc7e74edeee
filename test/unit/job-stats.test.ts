// A job's stage totals (coordinator/job-stats.ts): the latest completed checkpoint's counters plus
// what each worker of the epoch counted since its cut of that checkpoint. A worker's report can lag
// behind its cuts (thread status is relayed), and its list of cuts is bounded: in both cases the
// records it counted before the base checkpoint are already in the base's totals, and adding them
// again showed a source stage at 6,000 records in of 3,000. Pure computation over the coordinator's
// records, in process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Job } from '../../coordinator/job.ts';
import { stageStatus } from '../../coordinator/job-stats.ts';
import { PoisonRecords } from '../../coordinator/poison-records.ts';
import { parseJobId, type Epoch, type WorkerId } from '../../core/ids.ts';
import type { CompletedCheckpoint } from '../../coordinator/checkpoint-coordinator.ts';
import type { WorkerRegistry } from '../../coordinator/worker-registry.ts';
import type { JobManifest } from '../../core/manifest.ts';

const EPOCH = 3 as Epoch;
const manifest = { formatVersion: 2, name: 'orders', maxParallelism: 8, errorPolicy: 'fail', sources: [], stages: [{ id: 'source-0', kind: 'source' }] } as unknown as JobManifest;

function runningJob(checkpoints: Array<{ id: number; epoch: number; recordsIn: number }>): Job {
  const job = new Job(
    { id: parseJobId('orders'), manifest, manifestJson: JSON.stringify(manifest), sha256: 'a'.repeat(64), bundleKey: 'jobs/orders/bundles/a.js', submittedAtMs: 1, epoch: EPOCH, checkpoints: [], savepoints: [], lastCheckpointId: 0, restarts: 0, poison: new PoisonRecords() },
    'RUNNING',
    pino({ level: 'silent' }),
  );
  for (const c of checkpoints) {
    job.checkpoints.push({ id: c.id, metadataKey: `jobs/orders/checkpoints/${c.id}/_metadata`, metadata: { epoch: c.epoch, counters: { 'source-0': { recordsIn: c.recordsIn, recordsOut: c.recordsIn, deadLetters: 0 } } } as never, completedAtUnixMs: c.id, durationMs: 5, bytes: 10 } satisfies CompletedCheckpoint);
  }
  return job;
}

/** A worker's heartbeat report: its counts now, and its counts at the cuts it lists. */
interface Report { worker: string; recordsIn: number; cuts: Array<{ checkpointId: number; recordsIn: number }> }

function registryOf(job: Job, reports: Report[]): WorkerRegistry {
  const stage = (recordsIn: number) => [{ stageId: 'source-0', recordsIn, recordsOut: recordsIn, deadLetters: 0 }];
  for (const r of reports) job.assignment.set(r.worker as WorkerId, { keyGroups: [], splits: [0] });
  const workers = reports.map((r) => ({
    id: r.worker as WorkerId,
    jobs: new Map([[job.id, { epoch: EPOCH, stages: stage(r.recordsIn), cuts: r.cuts.map((c) => ({ checkpointId: c.checkpointId, stages: stage(c.recordsIn) })) }]]),
  }));
  return { all: () => workers } as unknown as WorkerRegistry;
}

const recordsIn = (job: Job, reports: Report[]) => stageStatus(job, registryOf(job, reports))[0]!.recordsIn;

test('job stats - each worker adds what it counted since its cut of the newest checkpoint all workers are past', () => {
  // Checkpoint 7 holds 1,000 records: a cut 600 in and b cut 400 in; since then a counted 50, b 30.
  const job = runningJob([{ id: 6, epoch: 3, recordsIn: 500 }, { id: 7, epoch: 3, recordsIn: 1000 }]);
  const total = recordsIn(job, [
    { worker: 'a', recordsIn: 650, cuts: [{ checkpointId: 6, recordsIn: 300 }, { checkpointId: 7, recordsIn: 600 }] },
    { worker: 'b', recordsIn: 430, cuts: [{ checkpointId: 6, recordsIn: 200 }, { checkpointId: 7, recordsIn: 400 }] },
  ]);
  assert.equal(total, 1080);
});

test('job stats - a worker whose report is older than its first cut of this epoch is not counted twice', () => {
  // The only checkpoint of the epoch holds 3,000 records, all from worker a; its report was sent
  // before it cut (no cuts yet) and counts the same 3,000: they are in the checkpoint already.
  const job = runningJob([{ id: 9, epoch: 3, recordsIn: 3000 }]);
  const total = recordsIn(job, [{ worker: 'a', recordsIn: 3000, cuts: [] }]);
  assert.equal(total, 3000, 'the records of the base are counted once (6,000 before the fix)');
});

test('job stats - a worker whose bounded list of cuts no longer reaches the base checkpoint is not counted twice', () => {
  // Worker b's list starts after checkpoint 10 (the newest both are past, as a's list ends there):
  // its count at 10 is unknown, and its count at its oldest listed cut (11) is taken instead.
  const job = runningJob([{ id: 10, epoch: 3, recordsIn: 2000 }]);
  const total = recordsIn(job, [
    { worker: 'a', recordsIn: 1100, cuts: [{ checkpointId: 10, recordsIn: 1000 }] },
    { worker: 'b', recordsIn: 1300, cuts: [{ checkpointId: 11, recordsIn: 1200 }, { checkpointId: 12, recordsIn: 1250 }] },
  ]);
  assert.ok(total <= 2000 + 100 + 300, `at most the true total (2,400), got ${total}`);
  assert.ok(total >= 2000 + 100, `at least the base and a's records since it, got ${total}`);
});

test('job stats - totals shown never go down across a recovery', () => {
  const job = runningJob([{ id: 4, epoch: 3, recordsIn: 800 }]);
  assert.equal(recordsIn(job, [{ worker: 'a', recordsIn: 900, cuts: [{ checkpointId: 4, recordsIn: 800 }] }]), 900);
  // A recovery to checkpoint 4: the new runtime counts from zero, its report has no cuts.
  job.checkpoints.splice(0, 1, { ...job.checkpoints[0]!, metadata: { ...job.checkpoints[0]!.metadata, epoch: 2 } as never });
  assert.equal(recordsIn(job, [{ worker: 'a', recordsIn: 10, cuts: [] }]), 900, 'the replay catches up; what was shown stays');
});
