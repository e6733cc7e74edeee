// Poison records, end to end with real processes (issue 12; README, "Poison records"): a record
// that fails its task on every attempt — a process function that throws on it under errorPolicy
// "fail", or one that never returns in a worker that isolates jobs in threads — is counted per
// source position by the coordinator and, at the job's maxRecordAttempts, dead-lettered once with
// its reason and skipped on every worker. The job keeps running and every other record's result
// is exact: one output each, totals equal to the sum of the good records. The throwing case
// publishes frames (README, "Framed ingest"): positions are per message, so the poison record's
// frame is skipped, each of its records dead-lettered alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { checkpointsOrIdle, startCluster, waitFor, readStream, REPO_ROOT } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { partitionForKey } from '../../core/key-groups.ts';
import { FRAME_FORMAT_NDJSON, FRAME_HEADER, encodeFrame } from '../../core/record-frame.ts';

const IDS = ['a', 'b', 'c', 'd', 'e'];
const RECORDS = 200;
const POISON_AT = 100;

interface Case {
  fixture: string;
  job: string;
  stream: string;
  outStream: string;
  poisonField: 'poison' | 'loop';
  attempts: number;
  /** What the dead letter's reason holds about the last failure. */
  failure: RegExp;
  workers: number;
  env?: Record<string, string>;
  /**
   * Records published in frames of this many per partition (README, "Framed ingest"): the poison
   * record takes its frame with it, each of the frame's records dead-lettered alone. @default 1
   */
  frameRecords?: number;
}

async function runCase(c: Case): Promise<void> {
  const cluster = await startCluster({ workers: c.workers, ...(c.env && { env: c.env }) });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-poison-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/poison', c.fixture), join(dir, 'cache'));
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === c.workers, { timeoutMs: 30_000, what: `${c.workers} live workers` });
    // A job thread's cold start can outlast the deploy's time-out on a loaded machine: once more then.
    const submit = () => client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await submit().catch((e: Error) => {
      if (!/did not answer deploy: timeout/.test(e.message)) throw e;
      return submit();
    });
    await waitFor(async () => (await client.getJob(c.job)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });

    // The poison record in the middle of the input, on its key's partition like every other.
    const js = jetstream(nc);
    const frameRecords = c.frameRecords ?? 1;
    const records = Array.from({ length: RECORDS }, (_, i) => {
      const id = IDS[i % IDS.length]!;
      return { partition: partitionForKey(id, 2), record: { id, n: (i % 7) + 1, seq: i, ...(i === POISON_AT && { [c.poisonField]: true }) } };
    });
    // Messages per partition: one record each, or frames of frameRecords consecutive ones.
    const messages: Array<{ partition: number; seqs: number[] }> = [];
    const open = new Map<number, number[]>();
    for (const { partition, record } of records) {
      const frame = open.get(partition) ?? [];
      frame.push(record.seq);
      open.set(partition, frame);
      if (frame.length === frameRecords) {
        messages.push({ partition, seqs: frame });
        open.delete(partition);
      }
    }
    for (const [partition, seqs] of open) messages.push({ partition, seqs });
    const poisonFrame = messages.find((m) => m.seqs.includes(POISON_AT))!;
    const poisonPartition = poisonFrame.partition;
    const totals = new Map<string, number>();
    const outputs: string[] = [];
    for (const { record } of records) {
      if (poisonFrame.seqs.includes(record.seq)) continue;
      const t = (totals.get(record.id) ?? 0) + record.n;
      totals.set(record.id, t);
      outputs.push(JSON.stringify({ id: record.id, total: t, seq: record.seq }));
    }
    const frameHeaders = headers();
    frameHeaders.set(FRAME_HEADER, FRAME_FORMAT_NDJSON);
    for (const m of messages) {
      const lines = m.seqs.map((seq) => JSON.stringify(records[seq]!.record));
      if (frameRecords === 1) await js.publish(`${c.stream}.${m.partition}`, lines[0]!);
      else await js.publish(`${c.stream}.${m.partition}`, encodeFrame(lines), { headers: frameHeaders });
    }

    await waitFor(async () => {
      const d = await readStream(nc, 'EDDY_DLQ', `eddy.dlq.${c.job}`);
      return d.length >= poisonFrame.seqs.length ? d : undefined;
    }, { timeoutMs: 120_000, what: 'the poison record\'s dead letter' });
    await waitFor(async () => {
      const values = await client.batchGet(c.job, 'total', IDS, 'committed');
      return values.every((v) => v.found && JSON.parse(v.valueJson) === totals.get(v.entityId));
    }, { timeoutMs: 60_000, what: 'every total to equal the good records\' sum' });
    const out = await waitFor(async () => {
      const m = await readStream(nc, c.outStream);
      return m.length >= outputs.length ? m : undefined;
    }, { timeoutMs: 30_000, what: `${outputs.length} outputs` });
    assert.deepEqual(out.map((m) => m.data).sort(), outputs.sort(), 'one output per good record, none of the poison one');

    // Once, with its reason: a checkpoint later nothing more has come.
    await checkpointsOrIdle(client, c.job);
    const letters = (await readStream(nc, 'EDDY_DLQ', `eddy.dlq.${c.job}`)).map((m) => JSON.parse(m.data) as { reason: string; stageId: string; record: string; source: { stream: string; sequence: number; index?: number }; stack: string });
    assert.equal(letters.length, poisonFrame.seqs.length, letters.map((l) => l.reason).join('\n'));
    const prefix = frameRecords === 1 ? 'poison record: failed' : 'poison record in this frame: failed';
    for (const letter of letters) {
      assert.match(letter.reason, new RegExp(`^${prefix} ${c.attempts} attempts, [a-z ]*skipped; last failure: `));
      assert.match(letter.reason, c.failure);
      assert.equal(letter.stageId, 'totals');
      assert.equal(letter.source.stream, c.stream);
    }
    // Each record of the poison's message once (one record, or its frame's, each with its line).
    assert.deepEqual(letters.map((l) => (JSON.parse(l.record) as { seq: number }).seq).sort((a, b) => a - b), poisonFrame.seqs);
    if (frameRecords > 1) assert.deepEqual(letters.map((l) => l.source.index).sort((a, b) => a! - b!), poisonFrame.seqs.map((_, i) => i));
    const now = await client.getJob(c.job);
    assert.equal(now.state, 'RUNNING');
    // At least one restart per failed attempt; on a loaded machine a new thread may also miss a deploy's time-out.
    assert.ok(Number(now.restarts) >= c.attempts, `${now.restarts} restarts, ${c.attempts} attempts (partition ${poisonPartition})`);
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

test('poison records - a process function that throws on one record of a frame fails it 3 times, then the frame is dead-lettered record by record, once each, and skipped on every worker; every other result is exact', { timeout: 180_000 }, async () => {
  await runCase({
    frameRecords: 10,
    fixture: 'throw-job.ts',
    job: 'poison-throw',
    stream: 'poison-throw-in',
    outStream: 'POISON_THROW_OUT',
    poisonField: 'poison',
    attempts: 3,
    failure: /user function totals of stage totals \(job poison-throw, key group \d+\) threw: poison record 100/,
    workers: 2,
  });
});

test('poison records - a function looping on one record in thread isolation is stopped by the watchdog twice, then the record is dead-lettered once and skipped; every other result is exact', { timeout: 180_000 }, async () => {
  await runCase({
    fixture: 'loop-job.ts',
    job: 'poison-loop',
    stream: 'poison-loop-in',
    outStream: 'POISON_LOOP_OUT',
    poisonField: 'loop',
    attempts: 2,
    failure: /held its thread for more than 1000 ms \(limits\.maxCallMs\) in stage totals, key group \d+, processing a record from split \d+, sequence \d+/,
    workers: 1,
    env: { EDDY_JOB_ISOLATION: 'thread' },
  });
});
