// A keyed task whose key group moves away at checkpoint N (worker/task/keyed-task.ts, "Moves"),
// over a real nats-server and RocksDB: the old owner processes the key group's batches up to
// barrier N and none after them, which belong to the new owner.
//
// The case that went wrong: the drain of the outgoing key group reached barrier N last (the task
// aligned) and went on to a clock tick queued behind it. Awaiting the tick let the cut complete
// (the move applied, the key group's queue dropped, the held channels let go); the drain then
// went on with the dropped queue and ran the batches after the barrier. Their records were
// processed twice, here and at the new owner, and counted twice (a fault test's join stage
// counted 119,894 records of 119,888).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, waitFor } from '../kit/index.ts';
import { job } from '../../sdk/index.ts';
import { ChannelSender } from '../../worker/channel/channel-sender.ts';
import { StateBackend } from '../../worker/state/state-backend.ts';
import { KeyedTask } from '../../worker/task/keyed-task.ts';
import { StageCounters } from '../../worker/task/stage-counters.ts';
import { ErrorPolicy } from '../../worker/task/error-policy.ts';
import { DeadLetters } from '../../worker/task/dead-letters.ts';
import type { StageOutput } from '../../worker/task/stage-output.ts';
import { silentLogger } from '../../core/logger.ts';
import type { JobId, StageId } from '../../core/ids.ts';

const JOB = 'moving' as JobId;
const STAGE = 'p';
const SENDER = 's1';
const STAYS = 0;
const LEAVES = 1;

interface Ev { id: string; slow?: boolean }

test('keyed task - a key group that moves away at checkpoint N runs nothing after its barrier N, though a clock tick queued behind the barrier is awaited at the cut', async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-keyed-move-'));
  const backend = await StateBackend.open({ path: join(dir, 'db') });
  const processed: string[] = [];
  let ticks = 0;
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));

  const j = job(JOB, { maxParallelism: 2 });
  j.source<Ev>('in', { partitions: 1, key: 'id' })
    .keyBy((e) => e.id)
    .process<Ev>(
      STAGE,
      async (e, ctx) => {
        processed.push(e.id);
        if (e.id === 'warm') ctx.timers.registerProcessingTime(ctx.timers.currentProcessingTime());
        if (e.slow === true) await gate;
        ctx.emit(e);
      },
      {
        // A stage with timers has a clock: a tick is queued for each key group every 100 ms.
        onTimer() {
          ticks++;
        },
      },
    );
  const plan = j.plan();
  const stage = plan.stages.find((s) => s.spec.id === STAGE)!;
  const counters = new StageCounters(STAGE);
  const failures: Error[] = [];
  const emitted: string[] = [];
  const output = { emit: (e: Ev) => emitted.push(e.id), emitSide() {}, setOrigin() {}, watermark() {}, atomically: (fn: () => void) => fn(), checkSinks: () => undefined, sender: undefined } as unknown as StageOutput;
  const aligned: number[] = [];
  // As the worker's cut does: once every key group aligned on N, the move applies and the task goes on.
  const task: KeyedTask = new KeyedTask({
    nc,
    jobId: JOB,
    manifest: plan.manifest,
    stage,
    keyGroups: [STAYS, LEAVES],
    upstreamSenders: [SENDER],
    backend,
    output,
    counters,
    errorPolicy: new ErrorPolicy({ policy: 'fail', jobId: JOB, stageId: STAGE, deadLetters: new DeadLetters(JOB, 'w1'), counters }),
    logger: silentLogger,
    onFailure: (e) => failures.push(e),
    onAligned: (id) => {
      aligned.push(id);
      task.applyMove(id);
      return Promise.resolve();
    },
    afterBatch: () => {},
  });
  const sender = new ChannelSender({ nc, jobId: JOB, toStage: STAGE as StageId, senderTask: SENDER, maxParallelism: 2, maxBatchRecords: 100, batchLingerMs: 1, channelWindow: 16, ackTimeoutMs: 10_000, onBroken: (e) => failures.push(e) });
  const record = (e: Ev) => ({ key: e.id, timestamp: -1, value: e });
  try {
    task.start();
    // Key group LEAVES moves to another worker at checkpoint 1.
    await task.prepareMove(1, [STAYS], [SENDER], [SENDER]);

    // Just after a tick of LEAVES (the timer "warm" registered fired), so the next one comes
    // 100 ms later: after the barrier and the records behind it are queued.
    sender.send(LEAVES, record({ id: 'warm' }));
    sender.flush();
    await waitFor(() => ticks >= 1, { timeoutMs: 10_000, what: 'a tick of the key group that leaves' });
    // LEAVES is busy with a slow record while barrier 1 and the new owner's records queue behind it.
    sender.send(LEAVES, record({ id: 'slow', slow: true }));
    sender.flush();
    await waitFor(() => processed.includes('slow'), { timeoutMs: 10_000, what: 'the slow record to start' });
    sender.sendBarrier(1);
    sender.send(STAYS, record({ id: 'after-stays' }));
    sender.send(LEAVES, record({ id: 'after-leaves' }));
    sender.flush();
    // Queued: STAYS's record after its barrier (held), and LEAVES's barrier, record and, within
    // 100 ms, a tick behind them.
    await waitFor(() => task.queuedBatches >= 4, { timeoutMs: 10_000, what: 'a tick queued behind barrier 1 of the key group that leaves' });
    openGate();

    await waitFor(() => processed.includes('after-stays'), { timeoutMs: 10_000, what: 'the key group that stays to go on after the cut' });
    assert.deepEqual(aligned, [1], 'the task aligned on barrier 1 once');
    await task.stop();
    assert.deepEqual(failures, []);
    assert.deepEqual(processed, ['warm', 'slow', 'after-stays'], 'the record after barrier 1 of the key group that left is the new owner\'s: not run here');
    assert.equal(counters.recordsIn, 3, 'and not counted here');
    assert.deepEqual(emitted.sort(), ['after-stays', 'slow', 'warm'], 'nor its output sent from here');
  } finally {
    await task.stop();
    await sender.close();
    await nc.close();
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  }
});
