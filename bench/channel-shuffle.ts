// The shuffle alone: one signed channel sender to 128 key groups and one receiver of them all, in
// one process against a real nats-server, the receiver acknowledging each batch as it arrives (a
// keyed stage with nothing to do). Records go to random key groups, as a keyBy on auction ids
// sends them (Nexmark q4: ~20 records a batch). What it measures is the channel's own cost —
// encode, sign, publish, verify, decode the header, acknowledge — in CPU µs per record of this
// process (the nats-server apart), and the messages each way. CPU time, so a loaded machine
// disturbs it less than a wall clock; the process's own GC is included.
//   node --import tsx bench/channel-shuffle.ts            (BENCH_RUNS runs, default 3)
//   BENCH_SHUFFLE_KEY_GROUPS=8 …                          (the same records in batches of ~256)
import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, waitFor } from '../test/kit/index.ts';
import { BatchSigner, ChannelReceiver, ChannelSender, type ReceivedBatch } from '../worker/channel/index.ts';
import { subjects } from '../core/subjects.ts';
import { silentLogger } from '../core/logger.ts';
import type { JobId, StageId } from '../core/ids.ts';
import { RUNS, isMain, machineLine, median, runMain } from './lib.ts';

const JOB = 'shuffle' as JobId;
const STAGE = 'counts' as StageId;
const SENDER = 'split0@e1';
/** BENCH_SHUFFLE_KEY_GROUPS: fewer key groups for the same records a turn make bigger batches (what one message per destination would carry). */
const KEY_GROUPS = Number(process.env.BENCH_SHUFFLE_KEY_GROUPS ?? 128);
/** Records sent per loop turn: ~20 per key group of 128, as on Nexmark q4. */
const RECORDS_PER_TURN = 2560;
const RECORDS = Number(process.env.BENCH_SHUFFLE_RECORDS ?? 200_000);

export interface ShuffleCost {
  usPerRecord: number;
  recordsPerBatch: number;
  acksPerBatch: number;
}

async function oneRun(url: string): Promise<ShuffleCost> {
  const nc = await connect({ servers: url });
  const spy = await connect({ servers: url });
  const signer = new BatchSigner(new Uint8Array(randomBytes(32)));
  let acks = 0;
  spy.subscribe(subjects.channelAck(JOB, SENDER), { callback: () => void acks++ });
  let batches = 0;
  let records = 0;
  let receiver: ChannelReceiver | undefined = undefined;
  receiver = new ChannelReceiver({
    nc,
    jobId: JOB,
    stageId: STAGE,
    senders: [SENDER],
    signer,
    logger: silentLogger,
    deliver: (b: ReceivedBatch) => {
      batches++;
      records += b.header.recordCount;
      receiver!.ack(b.reply!, b.header.sender, b.header.keyGroup, b.header.sequence);
    },
    fail: (e) => {
      throw e;
    },
    closed: () => false,
  });
  for (let kg = 0; kg < KEY_GROUPS; kg++) receiver.subscribe(kg);
  await Promise.all([nc.flush(), spy.flush()]);
  const sender = new ChannelSender({ nc, jobId: JOB, toStage: STAGE, senderTask: SENDER, maxParallelism: KEY_GROUPS, maxBatchRecords: 256, batchLingerMs: 5, channelWindow: 8, ackTimeoutMs: 60_000, onBroken: (e) => { throw e; }, signer });
  const value = { auction: 1000, bidder: 2001, price: 1234, channel: 'Google', url: 'https://www.nexmark.com/abc', dateTime: 1_733_400_000_000, extra: 'x'.repeat(40) };
  const t0 = process.cpuUsage();
  // RECORDS_PER_TURN records, then a turn of the event loop.
  for (let sent = 0; sent < RECORDS; ) {
    for (let i = 0; i < RECORDS_PER_TURN && sent < RECORDS; i++, sent++) sender.send((Math.random() * KEY_GROUPS) | 0, { key: String(sent), timestamp: sent, value, origin: sent });
    sender.flush();
    if (sender.blocked) await sender.whenWritable();
    await new Promise((r) => setImmediate(r));
  }
  await sender.whenDrained();
  const used = process.cpuUsage(t0);
  await spy.flush();
  await waitFor(() => records === RECORDS, { timeoutMs: 10_000, what: 'every record received' });
  receiver.close();
  await sender.close();
  await Promise.all([nc.close(), spy.close()]);
  return { usPerRecord: (used.user + used.system) / RECORDS, recordsPerBatch: records / batches, acksPerBatch: acks / batches };
}

export async function channelShuffleBenchmark(): Promise<ShuffleCost> {
  await using nats = await startNatsServer({ jetstream: false });
  await oneRun(nats.url); // warm-up
  const runs: ShuffleCost[] = [];
  for (let r = 0; r < RUNS; r++) runs.push(await oneRun(nats.url));
  return { usPerRecord: median(runs.map((r) => r.usPerRecord)), recordsPerBatch: median(runs.map((r) => r.recordsPerBatch)), acksPerBatch: median(runs.map((r) => r.acksPerBatch)) };
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    const c = await channelShuffleBenchmark();
    console.log(`shuffle of ${RECORDS} records over ${KEY_GROUPS} key groups, signed: ${c.usPerRecord.toFixed(2)} µs CPU per record (median of ${RUNS}); ${c.recordsPerBatch.toFixed(1)} records per batch, ${c.acksPerBatch.toFixed(3)} ack messages per batch`);
  });
}
