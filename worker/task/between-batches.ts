// Work a job's thread does between two batches of a long stretch. A state read that hits memory
// resolves as a microtask, and a source with a thousand messages pulled ahead iterates them without
// waiting on I/O, so under a backlog the keyed tasks' drains and the sources' loops keep the
// microtask queue full for 100-250 ms at a time: nothing else of the thread's event loop runs, and
// a direct feature read handed over by the worker waited that long for it (docs/BENCHMARKS.md).
// Letting the event loop in more often was tried: at 5 ms, the channel senders' linger timers
// fired every turn and shuffle batches shrank from 45 records to 8, for 40 % fewer events/s. So
// the loops stay long, and the thread polls its query port in them instead (job-thread-main.ts).
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

/** How often, at most, the hook runs: a poll of an empty port costs about a microsecond. */
export const POLL_EVERY_MS = 1;

let hook: (() => void) | undefined;
let lastPollMs = 0;

/**
 * Answers every message of `port`: at the port's turn of the event loop, as any listener, and also
 * between batches, taken off the port synchronously. One port per thread: a second call replaces
 * the first's polling.
 */
export function answerBetweenBatches<T>(port: MessagePort, answer: (message: T) => void): void {
  port.on('message', answer);
  hook = () => {
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) answer(m.message as T);
  };
}

/** Called by the loops after each batch (keyed) or message (source): runs the hook at most every POLL_EVERY_MS. */
export function betweenBatches(): void {
  if (hook === undefined) return;
  const now = performance.now();
  if (now - lastPollMs < POLL_EVERY_MS) return;
  lastPollMs = now;
  hook();
}
