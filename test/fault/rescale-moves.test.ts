// Elastic workers against a frozen or stopped object store (a test S3 server): a worker SIGTERMed
// while a checkpoint hangs in its upload finishes it and hands over; a worker that joins while
// checkpoints fail gets key groups only once they succeed; during a move the other key groups go
// on and the moving ones answer UNAVAILABLE. Each run is moves only (the job never restarts), and
// the final state and the exactly-once sink equal an expectation computed in the test, record
// for record.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, startS3Server, s3Store, waitFor, cxEvents, type Cluster, type S3Server, type Indicator, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, cxBalancedOver, cxKeyGroupsByWorker, CX_JOB } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { keyGroupForKey, keyGroupsOf } from '../../core/key-groups.ts';

interface CxOnS3 {
  s3: S3Server;
  cluster: Cluster;
  client: EddyClient;
}

/**
 * The customer-experience job on a cluster checkpointing to a test S3 server, with `events`
 * published steadily: `during` runs once two checkpoints completed, the input stops when it is
 * done, then the final state must equal the expectation of what was published, record for record,
 * with no recovery on the way (moves only).
 */
async function cxOnS3(t: TestContext, options: { workers: number; events: Indicator[]; perTick: number; maxMovingKeyGroups?: number; checkpointWhenIdle?: boolean }, during: (run: CxOnS3) => Promise<void>): Promise<void> {
  const started = Date.now();
  const step = (what: string) => t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
  await using s3 = await startS3Server();
  await using cluster = await startCluster({
    workers: options.workers,
    workerTimeoutMs: 10_000,
    ...(options.maxMovingKeyGroups !== undefined && { maxMovingKeyGroups: options.maxMovingKeyGroups }),
    ...(options.checkpointWhenIdle === true && { skipIdleCheckpoints: false }),
    ...s3Store(s3),
  });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-rescale-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  let producer: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === options.workers, { timeoutMs: 15_000, what: `${options.workers} live worker(s)` });
    await submitCx(client, join(dir, 'cache'));
    producer = publishSteadily(nc, options.events, options.perTick);
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints!.latestId) >= 2, { timeoutMs: 60_000, what: 'two completed checkpoints' });
    step('two completed checkpoints');
    await during({ s3, cluster, client });
    // The input stops once the fault is done: what follows it would only be more of the same.
    const published = await producer.finish();
    step(`fault done; ${published} events published, ${(await client.getJob(CX_JOB)).stages[0]!.recordsIn} read`);
    await assertCxExactlyOnce(client, nc, cxExpectation(options.events.slice(0, published)));
    step('exactly once');
    const job = await client.getJob(CX_JOB);
    assert.equal(job.restarts, 0, `no recovery was needed: ${job.lastFailure?.message ?? ''}`);
  } finally {
    s3.kill('SIGCONT');
    producer?.stop();
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('rescale - a worker SIGTERMed in the middle of a checkpoint finishes it, hands over and exits 0', { timeout: 240_000 }, (t) =>
  // A periodic checkpoint hangs in its upload whether or not the input is still flowing.
  cxOnS3(t, { workers: 2, events: cxEvents(60_000, 500, 11), perTick: 1_000, checkpointWhenIdle: true }, async ({ s3, cluster, client }) => {
    // Freeze the object store so that a checkpoint hangs in its upload, then SIGTERM a worker.
    s3.kill('SIGSTOP');
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints!.inFlightId) > 0, { timeoutMs: 30_000, what: 'a checkpoint in flight' });
    const leaving = cluster.workers.find((w) => w.name === 'worker worker-2')!;
    const stopped = leaving.stop(60_000);
    await waitFor(async () => (await client.listWorkers()).some((w) => w.workerId === 'worker-2' && w.state === 'LEAVING'), { timeoutMs: 15_000, what: 'worker-2 leaving' });
    assert.equal(leaving.exitStatus(), undefined, 'it waits for the checkpoint in flight and the hand-over');
    s3.kill('SIGCONT');
    await stopped;
    assert.deepEqual(leaving.exitStatus(), { code: 0, signal: null }, 'the leaving worker exits 0');
    assert.match(leaving.output(), /"msg":"work handed over"/);
  }),
);

test('rescale - a worker that joins while checkpoints fail gets key groups once they succeed again', { timeout: 240_000 }, (t) =>
  // Periodic checkpoints fail while S3 is down whether or not the input is still flowing.
  cxOnS3(t, { workers: 1, events: cxEvents(60_000, 500, 12), perTick: 1_000, checkpointWhenIdle: true }, async ({ s3, cluster, client }) => {
    await s3.stop();
    const down = await client.getJob(CX_JOB);
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints!.failed) > Number(down.checkpoints!.failed), { timeoutMs: 60_000, what: 'a failed checkpoint' });
    await cluster.addWorker('worker-2');
    // While checkpoints keep failing, the move waits (it would only fail with them).
    const failedAtJoin = Number((await client.getJob(CX_JOB)).checkpoints!.failed);
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints!.failed) >= failedAtJoin + 2, { timeoutMs: 60_000, what: 'two more failed checkpoints after the join' });
    assert.deepEqual((await cxKeyGroupsByWorker(client)).get('worker-2') ?? [], [], 'no key group moves while checkpoints fail');
    await s3.restart();
    await waitFor(() => cxBalancedOver(client, ['worker-1', 'worker-2']), { timeoutMs: 60_000, what: 'key groups balanced over both workers' });
  }),
);

test('rescale - during a move the other key groups keep processing, and moving ones answer UNAVAILABLE, not stale state', { timeout: 240_000 }, (t) => {
  const events = cxEvents(120_000, 1_000, 14);
  return cxOnS3(t, { workers: 1, events, perTick: 500, maxMovingKeyGroups: 16 }, async ({ s3, cluster, client }) => {
    const joining = await cluster.addWorker('worker-2');
    let measured = false;
    // Hold a move in progress by freezing the object store as it starts (its checkpoint cannot
    // complete), then look at both kinds of key groups. A move that completed before the freeze
    // landed is skipped: the next one is tried.
    for (let attempt = 0; attempt < 4 && !measured; attempt++) {
      const line = await joining.waitForLine(/"msg":"move prepared"/, 60_000, { since: joining.lineCount() });
      s3.kill('SIGSTOP');
      try {
        const { checkpoint, incoming } = JSON.parse(line) as { checkpoint: number; incoming: Array<{ start: number; end: number }> };
        const done = () => joining.output().includes(`"checkpoint":${checkpoint},"loadedKeyGroups"`);
        const moving = [...keyGroupsOf(incoming)];
        // Key groups worker-2 took in any move so far (this one included) are not "staying".
        const taken = new Set(joining.output().split('\n').filter((l) => l.includes('"msg":"move prepared"')).flatMap((l) => [...keyGroupsOf((JSON.parse(l) as { incoming: Array<{ start: number; end: number }> }).incoming)]));
        const staying = new Set(Array.from({ length: 128 }, (_, kg) => kg).filter((kg) => !taken.has(kg)));
        const ids = [...new Set(events.map((e) => e.entityId))];
        const stayingIds = ids.filter((id) => staying.has(keyGroupForKey(id, 128))).slice(0, 200);
        const movingId = ids.find((id) => moving.includes(keyGroupForKey(id, 128)))!;
        const total = async () => (await client.batchGet(CX_JOB, 'received', stayingIds, 'latest')).reduce((n, v) => n + (v.found ? (JSON.parse(v.valueJson) as number) : 0), 0);
        if (done()) continue; // the move completed before the freeze landed
        const before = await total();
        let unavailable: Error;
        try {
          // Records processed by key groups that do not move while the move is in progress: > 0.
          await waitFor(async () => (await total()) > before, { timeoutMs: 5_000, what: 'non-moving key groups to process records during the move' });
          // A moving key group, once its old owner let go, is not served until its new owner loaded it.
          unavailable = await waitFor(async () => {
            try {
              await client.batchGet(CX_JOB, 'received', [movingId], 'latest');
              return undefined;
            } catch (e) {
              return ((e as Error).cause as { code?: number } | undefined)?.code === 14 ? (e as Error) : undefined;
            }
          }, { timeoutMs: 5_000, what: 'UNAVAILABLE for a moving key group' });
        } catch (e) {
          if (done()) continue;
          throw e;
        }
        assert.match(unavailable.message, /moving to another worker|retry/);
        if (done()) continue; // the move completed meanwhile: what was seen proves nothing
        measured = true;
      } finally {
        s3.kill('SIGCONT');
      }
    }
    assert.ok(measured, 'a move was observed in progress');
  });
});
