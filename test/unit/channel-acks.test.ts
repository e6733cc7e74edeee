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
import { ChannelSender, BatchSigner, encodeAck } from '../../worker/channel/index.ts';
import { subjects } from '../../core/subjects.ts';
import { decodeHeader } from '../../core/record-batch.ts';
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
