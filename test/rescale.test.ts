// Elastic workers: key groups move to a worker that joins and away from one that leaves
// (SIGTERM) at checkpoint boundaries while the job runs. No recovery happens (the job never
// restarts), and the final state and the exactly-once sink equal an expectation computed in the
// test, record for record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, CX_JOB } from './kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { keyGroupsOf } from '../core/key-groups.ts';

type Client = EddyClient;

/** Key groups per worker in the job's current assignment. */
async function keyGroupsByWorker(client: Client): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const w of await client.listWorkers()) {
    const a = w.assignments.find((x) => x.jobId === CX_JOB);
    if (a && w.state !== 'DEAD') out.set(w.workerId, [...keyGroupsOf(a.keyGroups.map((r) => ({ start: r.start, end: r.end })))]);
  }
  return out;
}

async function balancedOver(client: Client, workers: readonly string[]): Promise<boolean> {
  const byWorker = await keyGroupsByWorker(client);
  const counts = workers.map((w) => byWorker.get(w)?.length ?? 0);
  const others = [...byWorker].filter(([w, kgs]) => !workers.includes(w) && kgs.length > 0);
  return others.length === 0 && counts.reduce((a, b) => a + b, 0) === 128 && Math.max(...counts) - Math.min(...counts) <= 1;
}

test('rescale - scale 1 → 3 → 2 while 200,000 events flow: exact state, exactly-once output, no restart', { timeout: 300_000 }, async () => {
  const cluster = await startCluster({ workers: 1, workerTimeoutMs: 10_000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-rescale-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(200_000, 2_000);
  let producer: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).length === 1, { timeoutMs: 15_000, what: 'one worker' });
    await submitCx(client, join(dir, 'cache'));
    producer = publishSteadily(nc, events);
    const progressed = async (n: number) => {
      const before = Number((await client.getJob(CX_JOB)).checkpoints!.latestId);
      await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints!.latestId) >= before + n, { timeoutMs: 60_000, what: `${n} more checkpoints` });
    };
    await progressed(2);

    // Scale out: two workers join; key groups spread over three, a batch per checkpoint.
    await cluster.addWorker('worker-2');
    await cluster.addWorker('worker-3');
    await waitFor(() => balancedOver(client, ['worker-1', 'worker-2', 'worker-3']), { timeoutMs: 60_000, what: 'key groups balanced over three workers' });
    await progressed(2);

    // Scale in: SIGTERM one worker; it hands its key groups over and exits 0.
    const leaving = cluster.workers.find((w) => w.name === 'worker worker-2')!;
    await leaving.stop(60_000);
    assert.deepEqual(leaving.exitStatus(), { code: 0, signal: null }, 'the leaving worker exits 0');
    assert.match(leaving.output(), /"msg":"work handed over"/);
    await waitFor(() => balancedOver(client, ['worker-1', 'worker-3']), { timeoutMs: 60_000, what: 'key groups balanced over two workers' });

    await producer.done;
    await assertCxExactlyOnce(client, nc, cxExpectation(events));
    const job = await client.getJob(CX_JOB);
    assert.equal(job.restarts, 0, `no recovery was needed: ${job.lastFailure?.message ?? ''}`);
  } finally {
    if (process.env.EDDY_TEST_DUMP) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync('/tmp/rescale-coordinator.log', cluster.coordinator.output());
      for (const w of cluster.workers) writeFileSync(`/tmp/rescale-${w.name.replace(/ /g, '-')}.log`, w.output());
    }
    producer?.stop();
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
