// Elastic workers: key groups move to a worker that joins and away from one that leaves
// (SIGTERM) at checkpoint boundaries while the job runs. No recovery happens (the job never
// restarts), and the final state and the exactly-once sink equal an expectation computed in the
// test, record for record. Moves against a frozen or stopped object store are in
// rescale-moves.test.ts (a file of their own, so that the two run side by side).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { checkpointsOrIdle, startCluster, waitFor, soakSize, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, cxBalancedOver, CX_JOB } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';

test('rescale - scale 1 → 3 → 2 while events flow: exact state, exactly-once output, no restart', { timeout: 300_000 }, async (t) => {
  const started = Date.now();
  const step = (what: string) => t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
  const cluster = await startCluster({ workers: 1, workerTimeoutMs: 10_000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-rescale-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(soakSize(100_000, 200_000), 2_000);
  let producer: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).length === 1, { timeoutMs: 15_000, what: 'one worker' });
    await submitCx(client, join(dir, 'cache'));
    // The first half at the full rate (20,000 events a second); the second half trickles (1,000 a
    // second) until the scale-in is done, so that every move lands while records flow however long
    // the moves take, and then goes out at the full rate.
    producer = publishSteadily(nc, events, 2_000, { heldBack: events.length / 2, trickle: 100 });
    // n more checkpoints, or the job idle with everything in its latest one (no checkpoints while idle).
    const progressed = async (n: number) => checkpointsOrIdle(client, CX_JOB, { more: n, timeoutMs: 60_000 });
    // First two checkpoints of the running job, as the input flows: just after submit a
    // job that has read nothing yet counts as idle, and the scale-out would move key groups before
    // its first checkpoint.
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints?.latestId ?? 0) >= 2, { timeoutMs: 60_000, what: 'two checkpoints of the running job' });
    step('two checkpoints of the running job');

    // Scale out: two workers join; key groups spread over three, a batch per checkpoint.
    await cluster.addWorker('worker-2');
    await cluster.addWorker('worker-3');
    await waitFor(() => cxBalancedOver(client, ['worker-1', 'worker-2', 'worker-3']), { timeoutMs: 60_000, what: 'key groups balanced over three workers' });
    step('balanced over three workers');
    await progressed(2);
    step('two more checkpoints');

    // Scale in: SIGTERM one worker; it hands its key groups over and exits 0.
    const leaving = cluster.workers.find((w) => w.name === 'worker worker-2')!;
    await leaving.stop(60_000);
    assert.deepEqual(leaving.exitStatus(), { code: 0, signal: null }, 'the leaving worker exits 0');
    assert.match(leaving.output(), /"msg":"work handed over"/);
    await waitFor(() => cxBalancedOver(client, ['worker-1', 'worker-3']), { timeoutMs: 60_000, what: 'key groups balanced over two workers' });
    step(`balanced over two workers; ${(await client.getJob(CX_JOB)).stages[0]!.recordsIn} records read`);

    producer.release();
    await producer.done;
    step('input published');
    await assertCxExactlyOnce(client, nc, cxExpectation(events));
    step('exactly once');
    const job = await client.getJob(CX_JOB);
    assert.equal(job.restarts, 0, `no recovery was needed: ${job.lastFailure?.message ?? ''}`);
  } finally {
    producer?.stop();
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
