// Watermarks ride on data batches (worker/channel/channel-sender.ts, "Watermarks"): a plain
// watermark is owed to each channel and travels on its next data batch, or replaces one still
// queued, or goes alone once watermarkLingerMs ran out; idleness and the end of input go at once.
// Whatever the path, a watermark never arrives before a record sent before it. Against a real
// nats-server; the receiver acknowledges each batch as worker/task/keyed-task.ts does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor } from '../kit/index.ts';
import { ChannelSender } from '../../worker/channel/channel-sender.ts';
import { encodeAck } from '../../worker/channel/channel-acks.ts';
import { BatchKind, decodeHeader, decodeRecords, decodeWatermark } from '../../core/record-batch.ts';
import { subjects } from '../../core/subjects.ts';
import type { ChannelBrokenError } from '../../core/errors.ts';
import type { JobId, StageId } from '../../core/ids.ts';

const JOB = 'riding-job' as JobId;
const STAGE = 'windows' as StageId;
const SENDER = 'split0@e1~0';
const KEY_GROUPS = 4;
const LINGER_MS = 400;

/** What a channel delivered, in order: records by key, and watermarks as "wm:<ms>" (idle: "idle:<ms>"). */
type Seen = Array<{ item: string; at: number }>;

async function receiver(nc: NatsConnection): Promise<{ seen: Seen[]; messages: number[] }> {
  const seen: Seen[] = Array.from({ length: KEY_GROUPS }, () => []);
  const messages = new Array<number>(KEY_GROUPS).fill(0);
  for (let kg = 0; kg < KEY_GROUPS; kg++) {
    nc.subscribe(subjects.channel(JOB, STAGE, kg), {
      callback: (_e, msg) => {
        const header = decodeHeader(msg.data);
        messages[kg]!++;
        const at = Date.now();
        for (const r of decodeRecords(msg.data, header)) seen[kg]!.push({ item: r.key, at });
        if (header.watermarkOffset >= 0) {
          const { watermark, idle } = decodeWatermark(msg.data, header);
          seen[kg]!.push({ item: `${idle ? 'idle' : 'wm'}:${watermark}`, at });
        }
        assert.ok(header.kind === BatchKind.DATA || header.kind === BatchKind.WATERMARK);
        if (msg.reply) nc.publish(msg.reply, encodeAck(kg, header.sequence, SENDER, undefined));
      },
    });
  }
  await nc.flush();
  return { seen, messages };
}

function sender(nc: NatsConnection, watermarkLingerMs: number, broken: (e: ChannelBrokenError) => void): ChannelSender {
  return new ChannelSender({ nc, jobId: JOB, toStage: STAGE, senderTask: SENDER, maxParallelism: KEY_GROUPS, maxBatchRecords: 100, batchLingerMs: 5, watermarkLingerMs, channelWindow: 4, ackTimeoutMs: 10_000, onBroken: broken });
}

const items = (seen: Seen) => seen.map((s) => s.item);

test('channel watermarks - a watermark rides on the next data batch or goes alone after the linger, never ahead of the records before it; idleness goes at once', { timeout: 30_000 }, async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    const { seen, messages } = await receiver(nc);
    let broken: ChannelBrokenError | undefined;
    const s = sender(nc, LINGER_MS, (e) => (broken = e));
    // Records wait in key group 0's open batch: the watermark closes it and rides on it.
    s.send(0, { key: 'a', timestamp: 1, value: 1 });
    s.send(0, { key: 'b', timestamp: 2, value: 2 });
    const firstWatermarkAt = Date.now();
    s.sendWatermark(100, false);
    // Key group 1 gets a record after the watermark: the owed watermark rides on its batch,
    // after the record (later than it could have been, never earlier).
    s.send(1, { key: 'c', timestamp: 3, value: 3 });
    s.flush();
    await waitFor(() => seen[0]!.length === 3 && seen[1]!.length === 2, { timeoutMs: 5_000, what: 'the first two batches' });
    assert.deepEqual(items(seen[0]!), ['a', 'b', 'wm:100']);
    assert.deepEqual(items(seen[1]!), ['c', 'wm:100']);
    assert.deepEqual(messages, [1, 1, 0, 0], 'one message each, nothing yet where no record went');
    // A newer watermark replaces what key groups 2 and 3 still owe; after the linger every
    // channel gets the newest one alone, once.
    s.sendWatermark(200, false);
    await waitFor(() => seen.every((ch) => ch.at(-1)?.item === 'wm:200'), { timeoutMs: 5_000, what: 'watermark 200 on every channel' });
    assert.deepEqual(items(seen[2]!), ['wm:200'], 'watermark 100 was replaced while owed, not sent');
    assert.deepEqual(items(seen[3]!), ['wm:200']);
    const lingered = seen[2]![0]!.at - firstWatermarkAt;
    assert.ok(lingered >= LINGER_MS - 20, `a watermark went alone after ${lingered} ms, before the ${LINGER_MS} ms linger`);
    assert.deepEqual(messages, [2, 2, 1, 1]);
    // Idleness does not wait, whether or not something is owed.
    s.send(3, { key: 'd', timestamp: 4, value: 4 });
    s.sendWatermark(300, false);
    const idleAt = Date.now();
    s.sendWatermark(300, true);
    await waitFor(() => seen.every((ch) => ch.at(-1)?.item === 'idle:300'), { timeoutMs: 5_000, what: 'idleness on every channel' });
    const idleTookMs = Math.max(...seen.map((ch) => ch.at(-1)!.at)) - idleAt;
    assert.ok(idleTookMs < LINGER_MS, `idleness took ${idleTookMs} ms, as long as the linger`);
    assert.deepEqual(items(seen[3]!), ['wm:200', 'd', 'wm:300', 'idle:300'], 'the record, its watermark on its batch, then idleness');
    assert.deepEqual(items(seen[0]!), ['a', 'b', 'wm:100', 'wm:200', 'idle:300'], 'an owed watermark gives way to the idleness after it');
    assert.equal(s.ridingWatermarks, 3);
    await s.whenDrained();
    await s.close();
    assert.equal(broken, undefined);
  } finally {
    await nc.close();
  }
});

test('channel watermarks - with no linger every watermark is a message of its own on every channel, at once', { timeout: 30_000 }, async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    const { seen, messages } = await receiver(nc);
    const s = sender(nc, 0, (e) => assert.fail(e.message));
    s.send(0, { key: 'a', timestamp: 1, value: 1 });
    s.sendWatermark(100, false);
    s.sendWatermark(200, false);
    await waitFor(() => seen.every((ch) => ch.at(-1)?.item === 'wm:200'), { timeoutMs: 5_000, what: 'watermark 200 on every channel' });
    assert.deepEqual(items(seen[0]!), ['a', 'wm:100', 'wm:200']);
    assert.deepEqual(items(seen[1]!), ['wm:100', 'wm:200']);
    assert.deepEqual(messages, [3, 2, 2, 2]);
    assert.equal(s.ridingWatermarks, 0);
    await s.whenDrained();
    await s.close();
  } finally {
    await nc.close();
  }
});
