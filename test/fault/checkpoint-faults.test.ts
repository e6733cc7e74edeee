// Checkpoints when things break: the object store goes away, a worker dies in the middle of
// an upload, a checkpoint file is corrupt. Nothing is lost or counted twice, and a restore
// never starts from wrong state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, s3Store, startS3Server, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, CX_JOB, type Cluster, type S3Server } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { decodeMetadata } from '../../core/checkpoint-format.ts';

/** Checkpoints against S3 are what these tests break: one every interval, idle or not. */
function s3Cluster(s3: S3Server, workers: number, workerTimeoutMs?: number): Promise<Cluster> {
  return startCluster({ workers, ...(workerTimeoutMs !== undefined && { workerTimeoutMs }), ...s3Store(s3), skipIdleCheckpoints: false });
}

const latestId = async (client: EddyClient) => Number((await client.getJob(CX_JOB)).checkpoints!.latestId);

test('checkpoint - with S3 down, checkpoints fail and are retried while processing goes on; nothing is lost', { timeout: 240_000 }, async () => {
  await using s3 = await startS3Server();
  await using cluster = await s3Cluster(s3, 2);
  const dir = await mkdtemp(join(tmpdir(), 'eddy-s3-down-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(100_000, 1_000, 3);
  let producer: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    await submitCx(client, join(dir, 'cache'));
    producer = publishSteadily(nc, events, 1_000);
    await waitFor(async () => (await latestId(client)) >= 2, { timeoutMs: 30_000, what: 'two completed checkpoints' });

    await s3.stop();
    const down = await client.getJob(CX_JOB);
    const received = async () => Number((await client.getJob(CX_JOB)).stages[1]!.recordsIn);
    const receivedAtOutage = await received();
    // Several checkpoint intervals with no object store: each checkpoint fails and is counted…
    const during = await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return Number(j.checkpoints!.failed) >= Number(down.checkpoints!.failed) + 5 ? j : undefined;
    }, { timeoutMs: 60_000, what: 'five failed checkpoints while S3 is down' });
    assert.equal(during.state, 'RUNNING', 'the job keeps running without its object store');
    assert.match(during.checkpoints!.lastFailure, /upload failed|could not complete|timed out/);
    // …and records keep flowing through the job meanwhile.
    assert.ok((await received()) > receivedAtOutage, 'records were processed while S3 was down');

    await s3.restart();
    await waitFor(async () => (await latestId(client)) > Number(during.checkpoints!.latestId), { timeoutMs: 60_000, what: 'checkpoints to complete again after S3 is back' });
    await producer!.done;
    await assertCxExactlyOnce(client, nc, cxExpectation(events));
  } finally {
    producer?.stop();
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('checkpoint - a worker SIGKILLed in the middle of a checkpoint upload loses and duplicates nothing', { timeout: 240_000 }, async () => {
  await using s3 = await startS3Server();
  // The killed worker is declared dead after 4 s, not the default 10 s.
  await using cluster = await s3Cluster(s3, 2, 4000);
  const dir = await mkdtemp(join(tmpdir(), 'eddy-upload-kill-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(60_000, 500, 5);
  let producer: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    await submitCx(client, join(dir, 'cache'));
    producer = publishSteadily(nc, events, 1_000);
    await waitFor(async () => (await latestId(client)) >= 2, { timeoutMs: 30_000, what: 'two completed checkpoints' });
    // Freeze the object store: the next checkpoint's uploads hang mid-request…
    s3.kill('SIGSTOP');
    const stuck = await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return Number(j.checkpoints!.inFlightId) > 0 ? j : undefined;
    }, { timeoutMs: 45_000, what: 'a checkpoint in flight against the frozen store' });
    // …and a worker dies with its upload open.
    const victim = cluster.workers[0]!;
    victim.kill('SIGKILL');
    await victim.exited;
    s3.kill('SIGCONT');
    await cluster.addWorker('replacement');
    await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return j.state === 'RUNNING' && j.restarts > stuck.restarts && Number(j.checkpoints!.latestId) > Number(stuck.checkpoints!.latestId);
    }, { timeoutMs: 60_000, what: 'recovery and a completed checkpoint after the kill' });
    await producer!.done;
    await assertCxExactlyOnce(client, nc, cxExpectation(events));
  } finally {
    s3.kill('SIGCONT');
    producer?.stop();
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('checkpoint - a corrupt checkpoint file fails the restore, naming the file, and the job does not start from wrong state; repaired, the job recovers on the worker whose redeploys failed', { timeout: 240_000 }, async () => {
  // The latest checkpoint after the last record is the one corrupted: a checkpoint every interval, idle or not.
  await using cluster = await startCluster({ workers: 2, workerTimeoutMs: 2000, skipIdleCheckpoints: false });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-corrupt-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(20_000, 500, 9);
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    await submitCx(client, join(dir, 'cache'));
    await publishSteadily(nc, events, 5_000).done;
    // Every record in a completed checkpoint: the delta objects of the latest metadata hold them.
    await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return Number(j.stages[1]!.recordsIn) === events.length && Number(j.checkpoints!.latestId) > 0 ? j : undefined;
    }, { timeoutMs: 60_000, what: 'all events processed' });
    const settled = await latestId(client);
    await waitFor(async () => (await latestId(client)) > settled, { timeoutMs: 30_000, what: 'a checkpoint after the last record' });
    const workers = await client.listWorkers();
    const victim = workers.find((w) => w.state === 'ALIVE' && w.assignments.some((a) => a.keyGroups.length > 0))!.workerId;

    // Flip one byte inside every delta section the victim wrote: its key groups' new owners must read them.
    const metadataKey = `jobs/${CX_JOB}/checkpoints/${await latestId(client)}/_metadata`;
    const metadata = decodeMetadata(await readFile(join(cluster.storeDir, metadataKey)), metadataKey);
    const refs = Object.values(metadata.stages).flatMap((kgs) => Object.values(kgs).flatMap((c) => c.deltas)).filter((r) => r.key.includes(`/${victim}-`));
    assert.ok(refs.length > 0, `the victim ${victim} wrote deltas`);
    const corrupted = new Set<string>();
    const flip = async (key: string, offset: number) => {
      const path = join(cluster.storeDir, key);
      const bytes = await readFile(path);
      bytes[offset]! ^= 0xff;
      await writeFile(path, bytes);
    };
    for (const ref of refs) {
      await flip(ref.key, ref.offset + Math.floor(ref.length / 2));
      corrupted.add(ref.key);
    }
    const before = await client.getJob(CX_JOB);
    cluster.workers.find((w) => w.name === `worker ${victim}`)!.kill('SIGKILL');

    // The restore refuses the corrupt section, naming its object; the job never runs from wrong state.
    const failed = await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return j.restarts >= before.restarts + 2 && j.lastFailure && /is corrupt/.test(j.lastFailure.message) ? j : undefined;
    }, { timeoutMs: 60_000, what: 'restores to fail on the corrupt file' });
    assert.ok([...corrupted].some((key) => failed.lastFailure!.message.includes(key)), `the failure names the object: ${failed.lastFailure!.message}`);
    assert.notEqual(failed.state, 'RUNNING');
    assert.notEqual((await client.getJob(CX_JOB)).state, 'RUNNING');

    // Repaired, the next restart restores: the surviving worker, whose redeploys failed, runs the
    // job again. A failed redeploy once dropped the worker's previous runtime with its RocksDB
    // still open in its thread: every later deploy of the job on that worker failed on RocksDB's
    // lock ("lock hold by current process"), and the job never recovered.
    for (const ref of refs) await flip(ref.key, ref.offset + Math.floor(ref.length / 2));
    await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 90_000, what: 'the job to run again once the file is repaired' }).catch(async (e: Error) => {
      throw new Error(`${e.message}; last failure: ${(await client.getJob(CX_JOB)).lastFailure?.message}`, { cause: e });
    });
    await assertCxExactlyOnce(client, nc, cxExpectation(events), 60_000);
  } finally {
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('checkpoint - an overlay past maxOverlayBytes asks for an early checkpoint instead of growing', { timeout: 120_000 }, async () => {
  // Checkpoints on the timer would start once an hour: every one here is asked for by a worker.
  await using cluster = await startCluster({ workers: 1, checkpointIntervalMs: 3_600_000, maxOverlayBytes: 64 * 1024 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-overlay-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  // 30,000 events over 3,000 entities: the 64 KB overlay fills after a few hundred of them, so
  // 3 s of input asks for many early checkpoints (60,000 timed out under two test files at once).
  const events = cxEvents(30_000, 3_000, 21);
  try {
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 15_000, what: 'a live worker' });
    await submitCx(client, join(dir, 'cache'));
    // A steady flow for several seconds: the overlay fills again after every early checkpoint.
    await publishSteadily(nc, events, 1_000).done;
    const job = await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return Number(j.stages[1]!.recordsIn) === events.length && Number(j.checkpoints!.completed) >= 2 ? j : undefined;
    }, { timeoutMs: 60_000, what: 'early checkpoints while the events are processed' }).catch(async (e: Error) => {
      const j = await client.getJob(CX_JOB);
      throw new Error(`${e.message}: ${j.stages.map((s) => `${s.stageId} in ${s.recordsIn}`).join(', ')} of ${events.length}; ${j.checkpoints!.completed} checkpoints completed, ${j.checkpoints!.failed} failed; job ${j.state}, restarts ${j.restarts}`, { cause: e });
    });
    // How many depends on how long each takes: CI at load saw 2 (each one's barrier cut most of
    // the input that came while the one before completed). Any is asked for: the timer's would
    // come in an hour. An ask held back by the pause between asks is made when it ends, also
    // after the last record (worker/checkpoint/overlay-bound.ts, test/unit/overlay-bound.test.ts).
    assert.ok(Number(job.checkpoints!.completed) >= 2, `${job.checkpoints!.completed} checkpoints, none from the timer`);
    assert.match(cluster.workers[0]!.output(), /overlay past its bound; asking for a checkpoint/);
  } finally {
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  }
});
