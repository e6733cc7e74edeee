import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel, Worker } from 'node:worker_threads';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsServer, waitFor } from '../kit/index.ts';
import { busyThreadSource } from '../kit/busy-thread.ts';
import { InboxRelay, RelayedInbox, type FromInbox, type InboxMessage, type ToInbox } from '../../worker/query/query-inbox.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A relay on `nc` for the other end of a fresh channel; resolves `subscribed` with every subscription it takes. */
function relayOn(nc: NatsConnection): { relay: InboxRelay; jobEnd: MessageChannel['port2']; workerEnd: MessageChannel['port1']; subscribed: () => number } {
  const channel = new MessageChannel();
  const relay = new InboxRelay(nc, channel.port1);
  let subscriptions = 0;
  channel.port1.on('message', (m: FromInbox) => {
    if (m.kind === 'subscribe') subscriptions++;
    relay.onMessage(m);
  });
  return { relay, jobEnd: channel.port2, workerEnd: channel.port1, subscribed: () => subscriptions };
}

// A job's thread with its microtask queue full, as under a backlog (see between-batches.test.ts):
// batches of 0.3 ms joined by awaits of resolved promises, betweenBatches() after each, no turn of
// the event loop for up to STRETCH_MS. Its query responder's inbox is the production RelayedInbox
// on its query port, polled between batches as job-thread-main.ts does.
const STRETCH_MS = 5_000;
const THREAD = busyThreadSource(`
  const { RelayedInbox } = await import(workerData.inbox);
  const inbox = new RelayedInbox(workerData.queries);
  answerBetweenBatches(workerData.queries, (m) => inbox.onMessage(m));
  inbox.subscribe('eddy.q.test.7', (msg) => {
    answered();
    msg.respond(new TextEncoder().encode('answer to ' + new TextDecoder().decode(msg.data)));
    parentPort.postMessage({ kind: 'answered', during: stretching() });
  });
`);

test('query inbox - a NATS request for a job thread whose loop never yields is answered during the loop: the worker thread holds the subscription', async () => {
  await using nats = await startNatsServer({ jetstream: false });
  const nc = await connect({ servers: nats.url });
  const { relay, jobEnd, workerEnd, subscribed } = relayOn(nc);
  const thread = new Worker(THREAD, {
    eval: true,
    workerData: {
      tsx: import.meta.resolve('tsx/esm/api'),
      batches: import.meta.resolve('../../worker/task/between-batches.ts'),
      inbox: import.meta.resolve('../../worker/query/query-inbox.ts'),
      queries: jobEnd,
      stretchMs: STRETCH_MS,
    },
    transferList: [jobEnd],
  });
  try {
    const seen: Array<{ kind: string; during?: boolean }> = [];
    let stretching!: () => void;
    const started = new Promise<void>((resolve) => (stretching = resolve));
    const stretched = new Promise<void>((resolve, reject) => {
      thread.on('error', reject);
      thread.on('message', (m: { kind: string; during?: boolean }) => {
        seen.push(m);
        if (m.kind === 'stretching') stretching();
        if (m.kind === 'stretched') resolve();
      });
    });
    await waitFor(() => subscribed() === 1 && seen.some((m) => m.kind === 'ready'), { timeoutMs: 10_000, what: 'the thread subscribed through the relay' });
    await nc.flush();
    thread.postMessage('go');
    await started;
    const asked = performance.now();
    const reply = await nc.request('eddy.q.test.7', encoder.encode('q1'), { timeout: STRETCH_MS });
    const tookMs = performance.now() - asked;
    assert.equal(decoder.decode(reply.data), 'answer to q1');
    await stretched;
    const answered = seen.find((m) => m.kind === 'answered');
    assert.equal(answered?.during, true, `the request waited for the end of the ${STRETCH_MS} ms loop: ${JSON.stringify(seen)}`);
    assert.ok(tookMs < STRETCH_MS / 2, `answered after ${tookMs.toFixed(0)} ms`);
  } finally {
    await thread.terminate();
    relay.close();
    workerEnd.close();
    await nc.close();
  }
});

test('query inbox - a drained subscription still answers what was delivered before; a closed relay leaves no responder', async () => {
  await using nats = await startNatsServer({ jetstream: false });
  const nc = await connect({ servers: nats.url });
  const { relay, jobEnd, workerEnd, subscribed } = relayOn(nc);
  const inbox = new RelayedInbox(jobEnd);
  const held: InboxMessage[] = [];
  let drained = false;
  jobEnd.on('message', (m: ToInbox) => {
    if (m.kind === 'drained') drained = true;
    inbox.onMessage(m);
  });
  try {
    // Requests are held, not answered, until the subscription is drained.
    const sub = inbox.subscribe('eddy.q.test.3', (msg) => held.push(msg));
    await waitFor(() => subscribed() === 1, { timeoutMs: 5_000, what: 'the subscription' });
    await nc.flush();
    const pending = [nc.request('eddy.q.test.3', encoder.encode('a'), { timeout: 5_000 }), nc.request('eddy.q.test.3', encoder.encode('b'), { timeout: 5_000 })];
    await waitFor(() => held.length === 2, { timeoutMs: 5_000, what: 'both requests handed over' });
    sub.drain();
    await waitFor(() => drained, { timeoutMs: 5_000, what: 'the drain to complete' });
    // Answered after the drain: the replies still go out.
    for (const msg of held) msg.respond(encoder.encode(`re:${decoder.decode(msg.data)}`));
    assert.deepEqual((await Promise.all(pending)).map((r) => decoder.decode(r.data)), ['re:a', 're:b']);
    await assert.rejects(nc.request('eddy.q.test.3', encoder.encode('c'), { timeout: 2_000 }), /503|no responders/i, 'a drained subject has no responder');

    // The job's thread ends: the relay lets every subscription go, so a router learns at once.
    inbox.subscribe('eddy.q.test.4', (msg) => msg.respond(encoder.encode('ok')));
    await waitFor(() => subscribed() === 2, { timeoutMs: 5_000, what: 'the second subscription' });
    await nc.flush();
    assert.equal(decoder.decode((await nc.request('eddy.q.test.4', encoder.encode(''), { timeout: 5_000 })).data), 'ok');
    relay.close();
    await assert.rejects(nc.request('eddy.q.test.4', encoder.encode(''), { timeout: 2_000 }), /503|no responders/i, 'a closed relay has no responder');
  } finally {
    relay.close();
    workerEnd.close();
    jobEnd.close();
    await nc.close();
  }
});
