// Signed channel acknowledgements (worker/channel/channel-acks.ts; README, "Security") against a
// real nats-server: a sender whose window is full frees it only for an acknowledgement signed with
// the epoch's channel key and bound to its own name. Forged ones on its ack subject (the next
// sequence unsigned, signed with another key, signed for another sender, a sequence never sent,
// garbage) are dropped and counted, and none of them breaks the channel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Msg } from '@nats-io/transport-node';
import { startNatsServer, waitFor } from '../kit/index.ts';
import { ChannelSender, ChannelReceiver, BatchSigner, encodeAck, decodeAck, type ReceivedBatch } from '../../worker/channel/index.ts';
import { subjects } from '../../core/subjects.ts';
import { decodeHeader } from '../../core/record-batch.ts';
import { silentLogger } from '../../core/logger.ts';
import type { JobId, StageId } from '../../core/ids.ts';

const JOB = 'acks' as JobId;
const STAGE = 'totals' as StageId;
const SENDER = 'split0@e1';
const KG = 3;

test('channel acks - a forged acknowledgement (the next sequence, unsigned or signed with another key or for another sender) does not free a full window; a signed one does', { timeout: 30_000 }, async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const intruder = await connect({ servers: nats.url });
  const key = new Uint8Array(randomBytes(32));
  const signer = new BatchSigner(key);
  const broken: Error[] = [];
  // The receiver's side: takes batches and acknowledges nothing by itself.
  const received: Msg[] = [];
  nc.subscribe(subjects.channel(JOB, STAGE, KG), { callback: (_e, m) => void received.push(m) });
  await nc.flush();
  const sender = new ChannelSender({
    nc,
    jobId: JOB,
    toStage: STAGE,
    senderTask: SENDER,
    maxParallelism: 8,
    maxBatchRecords: 1,
    batchLingerMs: 5,
    channelWindow: 1,
    ackTimeoutMs: 60_000,
    onBroken: (e) => void broken.push(e),
    signer,
  });
  try {
    const ackSubject = subjects.channelAck(JOB, SENDER);
    for (let i = 0; i < 3; i++) sender.send(KG, { key: 'a', timestamp: -1, value: i, origin: -1 });
    await waitFor(() => received.length === 1, { timeoutMs: 5_000, what: 'the first batch' });
    assert.equal(received[0]!.reply, ackSubject);
    assert.equal(decodeHeader(received[0]!.data).sequence, 1);

    // Forgeries of "batch 1 taken", and worse.
    const forgeries = [
      encodeAck(KG, 1, SENDER, undefined),
      encodeAck(KG, 1, SENDER, new BatchSigner(new Uint8Array(randomBytes(32)))),
      encodeAck(KG, 1, 'split1@e1', signer),
      encodeAck(KG, 99, SENDER, undefined),
      new TextEncoder().encode('INJECTED'),
    ];
    // A sentinel after them, from the same connection: when it arrives, so have the forgeries, and
    // a batch sent on one of them is back on the receiver's subscription after a flush.
    let sentinel = false;
    nc.subscribe('test.sentinel', { callback: () => void (sentinel = true) });
    await nc.flush();
    for (const f of forgeries) intruder.publish(ackSubject, f);
    intruder.publish('test.sentinel', new Uint8Array(0));
    await waitFor(() => sentinel, { timeoutMs: 5_000, what: 'the forgeries delivered' });
    await nc.flush();
    assert.equal(received.length, 1, 'the window stays full: batch 2 is not sent on a forged ack');
    assert.equal(sender.forgedAcks, forgeries.length, 'every forgery counted');
    assert.equal(sender.unacknowledgedBatches, 1);
    assert.equal(sender.pendingRecords, 2, 'two records wait behind the window');
    assert.deepEqual(broken, [], 'no forged ack breaks the channel');

    // The receiver's own, signed acknowledgement frees it.
    nc.publish(ackSubject, encodeAck(KG, 1, SENDER, signer));
    await waitFor(() => received.length === 2, { timeoutMs: 5_000, what: 'batch 2 after the signed ack' });
    assert.equal(decodeHeader(received[1]!.data).sequence, 2);
    assert.deepEqual(broken, []);
  } finally {
    await sender.close();
    await Promise.all([nc.close(), intruder.close()]);
  }
});

test('channel acks - a receiver acknowledges a turn\'s batches of several key groups in one signed message, which frees each of their windows; the same message with one entry altered frees none', { timeout: 30_000 }, async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const intruder = await connect({ servers: nats.url });
  const signer = new BatchSigner(new Uint8Array(randomBytes(32)));
  const broken: Error[] = [];
  const failed: Error[] = [];
  const delivered: ReceivedBatch[] = [];
  const receiver = new ChannelReceiver({
    nc,
    jobId: JOB,
    stageId: STAGE,
    senders: [SENDER],
    signer,
    logger: silentLogger,
    deliver: (b) => void delivered.push(b),
    fail: (e) => void failed.push(e),
    closed: () => false,
  });
  const keyGroups = [1, 2, 5];
  for (const kg of keyGroups) receiver.subscribe(kg);
  // What goes back to the sender, as it goes.
  const ackSubject = subjects.channelAck(JOB, SENDER);
  const acks: Uint8Array[] = [];
  intruder.subscribe(ackSubject, { callback: (_e, m) => void acks.push(m.data) });
  await Promise.all([nc.flush(), intruder.flush()]);
  const sender = new ChannelSender({
    nc,
    jobId: JOB,
    toStage: STAGE,
    senderTask: SENDER,
    maxParallelism: 8,
    maxBatchRecords: 1,
    batchLingerMs: 5,
    channelWindow: 1,
    ackTimeoutMs: 60_000,
    onBroken: (e) => void broken.push(e),
    signer,
  });
  try {
    // Three batches to each key group; a window of one batch per channel.
    for (let i = 0; i < 3; i++) for (const kg of keyGroups) sender.send(kg, { key: `k${kg}`, timestamp: -1, value: i, origin: -1 });
    await waitFor(() => delivered.length === 3, { timeoutMs: 5_000, what: 'the first batch of each key group' });
    // Processed in one turn: acknowledged in one message.
    for (const b of delivered) receiver.ack(b.reply!, b.header.sender, b.header.keyGroup, b.header.sequence);
    await waitFor(() => delivered.length === 6, { timeoutMs: 5_000, what: 'the second batch of each key group, after one acknowledgement' });
    await intruder.flush();
    assert.equal(acks.length, 1, 'one acknowledgement message for the three key groups');
    const decoded = decodeAck(acks[0]!, SENDER, signer);
    assert.ok(decoded.rejected === undefined, decoded.rejected);
    assert.deepEqual([...decoded.entries].sort((a, b) => a.keyGroup - b.keyGroup), keyGroups.map((keyGroup) => ({ keyGroup, sequence: 1 })));
    assert.equal(sender.unacknowledgedBatches, 3);

    // The intruder alters one entry of the receiver's message (key group 2 up to batch 2) and sends it.
    const altered = Buffer.from(acks[0]!);
    const at = 2 + 6 * decoded.entries.findIndex((e) => e.keyGroup === 2);
    altered.writeUInt32BE(2, at + 2);
    intruder.publish(ackSubject, altered);
    await intruder.flush();
    await waitFor(() => sender.forgedAcks === 1, { timeoutMs: 5_000, what: 'the altered acknowledgement rejected' });
    await nc.flush();
    assert.equal(delivered.length, 6, 'no third batch on an altered acknowledgement');
    assert.equal(sender.unacknowledgedBatches, 3);

    // The receiver's own acknowledgements of the second batches, in two turns, free the rest.
    for (const b of delivered.slice(3, 5)) receiver.ack(b.reply!, b.header.sender, b.header.keyGroup, b.header.sequence);
    await new Promise((r) => setImmediate(r));
    receiver.ack(delivered[5]!.reply!, SENDER, delivered[5]!.header.keyGroup, delivered[5]!.header.sequence);
    await waitFor(() => delivered.length === 9, { timeoutMs: 5_000, what: 'the third batch of each key group' });
    assert.equal(acks.length, 4, 'the receiver\'s two messages and the altered one');
    assert.deepEqual(delivered.map((b) => b.header.sequence).sort(), [1, 1, 1, 2, 2, 2, 3, 3, 3]);
    assert.deepEqual(broken, []);
    assert.deepEqual(failed, []);
  } finally {
    receiver.close();
    await sender.close();
    await Promise.all([nc.close(), intruder.close()]);
  }
});
