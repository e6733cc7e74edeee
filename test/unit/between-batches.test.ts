import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel, Worker } from 'node:worker_threads';
import { POLL_EVERY_MS } from '../../worker/task/between-batches.ts';
import { busyThreadSource } from '../kit/busy-thread.ts';

// A thread that keeps its microtask queue full, as a job's drains do under a backlog: a loop of
// batches (a few hundred µs of work each, then an await of a resolved promise) that never gives
// the event loop a turn. It asks betweenBatches() after each batch, as the keyed and source loops
// do, and stops once its query was answered, or after STRETCH_MS.
const STRETCH_MS = 5_000;
const THREAD = busyThreadSource(`
  answerBetweenBatches(workerData.queries, (m) => {
    answered();
    parentPort.postMessage({ kind: 'answer', id: m.id, during: stretching() });
  });
`);

test('between batches - a query posted to a thread whose loop never yields is answered during the loop, not after it', async () => {
  const queries = new MessageChannel();
  const thread = new Worker(THREAD, {
    eval: true,
    workerData: { tsx: import.meta.resolve('tsx/esm/api'), batches: import.meta.resolve('../../worker/task/between-batches.ts'), queries: queries.port2, stretchMs: STRETCH_MS },
    transferList: [queries.port2],
  });
  try {
    const seen: Array<{ kind: string; during?: boolean; id?: number }> = [];
    const stretched = new Promise<void>((resolve, reject) => {
      thread.on('error', reject);
      thread.on('message', (m: { kind: string; during?: boolean; id?: number }) => {
        seen.push(m);
        // Ready: start the stretch. Stretching: the thread's loop runs; ask it something.
        if (m.kind === 'ready') thread.postMessage('go');
        if (m.kind === 'stretching') queries.port1.postMessage({ id: 1 });
        if (m.kind === 'stretched') resolve();
      });
    });
    await stretched;
    const answer = seen.find((m) => m.kind === 'answer');
    assert.ok(answer !== undefined, `no answer: ${JSON.stringify(seen)}`);
    assert.equal(answer.id, 1);
    assert.equal(answer.during, true, `the query waited for the end of the ${STRETCH_MS} ms loop (polled every ${POLL_EVERY_MS} ms between batches)`);
    assert.deepEqual(
      seen.map((m) => m.kind),
      ['ready', 'stretching', 'answer', 'stretched'],
    );
  } finally {
    await thread.terminate();
    queries.port1.close();
  }
});
