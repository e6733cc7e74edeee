// A job's worker thread starts here (worker/isolated-job.ts): loaders given with --import do not
// reach worker threads on Node 20, so TypeScript support is registered again before the thread's
// TypeScript entry (worker/job-thread-main.ts) is imported.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
