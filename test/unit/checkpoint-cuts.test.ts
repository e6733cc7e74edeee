// The checkpoint cut of a job on one worker (worker/checkpoint/checkpoint-cut.ts), with a real
// RocksDB state backend, checkpoint writer and file:// object store. A checkpoint is cut once:
// a barrier or trigger of it that comes after its cut completed starts no second cut, so the
// worker acknowledges it once. A leaving worker without sources once cut checkpoint N from its
// barriers, lost every key group in N's move, then got N's late trigger and cut N again; the
// coordinator took the second acknowledgement for a forgery and aborted the move.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointCuts } from '../../worker/checkpoint/checkpoint-cut.ts';
import { CheckpointWriter } from '../../worker/checkpoint/checkpoint-writer.ts';
import { FileObjectStore } from '../../core/object-store.ts';
import { silentLogger } from '../../core/logger.ts';
import type { CheckpointAck } from '../../core/control.ts';
import type { JobId } from '../../core/ids.ts';
import { withBackends } from '../kit/state-backends.ts';
import { waitFor } from '../kit/index.ts';

const JOB = 'cuts-job' as JobId;
const stage = { stageId: 'counts', totals: () => ({ stageId: 'counts', recordsIn: 0, recordsOut: 0, deadLetters: 0, backpressureMs: 0, senders: 0 }) };

test('checkpoint cuts - a checkpoint cut from its barriers is not cut again by its late trigger or a stale barrier: one acknowledgement', () =>
  withBackends(1, async ([backend]) => {
    const dir = await mkdtemp(join(tmpdir(), 'eddy-cuts-'));
    const acks: CheckpointAck[] = [];
    const cuts = new CheckpointCuts({
      jobId: JOB,
      epoch: 1,
      workerId: 'worker-1',
      backend: backend!,
      writer: new CheckpointWriter(new FileObjectStore(join(dir, 'store')), backend!, JOB, 'worker-1', ['counts']),
      counters: new Map([['counts', stage]]),
      logger: silentLogger,
      keyedTasks: () => 1,
      alignmentStatus: () => [],
      mayCut: () => true,
      running: () => true,
      atCut: () => undefined,
      abandoned: () => undefined,
      sendAck: (ack) => void acks.push(ack),
      uploaded: () => undefined,
    });
    try {
      backend!.writeBytes('counts', 3, 'count', 'k', undefined, Buffer.from([1]));
      // Barrier 7 reached the worker's one keyed task before 7's trigger did: the cut completes.
      await cuts.taskAligned(7, [], stage);
      assert.equal(cuts.lastCutId, 7);
      await waitFor(() => acks.length === 1, { timeoutMs: 5_000, what: 'the acknowledgement of 7' });
      // The trigger of 7 comes late (the runtime asks lastCutId first), and so does a stale barrier.
      assert.equal(cuts.begin(7), undefined, 'no second cut of 7');
      await cuts.taskAligned(7, [], stage);
      await cuts.whenUploaded();
      assert.equal(cuts.currentId, undefined);
      // The next checkpoint is cut as usual.
      await cuts.taskAligned(8, [], stage);
      await waitFor(() => acks.length === 2, { timeoutMs: 5_000, what: 'the acknowledgement of 8' });
      await cuts.whenUploaded();
      assert.deepEqual(acks.map((a) => [a.checkpointId, a.error]), [[7, ''], [8, '']], 'each checkpoint acknowledged once');
    } finally {
      cuts.close();
      await rm(dir, { recursive: true, force: true });
    }
  }));
