// Open batches on a channel sender (worker/channel/channel-sender.ts): records wait in their key
// group's open batch for the linger, so that a batch carries more than the records of one turn;
// when the open batches together hold maxBatchRecords × 8 records, every one of them closes and
// goes at once, and records in open batches never count as backpressure (only closed batches
// waiting for window room do). Against a real nats-server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, waitFor } from '../kit/index.ts';
import { ChannelSender } from '../../worker/channel/channel-sender.ts';
import { encodeAck } from '../../worker/channel/channel-acks.ts';
import { decodeHeader } from '../../core/record-batch.ts';
import { subjects } from '../../core/subjects.ts';
import type { JobId, StageId } from '../../core/ids.ts';

const JOB = 'open-batches' as JobId;
const STAGE = 'counts' as StageId;
const SENDER = 'split0@e1~0';
const KEY_GROUPS = 16;
const MAX_BATCH = 16;

test('channel sender - open batches fill past one turn, close together at maxBatchRecords × 8 records, and never block the source', { timeout: 30_000 }, async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const sizes: number[][] = Array.from({ length: KEY_GROUPS }, () => []);
  for (let kg = 0; kg < KEY_GROUPS; kg++) {
    nc.subscribe(subjects.channel(JOB, STAGE, kg), {
      callback: (_e, msg) => {
        const header = decodeHeader(msg.data);
        sizes[kg]!.push(header.recordCount);
        if (msg.reply) nc.publish(msg.reply, encodeAck(kg, header.sequence, SENDER, undefined));
      },
    });
  }
  await nc.flush();
  // A linger far longer than the test: only the open-record bound sends anything.
  const s = new ChannelSender({ nc, jobId: JOB, toStage: STAGE, senderTask: SENDER, maxParallelism: KEY_GROUPS, maxBatchRecords: MAX_BATCH, batchLingerMs: 60_000, channelWindow: 4, ackTimeoutMs: 10_000, onBroken: (e) => assert.fail(e) });
  try {
    // Half a batch per key group, 127 records in all: nothing goes, nothing blocks.
    for (let i = 0; i < MAX_BATCH * 8 - 1; i++) {
      s.send(i % KEY_GROUPS, { key: `k${i}`, timestamp: i, value: i });
      assert.equal(s.blocked, false, `record ${i + 1}: open batches are not backpressure`);
    }
    await nc.flush();
    assert.deepEqual(sizes.flat(), [], 'no batch sent before the bound');
    // Record 128 reaches maxBatchRecords × 8: every open batch closes and is sent.
    s.send(KEY_GROUPS - 1, { key: 'last', timestamp: 0, value: 0 });
    await waitFor(() => sizes.every((b) => b.length === 1), { timeoutMs: 5_000, what: 'one batch on every channel' });
    assert.deepEqual(sizes, Array.from({ length: KEY_GROUPS }, () => [8]));
    assert.equal(s.pendingRecords, 0);
    await s.whenDrained();
  } finally {
    await s.close();
    await nc.close();
  }
});
