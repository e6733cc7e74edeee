// Replay from a point in time, end to end: a real NATS stream filled in two phases some
// milliseconds apart, jobs started at a stream sequence (the manifest's startAt), at a time (the
// gRPC submit's start_at) and at a sequence from `eddy submit --start-at`, over a coordinator and
// two worker processes. What each job must read is computed here from the stream itself (each
// message's sequence and stored time), per split; a SIGKILLed worker shows a restore goes on from
// the checkpoint and never applies startAt again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { checkpointsOrIdle, runCli, startCluster, waitFor, REPO_ROOT, type ChildHandle, type Cluster } from '../kit/index.ts';
import { readStreamDirect } from '../kit/read-stream-direct.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { ensureSourceStream } from '../../core/nats.ts';
import type { Echo, Event } from '../fixtures/replay-job.ts';

/** One message of the source stream, as stored. */
interface Stored { seq: number; timeMs: number; event: Event }

const SPLITS = 3;
// Uneven across splits, so that one stream sequence is a different point in each split.
const splitOf = (id: number) => (id * id) % SPLITS;
const userOf = (id: number) => `u${id % 4}`;

let cluster: Cluster;
let client: EddyClient;
let nc: NatsConnection;
let dir: string;
let nextId = 1;
let boundaryMs = 0;

async function publish(count: number): Promise<void> {
  const js = jetstream(nc);
  for (let i = 0; i < count; i++, nextId++) {
    const e: Event = { id: nextId, user: userOf(nextId), split: splitOf(nextId) };
    await js.publish(`events.${e.split}`, JSON.stringify(e));
  }
}

/** Every message of `events` with its sequence and the time JetStream stored it. */
async function storedEvents(): Promise<Stored[]> {
  const jsm = await jetstreamManager(nc);
  const { first_seq, last_seq } = (await jsm.streams.info('events')).state;
  const out: Stored[] = [];
  for (let seq = first_seq; seq <= last_seq; seq++) {
    const m = await jsm.streams.getMessage('events', { seq });
    if (m) out.push({ seq, timeMs: m.time.getTime(), event: m.json<Event>() });
  }
  return out;
}

const outStream = (job: string) => `REPLAY_OUT_${job.replace(/-/g, '_').toUpperCase()}`;
const echoes = async (job: string) => (await readStreamDirect(nc, outStream(job))).map((m) => JSON.parse(m) as Echo);

/**
 * Waits until the job's output holds `expected.length` records and two more checkpoints have
 * completed (exactly-once output is published at completion, so anything extra would be there),
 * then checks it is exactly the expected events, per split, each counted once per user.
 */
async function assertProcessedExactly(job: string, expected: Event[]): Promise<void> {
  await waitFor(async () => (await echoes(job)).length >= expected.length, { timeoutMs: 60_000, what: `${expected.length} records out of ${job}` }).catch(async (e: Error) => {
    const j = await client.getJob(job);
    throw new Error(`${e.message}: ${(await echoes(job)).length} out; job ${j.state}, restarts ${j.restarts}, ${j.lastFailure?.message ?? ''}`, { cause: e });
  });
  await checkpointsOrIdle(client, job);
  const out = await echoes(job);
  for (let split = 0; split < SPLITS; split++) {
    const got = out.filter((e) => e.split === split).map((e) => e.id);
    const want = expected.filter((e) => e.split === split).map((e) => e.id);
    assert.deepEqual(got.sort((a, b) => a - b), want.sort((a, b) => a - b), `${job}: split ${split} reads exactly its records from the start point`);
  }
  for (const user of new Set(expected.map((e) => e.user))) {
    const counts = out.filter((e) => e.user === user).map((e) => e.n).sort((a, b) => a - b);
    const n = expected.filter((e) => e.user === user).length;
    assert.deepEqual(counts, Array.from({ length: n }, (_, i) => i + 1), `${job}: ${user}'s records each counted once`);
  }
}

async function submit(fixture: string, startAt?: Parameters<EddyClient['submitJob']>[0]['startAt']): Promise<void> {
  const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures', fixture), join(dir, 'cache'));
  await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000, ...(startAt && { startAt }) });
}

describe('replay from a point in time', { timeout: 240_000 }, () => {
  before(async () => {
    cluster = await startCluster({ workers: 2, workerTimeoutMs: 2000 });
    dir = await mkdtemp(join(tmpdir(), 'eddy-replay-'));
    client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
    nc = await connect({ servers: cluster.nats.url });
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    await ensureSourceStream(nc, { stream: 'events', partitions: SPLITS, partitionKey: 'user' });
    // History in two phases with a quiet gap around boundaryMs, so that no message was stored
    // within 20 ms of it and stored times compare to it without rounding doubts.
    await publish(24);
    const quietUntil = Date.now() + 20;
    await waitFor(async () => Date.now() >= quietUntil, { timeoutMs: 1000, intervalMs: 5, what: 'a quiet gap' });
    boundaryMs = Date.now();
    await waitFor(async () => Date.now() >= boundaryMs + 20, { timeoutMs: 1000, intervalMs: 5, what: 'a quiet gap' });
    await publish(24);
  });

  after(async () => {
    client?.close();
    await nc?.close();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('replay - jobs started at a stream sequence and at a time read exactly each split\'s records from that point', async () => {
    await submit('replay-seq.ts');
    await submit('replay-time.ts', [{ source: 'events', startAt: { kind: 'time', timeUnixMs: boundaryMs } }]);
    await waitFor(async () => (await client.listJobs()).filter((j) => j.state === 'RUNNING').length === 2, { timeoutMs: 30_000, what: 'both jobs to run' });
    // Live records after the start: every job reads them.
    await publish(12);
    const stored = await storedEvents();
    assert.equal(stored.length, 60);
    const fromTime = stored.filter((m) => m.timeMs >= boundaryMs);
    assert.equal(fromTime.length, 36, 'the second phase and the live records were stored after the boundary');
    await assertProcessedExactly('replay-seq', stored.filter((m) => m.seq >= 8).map((m) => m.event));
    await assertProcessedExactly('replay-time', fromTime.map((m) => m.event));
  });

  test('replay - a restore after a SIGKILLed worker goes on from the checkpoint and never applies startAt again', async () => {
    const before = new Map(await Promise.all(['replay-seq', 'replay-time'].map(async (j) => [j, (await client.getJob(j)).restarts] as const)));
    const victim = cluster.workers[0] as ChildHandle;
    victim.kill('SIGKILL');
    await cluster.addWorker('replacement-1');
    for (const [job, restarts] of before) {
      await waitFor(async () => {
        const j = await client.getJob(job);
        return j.restarts > restarts && j.state === 'RUNNING';
      }, { timeoutMs: 30_000, what: `${job} to restart and run` });
    }
    await publish(12);
    const stored = await storedEvents();
    await assertProcessedExactly('replay-seq', stored.filter((m) => m.seq >= 8).map((m) => m.event));
    await assertProcessedExactly('replay-time', stored.filter((m) => m.timeMs >= boundaryMs).map((m) => m.event));
  });

  test('replay - eddy submit --start-at over gRPC: a sequence starts the job there; bad values are refused with usage or InvalidArgument', async () => {
    const addr = ['--addr', cluster.address];
    const usage = await runCli([...addr, 'submit', 'test/fixtures/replay-cli.ts', '--start-at', 'events=yesterday']);
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(usage.stderr, /--start-at.*neither a stream sequence/);
    const noEquals = await runCli([...addr, 'submit', 'test/fixtures/replay-cli.ts', '--start-at', 'events']);
    assert.equal(noEquals.code, 2, noEquals.stderr);
    const withSavepoint = await runCli([...addr, 'submit', 'test/fixtures/replay-cli.ts', '--start-at', 'events=5', '--from-savepoint', 'jobs/replay-cli/savepoints/1/_metadata']);
    assert.equal(withSavepoint.code, 2, withSavepoint.stderr);
    assert.match(withSavepoint.stderr, /cannot be combined with --from-savepoint/);
    const unknown = await runCli([...addr, 'submit', 'test/fixtures/replay-cli.ts', '--start-at', 'clicks=5']);
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.match(unknown.stderr, /has no source "clicks"/);
    // The same refusal straight over gRPC: INVALID_ARGUMENT, nothing deployed.
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/replay-cli.ts'), join(dir, 'cache'));
    const refused = await client
      .submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, fromSavepoint: 'jobs/replay-cli/savepoints/1/_metadata', startAt: [{ source: 'events', startAt: { kind: 'sequence', sequence: 5 } }] })
      .then(() => undefined, (e: Error) => e);
    assert.equal((refused?.cause as grpc.ServiceError | undefined)?.code, grpc.status.INVALID_ARGUMENT, String(refused));
    assert.match(refused!.message, /fresh start/);
    assert.equal((await client.listJobs()).some((j) => j.jobId === 'replay-cli'), false);

    const ok = await runCli([...addr, 'submit', 'test/fixtures/replay-cli.ts', '--start-at', 'events=41']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), 'replay-cli');
    const stored = await storedEvents();
    await assertProcessedExactly('replay-cli', stored.filter((m) => m.seq >= 41).map((m) => m.event));
  });
});
