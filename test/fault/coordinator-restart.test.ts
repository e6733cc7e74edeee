// The coordinator keeps jobs, epochs and completed checkpoints in NATS KV: one killed with
// SIGKILL and started again resumes the running job from its latest completed checkpoint,
// without a resubmission, and the job's state and output stay exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, startCoordinator, waitFor, soakSize, soakTimeoutMs, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, CX_JOB, clusterStore } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';

test('checkpoint - a coordinator killed with SIGKILL and restarted resumes the job exactly once', { timeout: soakTimeoutMs(240_000) }, async () => {
  const cluster = await startCluster({ workers: 2 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-coord-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  // The restart happens after two checkpoints, a few seconds in: more events only make the test longer.
  const events = cxEvents(soakSize(30_000, 300_000), 1_000, 11);
  let second: Awaited<ReturnType<typeof startCoordinator>> | undefined;
  let producer: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    await submitCx(client, join(dir, 'cache'));
    producer = publishSteadily(nc, events, 1_000);
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints!.latestId) >= 2, { timeoutMs: 30_000, what: 'two completed checkpoints' });
    const before = await client.getJob(CX_JOB);

    cluster.coordinator.kill('SIGKILL');
    await cluster.coordinator.exited;
    second = await startCoordinator({ natsUrl: cluster.nats.url, storeDir: cluster.storeDir, grpcPort: Number(cluster.address.split(':')[1]) });

    // Same job, not resubmitted: a new epoch, restored from a checkpoint, checkpointing again.
    await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return j.state === 'RUNNING' && Number(j.epoch) > Number(before.epoch) && Number(j.checkpoints!.latestId) > Number(before.checkpoints!.latestId) ? j : undefined;
    }, { timeoutMs: 60_000, what: 'the job to resume under the restarted coordinator' });
    assert.match(second.output(), /job resumed from the job store/);

    await producer!.done;
    await assertCxExactlyOnce(client, nc, cxExpectation(events), 120_000, clusterStore(cluster));
  } finally {
    producer?.stop();
    client.close();
    await nc.close();
    await second?.stop();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
