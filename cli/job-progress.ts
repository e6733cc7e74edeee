// Waiting on a job through GetJob: until it runs, and until it has processed what was published.
import { setTimeout as delay } from 'node:timers/promises';
import { CliError } from './errors.ts';
import type { EddyClient, JobInfo } from './client.ts';

export const POLL_INTERVAL_MS = 250;

function failureOf(job: JobInfo): string {
  const f = job.lastFailure;
  if (!f?.message) return '';
  return `: ${f.message}${f.stageId ? ` (stage ${f.stageId}${f.workerId ? `, worker ${f.workerId}` : ''})` : ''}`;
}

/** Resolves once the job is RUNNING; fails if it ends (FAILED, CANCELLED) or the deadline passes. */
export async function waitForJobRunning(client: EddyClient, jobId: string, timeoutMs: number): Promise<JobInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await client.getJob(jobId);
    if (job.state === 'RUNNING') return job;
    if (job.state === 'FAILED' || job.state === 'CANCELLED') throw new CliError(`job ${jobId} is ${job.state}${failureOf(job)}`);
    if (Date.now() > deadline) throw new CliError(`job ${jobId} is still ${job.state} after ${timeoutMs / 1000} s (see eddy job ${jobId})`);
    await delay(POLL_INTERVAL_MS);
  }
}

/** Stage counters in pipeline order, as one comparable line. */
export function countersLine(job: JobInfo): string {
  return job.stages.map((s) => `${s.stageId} in=${s.recordsIn} out=${s.recordsOut} dlq=${s.deadLetters}`).join(', ');
}

/**
 * Processed: the source stage has read at least `published` records, and every later stage has
 * taken in exactly what the stage before it let out. Counters arrive with worker heartbeats, so
 * the same counters must be seen on two polls in a row before they are believed.
 */
export function isProcessed(job: JobInfo, published: number): boolean {
  const [source, ...rest] = job.stages;
  if (source === undefined || Number(source.recordsIn) < published) return false;
  let previous = source;
  for (const stage of rest) {
    if (stage.recordsIn !== previous.recordsOut) return false;
    previous = stage;
  }
  return true;
}

export interface ProcessedOptions {
  timeoutMs: number;
  /** Called on every poll. */
  onPoll?: (job: JobInfo) => void;
}

export async function waitUntilProcessed(client: EddyClient, jobId: string, published: number, options: ProcessedOptions): Promise<JobInfo> {
  const deadline = Date.now() + options.timeoutMs;
  let previous: string | undefined;
  for (;;) {
    const job = await client.getJob(jobId);
    options.onPoll?.(job);
    if (job.state === 'FAILED' || job.state === 'CANCELLED') throw new CliError(`job ${jobId} is ${job.state}${failureOf(job)}`);
    const counters = countersLine(job);
    if (isProcessed(job, published) && counters === previous) return job;
    previous = counters;
    if (Date.now() > deadline) {
      throw new CliError(`job ${jobId} had not processed ${published} records after ${options.timeoutMs / 1000} s (${counters || 'no stage counters'})`);
    }
    await delay(POLL_INTERVAL_MS);
  }
}
