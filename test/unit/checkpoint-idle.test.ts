// coordinator/checkpoint-idle.ts: a job is idle only when every worker's newest cut is the latest
// checkpoint and its counters have not moved since.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { idleSince } from '../../coordinator/checkpoint-idle.ts';
import type { JobCounters } from '../../core/control.ts';

const stage = (recordsIn: number, recordsOut = 0, deadLetters = 0) => ({ stageId: 's', recordsIn, recordsOut, deadLetters, backpressureMs: 0, senders: 0 });
const report = (now: number, cuts: Array<[number, number]>, epoch = 3): JobCounters => ({
  jobId: 'j',
  epoch,
  stages: [stage(now)],
  cuts: cuts.map(([checkpointId, recordsIn]) => ({ checkpointId, stages: [stage(recordsIn)] })),
});

test('checkpoint idle - idle only when every worker is past the checkpoint with unchanged counters', () => {
  const reports = new Map<string, JobCounters>([
    ['w1', report(10, [[6, 4], [7, 10]])],
    ['w2', report(5, [[7, 5]])],
  ]);
  const get = (w: string) => reports.get(w);
  assert.equal(idleSince(7, 3, ['w1', 'w2'], get), true);
  // A record since the cut.
  reports.set('w2', report(6, [[7, 5]]));
  assert.equal(idleSince(7, 3, ['w1', 'w2'], get), false);
  reports.set('w2', report(5, [[7, 5]]));
  // A newer cut (an aborted checkpoint's) holds changes checkpoint 7 does not.
  reports.set('w1', report(10, [[7, 10], [8, 10]]));
  assert.equal(idleSince(7, 3, ['w1', 'w2'], get), false);
  reports.set('w1', report(10, [[7, 10]]));
  // A heartbeat from before the worker cut checkpoint 7, another epoch, a missing report, no workers.
  assert.equal(idleSince(8, 3, ['w1', 'w2'], get), false);
  assert.equal(idleSince(7, 4, ['w1', 'w2'], get), false);
  assert.equal(idleSince(7, 3, ['w1', 'w2', 'w3'], get), false);
  assert.equal(idleSince(7, 3, [], get), false);
  // Output or dead letters without input (a timer) make the job busy too.
  reports.set('w1', { ...report(10, [[7, 10]]), stages: [stage(10, 1)] });
  assert.equal(idleSince(7, 3, ['w1', 'w2'], get), false);
});
