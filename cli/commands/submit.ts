// eddy submit <bundle.js|job.ts> [--manifest file]: upload a job to the coordinator.
import type { Command } from 'commander';
import { loadJobBundle } from '../job-bundle.ts';
import { timeoutGiven, withClient } from '../context.ts';
import type { EddyClient } from '../client.ts';
import type { JobBundle } from '../job-bundle.ts';

/**
 * A submit lasts longer than a query: the coordinator stores the bundle and may deploy it before
 * it answers. Without an explicit --timeout-ms the submit gets this deadline.
 */
export const DEFAULT_SUBMIT_TIMEOUT_MS = 30_000;

export async function submitBundle(client: EddyClient, bundle: JobBundle, timeoutMs?: number): Promise<string> {
  const response = await client.submitJob({
    manifestJson: bundle.manifestJson,
    bundleSha256: bundle.sha256,
    code: bundle.code,
    timeoutMs: timeoutMs ?? Math.max(client.timeoutMs, DEFAULT_SUBMIT_TIMEOUT_MS),
  });
  return response.jobId;
}

export function registerSubmit(program: Command): void {
  program
    .command('submit')
    .description('submit a job: a .ts entry is built first; a .js bundle needs its .manifest.json')
    .argument('<bundle.js|job.ts>', 'a bundle written by eddy build, or a job entry file')
    .option('--manifest <file>', "the bundle's manifest (default: <bundle>.manifest.json)")
    .action(async (file: string, options: { manifest?: string }, command: Command) => {
      const bundle = await loadJobBundle(file, options.manifest);
      const jobId = await withClient(command, (client) => submitBundle(client, bundle, timeoutGiven(command) ? client.timeoutMs : undefined));
      console.log(jobId);
    });
}
