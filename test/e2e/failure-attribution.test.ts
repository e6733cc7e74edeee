// Where a failure happened, for the kinds of user code that run apart from the record that a
// process function is called with (issue 12; README, "Poison records"): a timer callback, a stage
// fed by a side output, a stage after an asyncMap, and a stage fed by a generator source. Each
// job runs on a real cluster (worker processes, jobs isolated in threads as by default) under
// errorPolicy "fail"; the test listens to the task failures the worker reports to the coordinator
// and checks that each names the stage, the key group and the source position of the record
// (for a timer: its key and time, as a timer derives from no one record), and that a record so
// named is dead-lettered as a poison record at maxRecordAttempts, at that position.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startCluster, waitFor, readStream, REPO_ROOT, type Cluster } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { keyGroupForKey } from '../../core/key-groups.ts';
import { codecs, type TaskFailure } from '../../core/control.ts';
import { subjects } from '../../core/subjects.ts';
import { TIMER_AT_MS } from '../fixtures/attribution/timer-job.ts';
import { POISON_N } from '../fixtures/attribution/generator-job.ts';
import { BAD_N, EVENTS as GEN_EVENTS } from '../fixtures/attribution/generator-atomic-job.ts';

const IDS = ['a', 'b', 'c', 'd', 'e'];
const RECORDS = 40;
const POISON_AT = 20;

interface Setup {
  cluster: Cluster;
  client: EddyClient;
  nc: NatsConnection;
  dir: string;
  /** Every task failure a worker reported, in order. */
  failures: TaskFailure[];
}

// One cluster for the five jobs: each has its own job id, input and output streams, and every
// check filters the failures and dead letters by its job; a job failed for good (the timer's)
// leaves the worker serving the others. Five clusters took ~4 s of CPU each to start and stop.
let shared: Setup | undefined;

before(async () => {
  const cluster = await startCluster({ workers: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-attribution-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const failures: TaskFailure[] = [];
  shared = { cluster, client, nc, dir, failures };
  nc.subscribe(subjects.fromAnyWorker('failure'), { callback: (_e, m) => void failures.push(codecs.failure.decode(m.data)) });
  await nc.flush();
  await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 30_000, what: 'a live worker' });
});

after(async () => {
  if (shared === undefined) return;
  shared.client.close();
  await shared.nc.close();
  await shared.cluster.stop();
  await rm(shared.dir, { recursive: true, force: true });
});

async function withCluster(fn: (s: Setup) => Promise<void>): Promise<void> {
  assert.ok(shared, 'the cluster started');
  await fn(shared);
}

/** Submits a fixture; resolves with its manifest's maxParallelism once the job runs. */
async function submit(s: Setup, fixture: string, jobId: string): Promise<number> {
  const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/attribution', fixture), join(s.dir, 'cache'));
  await s.client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
  await waitFor(async () => (await s.client.getJob(jobId)).state === 'RUNNING', { timeoutMs: 30_000, what: `job ${jobId} to run` });
  return bundle.manifest.maxParallelism;
}

/** Publishes RECORDS records on partition 0 of `stream`, the one at POISON_AT with `extra`; resolves with that one's stream sequence. */
async function publish(nc: NatsConnection, stream: string, extra: Record<string, unknown>): Promise<number> {
  const js = jetstream(nc);
  let poisonSequence = -1;
  for (let i = 0; i < RECORDS; i++) {
    const ack = await js.publish(`${stream}.0`, JSON.stringify({ id: IDS[i % IDS.length], seq: i, ...(i === POISON_AT && extra) }));
    if (i === POISON_AT) poisonSequence = ack.seq;
  }
  return poisonSequence;
}

/**
 * The poison record was reported at its position by every failed attempt and, at the job's
 * maxRecordAttempts (2), dead-lettered once as a poison record with that position.
 */
async function assertAttributed(s: Setup, job: string, expected: { stageId: string; keyGroup: number; split: number; sequence: number; message: RegExp }): Promise<void> {
  const letters = await waitFor(async () => {
    const d = await readStream(s.nc, 'EDDY_DLQ', `eddy.dlq.${job}`);
    return d.length >= 1 ? d.map((m) => JSON.parse(m.data) as { reason: string; stageId: string; source: { sequence: number } }) : undefined;
  }, { timeoutMs: 120_000, what: `the poison record of ${job} dead-lettered` });
  const failures = s.failures.filter((f) => f.jobId === job && f.userCode);
  assert.ok(failures.length >= 2, `${failures.length} failures of ${job}: ${failures.map((f) => f.message).join('\n')}`);
  for (const f of failures) {
    assert.deepEqual(
      { stageId: f.stageId, keyGroup: f.keyGroup, hasSourcePosition: f.hasSourcePosition, split: f.split, sequence: Number(f.sequence) },
      { stageId: expected.stageId, keyGroup: expected.keyGroup, hasSourcePosition: true, split: expected.split, sequence: expected.sequence },
      f.message,
    );
    assert.match(f.message, expected.message);
    assert.match(f.message, new RegExp(`key group ${expected.keyGroup}\\)`));
  }
  assert.equal(letters.length, 1, letters.map((l) => l.reason).join('\n'));
  assert.match(letters[0]!.reason, /^poison record: failed 2 attempts, skipped; last failure: /);
  assert.equal(letters[0]!.stageId, expected.stageId);
  assert.equal(letters[0]!.source.sequence, expected.sequence);
  assert.equal((await s.client.getJob(job)).state, 'RUNNING');
}

test('failure attribution - an onTimer that throws fails the job naming its stage, key group, and the timer\'s key and time', { timeout: 180_000 }, async () => {
  await withCluster(async (s) => {
    const maxParallelism = await submit(s, 'timer-job.ts', 'attr-timer');
    const js = jetstream(s.nc);
    for (let i = 0; i < 10; i++) await js.publish('attr-timer-in.0', JSON.stringify({ id: IDS[i % IDS.length], seq: i }));
    await js.publish('attr-timer-in.0', JSON.stringify({ id: 't-bad', seq: 10, arm: true }));
    await waitFor(async () => (await s.client.getJob('attr-timer')).state === 'FAILED', { timeoutMs: 60_000, what: 'the job to fail' });
    const failure = await waitFor(() => s.failures.find((f) => f.jobId === 'attr-timer' && f.userCode), { timeoutMs: 10_000, what: 'the task failure' });
    assert.equal(failure.stageId, 'arm');
    assert.equal(failure.keyGroup, keyGroupForKey('t-bad', maxParallelism));
    // A timer derives from no one source record: no position, so it is never skipped as a poison record.
    assert.equal(failure.hasSourcePosition, false);
    assert.match(failure.message, new RegExp(`^user function onTimer of key "t-bad" at ${TIMER_AT_MS} \\(processing time\\) of stage arm \\(job attr-timer, key group ${failure.keyGroup}\\) threw: timer at ${TIMER_AT_MS} refuses to fire`));
    assert.match((await s.client.getJob('attr-timer')).lastFailure?.message ?? '', /onTimer of key "t-bad"/);
  });
});

test('failure attribution - a failure in a stage fed by a side output names that stage, the record\'s key group there and its source position', { timeout: 240_000 }, async () => {
  await withCluster(async (s) => {
    const maxParallelism = await submit(s, 'side-job.ts', 'attr-side');
    const sequence = await publish(s.nc, 'attr-side-in', { poison: true });
    await assertAttributed(s, 'attr-side', {
      stageId: 'second',
      keyGroup: keyGroupForKey(`${IDS[POISON_AT % IDS.length]}-side`, maxParallelism),
      split: 0,
      sequence,
      message: /^user function second of stage second \(job attr-side, key group \d+\) threw: poison record 20/,
    });
  });
});

test('failure attribution - a failure after an asyncMap names the stage, the record\'s key group and its source position', { timeout: 240_000 }, async () => {
  await withCluster(async (s) => {
    const maxParallelism = await submit(s, 'async-job.ts', 'attr-async');
    const sequence = await publish(s.nc, 'attr-async-in', { poison: true });
    await assertAttributed(s, 'attr-async', {
      stageId: 'totals',
      keyGroup: keyGroupForKey(IDS[POISON_AT % IDS.length]!, maxParallelism),
      split: 0,
      sequence,
      message: /^user function totals of stage totals \(job attr-async, key group \d+\) threw: poison record 20/,
    });
  });
});

test('failure attribution - a failure on a generated record names the stage, the key group and its position in the generator\'s split', { timeout: 240_000 }, async () => {
  await withCluster(async (s) => {
    // Event n of a one-split generator is the split's (n + 1)-th: its position.
    const maxParallelism = await submit(s, 'generator-job.ts', 'attr-gen');
    await assertAttributed(s, 'attr-gen', {
      stageId: 'totals',
      keyGroup: keyGroupForKey(`g${POISON_N % 5}`, maxParallelism),
      split: 0,
      sequence: POISON_N + 1,
      message: new RegExp(`^user function totals of stage totals \\(job attr-gen, key group \\d+\\) threw: poison event ${POISON_N}`),
    });
  });
});

test('failure attribution - under dead-letter a generated event is all-or-nothing: output made before its failure is dropped, the event dead-lettered once', { timeout: 240_000 }, async () => {
  await withCluster(async (s) => {
    await submit(s, 'generator-atomic-job.ts', 'attr-gen-atomic');
    const out = await waitFor(async () => {
      const m = await readStream(s.nc, 'ATTR_GEN_ATOMIC_OUT');
      return m.length >= 2 * (GEN_EVENTS - 1) ? m : undefined;
    }, { timeoutMs: 60_000, what: `${2 * (GEN_EVENTS - 1)} records out` });
    const copies = out.map((m) => JSON.parse(m.data) as { n: number; copy: number });
    assert.equal(copies.length, 2 * (GEN_EVENTS - 1), 'two records of every event but the bad one, once each');
    assert.deepEqual(copies.filter((c) => c.n === BAD_N), [], `nothing of event ${BAD_N}, not even the record that passed before the failure`);
    const dead = await waitFor(async () => {
      const d = await readStream(s.nc, 'EDDY_DLQ', 'eddy.dlq.attr-gen-atomic');
      return d.length >= 1 ? d : undefined;
    }, { timeoutMs: 30_000, what: 'the dead letter' });
    assert.equal(dead.length, 1, 'one dead letter');
    assert.match((JSON.parse(dead[0]!.data) as { reason: string }).reason, new RegExp(`bad copy of event ${BAD_N}`));
  });
});
