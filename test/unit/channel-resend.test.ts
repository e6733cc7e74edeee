// A channel whose receiver is slow is not broken: the sender sends its oldest unacknowledged batch
// again after a third of the acknowledgement time-out, and a receiver that already has it
// acknowledges everything it received (worker/channel/channel-sender.ts). A receiver that never
// answers still breaks the channel at the time-out. Against a real nats-server; the receivers
// here do what worker/task/keyed-task.ts does with a batch and its resend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor } from '../kit/index.ts';
import { ChannelSender } from '../../worker/channel/channel-sender.ts';
import { encodeAck } from '../../worker/channel/channel-acks.ts';
import { decodeHeader } from '../../core/record-batch.ts';
import { subjects } from '../../core/subjects.ts';
import type { ChannelBrokenError } from '../../core/errors.ts';
import type { JobId, StageId } from '../../core/ids.ts';

const JOB = 'resend-job' as JobId;
const STAGE = 'counts' as StageId;
const ACK_TIMEOUT_MS = 1500;

function sender(nc: NatsConnection, onBroken: (e: ChannelBrokenError) => void): ChannelSender {
  return new ChannelSender({ nc, jobId: JOB, toStage: STAGE, senderTask: 'split0@e1~0', maxParallelism: 4, maxBatchRecords: 2, batchLingerMs: 5, channelWindow: 2, ackTimeoutMs: ACK_TIMEOUT_MS, onBroken });
}

test('channel - a receiver that holds batches longer than the acknowledgement time-out (alignment, a loaded machine) gets them again and acknowledges; the channel does not break', { timeout: 30_000 }, async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    // Holds every new batch unacknowledged (as a channel held behind a barrier); a batch it has
    // seen before is a resend: it acknowledges the last one it received.
    const received: number[] = [];
    nc.subscribe(subjects.channel(JOB, STAGE, 1), {
      callback: (_e, msg) => {
        const { sequence } = decodeHeader(msg.data);
        const last = received.at(-1) ?? 0;
        if (sequence > last) received.push(sequence);
        else if (msg.reply) nc.publish(msg.reply, encodeAck(1, last, 'split0@e1~0', undefined));
      },
    });
    await nc.flush();
    let broken: ChannelBrokenError | undefined;
    const s = sender(nc, (e) => (broken = e));
    const started = Date.now();
    for (let i = 0; i < 6; i++) s.send(1, { key: `k${i}`, timestamp: i, value: i });
    await s.whenDrained();
    const tookMs = Date.now() - started;
    await s.close();
    assert.equal(broken, undefined, `the channel broke: ${broken?.message}`);
    assert.deepEqual(received, [1, 2, 3], 'every batch arrived once as new');
    assert.ok(s.resentBatches >= 1, 'batches were sent again');
    // Two rounds of resends (a window of 2, 3 batches), each after a third of the time-out.
    assert.ok(tookMs >= ACK_TIMEOUT_MS / 3, `drained after ${tookMs} ms, before any resend could have been answered`);
  } finally {
    await nc.close();
  }
});

test('channel - a receiver that never answers breaks the channel at the acknowledgement time-out, naming the batch', { timeout: 30_000 }, async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    nc.subscribe(subjects.channel(JOB, STAGE, 2), { callback: () => undefined });
    await nc.flush();
    let broken: ChannelBrokenError | undefined;
    const s = sender(nc, (e) => (broken = e));
    const started = Date.now();
    s.send(2, { key: 'a', timestamp: 0, value: 1 });
    s.flush();
    const error = await waitFor(() => broken, { timeoutMs: 10_000, what: 'the channel to break' });
    await s.close();
    assert.match(error.message, /batch 1 to counts key group 2 unacknowledged after 1500 ms, sent again without an answer/);
    assert.ok(Date.now() - started >= ACK_TIMEOUT_MS, 'not before the time-out');
    assert.ok(s.resentBatches >= 1, 'it was sent again before the channel broke');
  } finally {
    await nc.close();
  }
});
