export { Worker } from './worker.ts';
export type { WorkerOptions, CompiledWorkerOptions, ServingOptions } from './options.ts';
export { compileWorkerOptions } from './options.ts';
import { Worker } from './worker.ts';
import type { WorkerOptions } from './options.ts';

/** Starts a worker; it logs "worker ready" once registered with the coordinator. */
export function startWorker(options: WorkerOptions): Promise<Worker> {
  return Worker.start(options);
}
