// Exactly-once state under failure: three worker processes, 120,000 events (1,000,000 under
// `make soak`), and a random running worker killed with SIGKILL (and a fresh one started) again
// and again while the job runs. Afterwards every key's state equals an expectation computed in
// the test, the exactly-once sink holds every expected trigger once (no gap, no duplicate), and
// the feature-history part files hold every event once.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { checkpointsOrIdle, startCluster, s3Store, startS3Server, waitFor, soakSize, soakTimeoutMs, type Cluster, type S3Server, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, CX_JOB, type ChildHandle, clusterStore } from '../kit/index.ts';
import type { ObjectStore } from '../../core/object-store.ts';
import { EddyClient } from '../../cli/client.ts';

async function killAndReplace(t: TestContext, kills: number, start: () => Promise<Cluster>, storeOf: (cluster: Cluster) => ObjectStore = (c) => clusterStore(c)): Promise<void> {
  const started = Date.now();
  const step = (what: string) => t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
  const cluster = await start();
  const dir = await mkdtemp(join(tmpdir(), 'eddy-eo-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(soakSize(120_000, 1_000_000), 2_000);
  let producer: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 3, { timeoutMs: 15_000, what: 'three live workers' });
    await submitCx(client, join(dir, 'cache'));
    producer = publishSteadily(nc, events);
    const handles = new Map<string, ChildHandle>(cluster.workers.map((w) => [w.name.replace(/^worker /, ''), w]));
    for (let k = 0; k < kills; k++) {
      // Kill only once the job has recovered and checkpointed since the last kill: two more
      // checkpoints, or the job idle with everything in its latest one (none are taken while idle).
      const before = await client.getJob(CX_JOB);
      await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 60_000, what: `the job running before kill ${k + 1}` });
      await checkpointsOrIdle(client, CX_JOB, { timeoutMs: 60_000 });
      // A worker that runs part of the job (one that joined after the last recovery is idle).
      const running = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((a) => a.jobId === CX_JOB));
      const victim = running[Math.floor(Math.random() * running.length)]!.workerId;
      handles.get(victim)!.kill('SIGKILL');
      handles.delete(victim);
      const id = `replacement-${k + 1}`;
      handles.set(id, await cluster.addWorker(id));
      await waitFor(async () => (await client.getJob(CX_JOB)).restarts > before.restarts, { timeoutMs: 30_000, what: `the job to restart after kill ${k + 1}` });
      step(`kill ${k + 1} recovered; ${(await client.getJob(CX_JOB)).stages[0]!.recordsIn} records read`);
    }
    await producer!.done;
    step('input published');
    await assertCxExactlyOnce(client, nc, cxExpectation(events), 120_000, storeOf(cluster));
    step('exactly once');
    const job = await client.getJob(CX_JOB);
    assert.ok(job.restarts >= kills, `the job restarted after each kill (${job.restarts})`);
    // Recoveries must not take survivors down: a worker whose task failed because a peer died
    // once hung in a microtask loop and was declared dead too.
    const alive = new Set((await client.listWorkers()).filter((w) => w.state === 'ALIVE').map((w) => w.workerId));
    assert.deepEqual([...handles.keys()].filter((id) => !alive.has(id)), [], 'every worker not killed is alive');
  } finally {
    producer?.stop();
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

test('checkpoint - SIGKILLed workers, replaced while the job runs, lose and duplicate nothing (file://)', { timeout: soakTimeoutMs(300_000) }, (t) =>
  killAndReplace(t, soakSize(3, 12), () => startCluster({ workers: 3, workerTimeoutMs: 4000 })),
);

test('checkpoint - SIGKILLed workers, replaced while the job runs, lose and duplicate nothing (S3)', { timeout: soakTimeoutMs(300_000) }, async (t) => {
  let s3: S3Server | undefined;
  try {
    await killAndReplace(t, soakSize(2, 6), async () => {
      s3 = await startS3Server();
      return startCluster({ workers: 3, workerTimeoutMs: 4000, ...s3Store(s3) });
    }, (c) => clusterStore(c, s3));
  } finally {
    await s3?.[Symbol.asyncDispose]();
  }
});
