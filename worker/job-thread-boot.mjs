// A job's worker thread starts here (worker/isolated-job.ts): loaders given with --import do not
// reach worker threads on Node 20, so TypeScript support is registered again before the thread's
// TypeScript entry (worker/job-thread-main.ts) is imported. A compiled worker (cli/dist-build.ts)
// passes the compiled entry, which needs no loader.
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
