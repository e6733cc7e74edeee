// When a source split replaces its consumer (worker/task/consumer-watch.ts): silent for three
// heartbeat intervals; idle while the stream holds an older message the split has not read (the
// stream asked at three and six idle intervals, then every five); and the probe's stream read,
// against a real nats-server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startNatsServer } from '../kit/index.ts';
import { ConsumerWatch, IDLE_TICKS, PROBE_EVERY_TICKS, SILENT_TICKS, unreadMessage, type ConsumerTick, type WatchVerdict } from '../../worker/task/consumer-watch.ts';
import { ensureSourceStream } from '../../core/nats.ts';

function run(watch: ConsumerWatch, ticks: readonly ConsumerTick[]): WatchVerdict['kind'][] {
  return ticks.map((t) => watch.tick(t).kind);
}

test('consumer watch - no message, no heartbeat, nothing buffered for three intervals: silent', () => {
  const w = new ConsumerWatch(10);
  const quiet = { beats: 0, sequence: 10, pending: 0, busy: false };
  assert.deepEqual(run(w, Array.from({ length: SILENT_TICKS }, () => quiet)), ['ok', 'ok', 'silent']);
});

test('consumer watch - heartbeats keep an idle consumer alive, and the stream is asked at 3 and 6 idle intervals, then every 5', () => {
  const w = new ConsumerWatch(10);
  const kinds = run(w, Array.from({ length: 40 }, (_, i) => ({ beats: i + 1, sequence: 10, pending: 0, busy: false })));
  const probes = kinds.flatMap((k, i) => (k === 'probe' ? [i + 1] : []));
  assert.deepEqual(probes, [3, 6, 11, 16, 21, 26, 31, 36]);
  assert.deepEqual([IDLE_TICKS, PROBE_EVERY_TICKS], [3, 5]);
  assert.ok(!kinds.includes('silent'), 'a consumer that sends heartbeats is never silent');
});

test('consumer watch - a message read, one buffered, or the split busy downstream is progress: no probe, and the count starts again', () => {
  const w = new ConsumerWatch(10);
  // Two idle intervals, then progress of each kind in turn, each followed by two idle ones.
  const ticks: ConsumerTick[] = [
    { beats: 1, sequence: 10, pending: 0, busy: false },
    { beats: 2, sequence: 10, pending: 0, busy: false },
    { beats: 2, sequence: 11, pending: 0, busy: false },
    { beats: 3, sequence: 11, pending: 0, busy: false },
    { beats: 4, sequence: 11, pending: 0, busy: false },
    { beats: 4, sequence: 11, pending: 5, busy: false },
    { beats: 5, sequence: 11, pending: 0, busy: false },
    { beats: 6, sequence: 11, pending: 0, busy: false },
    // Waiting for room downstream for a long time, no heartbeat (nothing to pull): not a stall.
    ...Array.from({ length: 12 }, () => ({ beats: 6, sequence: 11, pending: 0, busy: true })),
    { beats: 7, sequence: 11, pending: 0, busy: false },
    { beats: 8, sequence: 11, pending: 0, busy: false },
    { beats: 9, sequence: 11, pending: 0, busy: false },
  ];
  const kinds = run(w, ticks);
  assert.deepEqual(kinds.slice(0, -1), kinds.slice(0, -1).map(() => 'ok'));
  assert.equal(kinds.at(-1), 'probe', 'the third idle interval after the last progress asks the stream');
});

test('consumer watch - the probe finds the split\'s next message after a sequence, only on its own subject, and only once it is older than asked', { timeout: 30_000 }, async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    await ensureSourceStream(nc, { stream: 'watched', partitions: 2, partitionKey: 'id' });
    const js = jetstream(nc);
    // Sequences 1..6, alternating between the two partitions: 1, 3, 5 on watched.0; 2, 4, 6 on watched.1.
    for (let i = 0; i < 6; i++) await js.publish(`watched.${i % 2}`, JSON.stringify({ id: i }));
    assert.deepEqual((await unreadMessage(nc, 'watched', 'watched.1', 2, -1))?.seq, 4, 'the next of watched.1 after 2 is 4');
    assert.deepEqual((await unreadMessage(nc, 'watched', 'watched.0', 1, -1))?.seq, 3, 'the next of watched.0 after 1 is 3');
    assert.equal(await unreadMessage(nc, 'watched', 'watched.0', 5, -1), undefined, 'nothing after the last message of watched.0');
    assert.equal(await unreadMessage(nc, 'watched', 'watched.1', 6, -1), undefined, 'nothing after the end of the stream');
    assert.equal(await unreadMessage(nc, 'watched', 'watched.1', 2, 60_000), undefined, 'a message stored just now is not yet overdue');
  } finally {
    await nc.close();
  }
});
