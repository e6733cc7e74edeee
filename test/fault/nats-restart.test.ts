// A single nats-server is the whole transport, source and job store of a small Eddy cluster
// (README, "High availability"): killed with SIGKILL under load and started again on the same
// store and port, it comes back with every stream and the KV bucket, the processes reconnect, the
// job resumes from its latest checkpoint, and the results are exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, soakSize, soakTimeoutMs, cxEvents, cxExpectation, submitCx, assertCxExactlyOnce, publishCxResiliently, storedCxEvents, committedSourcePositions, clusterStore, CX_JOB } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';

test('nats restart - a single nats-server SIGKILLed under load and started again on its store: the job resumes and the results are exact', { timeout: soakTimeoutMs(240_000) }, async (t) => {
  const cluster = await startCluster({ workers: 2 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-nats-restart-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const store = clusterStore(cluster);
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 30_000, what: 'two live workers' });
    await submitCx(client, join(dir, 'cache'));
    // Enough events to flow through the restart and past the job's resumption.
    const events = cxEvents(soakSize(12_000, 200_000), 1_000, 41);
    const producer = publishCxResiliently(nc, events, 2_000);
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints!.latestId) >= 2, { timeoutMs: 90_000, what: 'two completed checkpoints' });

    const before = await committedSourcePositions(client, store, CX_JOB);
    const killedAt = Date.now();
    await cluster.nats.restart();
    t.diagnostic(`nats-server usable again ${Date.now() - killedAt} ms after its SIGKILL`);
    // The job goes on: a checkpoint triggered after the restart completes with every split further
    // on than the latest checkpoint before it.
    const resumed = await waitFor(async () => {
      const c = await committedSourcePositions(client, store, CX_JOB);
      return c.checkpointId >= before.checkpointId + 2 && c.nextSequences.length === 4 && c.nextSequences.every((next, i) => next > (before.nextSequences[i] ?? 0)) ? c : undefined;
    }, { timeoutMs: 90_000, intervalMs: 100, what: 'a checkpoint with progress on every split after the restart' });
    t.diagnostic(`time to resume after a restart of the only nats-server: ${Date.now() - killedAt} ms (checkpoint ${resumed.checkpointId}: every split read on from checkpoint ${before.checkpointId})`);

    await producer.done;
    t.diagnostic(`producer retries: ${producer.retries()}`);
    const job = await client.getJob(CX_JOB);
    assert.equal(job.state, 'RUNNING');
    await assertCxExactlyOnce(client, nc, cxExpectation(await storedCxEvents(nc, events.length)), 120_000, store);
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
