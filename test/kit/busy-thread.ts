// A worker thread with its microtask queue full, as a job's thread under a backlog (between-batches
// and query-inbox tests): batches of 0.3 ms of work joined by awaits of resolved promises, and
// betweenBatches() after each (worker/task/between-batches.ts), so that the event loop gets no turn
// for up to workerData.stretchMs. `setup` is evaluated first in the thread (an async function's
// body with `workerData`, `parentPort` and the between-batches module's `answerBetweenBatches`
// in scope); it calls answered() once its query got an answer, which ends the stretch early.
// The thread posts {kind: 'ready'}, waits for any message, posts {kind: 'stretching'}, runs the
// loop, posts {kind: 'stretched'}; stretching() tells setup's handlers whether the loop runs.

/** The thread's source for `new Worker(source, { eval: true })`; workerData needs `tsx`, `batches` and `stretchMs`. */
export function busyThreadSource(setup: string): string {
  return `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { register } = await import(workerData.tsx);
  register();
  const { answerBetweenBatches, betweenBatches } = await import(workerData.batches);
  let answeredFlag = false;
  let running = false;
  const answered = () => { answeredFlag = true; };
  const stretching = () => running;
  await (async () => { ${setup} })();
  parentPort.once('message', async () => {
    running = true;
    parentPort.postMessage({ kind: 'stretching' });
    const end = performance.now() + workerData.stretchMs;
    while (!answeredFlag && performance.now() < end) {
      const batchEnd = performance.now() + 0.3;
      while (performance.now() < batchEnd);
      await Promise.resolve();
      betweenBatches();
    }
    running = false;
    parentPort.postMessage({ kind: 'stretched' });
  });
  parentPort.postMessage({ kind: 'ready' });
})();
`;
}
