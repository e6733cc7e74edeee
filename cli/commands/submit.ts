// eddy submit <bundle.js|job.ts> [--manifest file] [--from-savepoint path] [--start-at source=position]…:
// upload a job to the coordinator.
import { InvalidArgumentError, type Command } from 'commander';
import { parseStartAtOverride, type StartAtSpec } from '../../core/start-at.ts';
import { loadJobBundle } from '../job-bundle.ts';
import { timeoutGiven, withClient } from '../context.ts';
import type { EddyClient } from '../client.ts';
import type { JobBundle } from '../job-bundle.ts';

/**
 * A submit lasts longer than a query: the coordinator stores the bundle and may deploy it before
 * it answers. Without an explicit --timeout-ms the submit gets this deadline.
 */
export const DEFAULT_SUBMIT_TIMEOUT_MS = 30_000;

export interface SubmitOptions {
  fromSavepoint?: string;
  allowNonRestoredState?: boolean;
  startAt?: Array<{ source: string; startAt: StartAtSpec }>;
}

/** --start-at, repeatable: each value is parsed as it arrives, so a bad one is a usage error. */
function collectStartAt(raw: string, previous: Array<{ source: string; startAt: StartAtSpec }> = []): Array<{ source: string; startAt: StartAtSpec }> {
  try {
    return [...previous, parseStartAtOverride(raw)];
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

export async function submitBundle(client: EddyClient, bundle: JobBundle, timeoutMs?: number, options: SubmitOptions = {}): Promise<string> {
  const response = await client.submitJob({
    manifestJson: bundle.manifestJson,
    bundleSha256: bundle.sha256,
    code: bundle.code,
    timeoutMs: timeoutMs ?? Math.max(client.timeoutMs, DEFAULT_SUBMIT_TIMEOUT_MS),
    ...options,
  });
  return response.jobId;
}

export function registerSubmit(program: Command): void {
  program
    .command('submit')
    .description('submit a job: a .ts entry is built first; a .js bundle needs its .manifest.json')
    .argument('<bundle.js|job.ts>', 'a bundle written by eddy build, or a job entry file')
    .option('--manifest <file>', "the bundle's manifest (default: <bundle>.manifest.json)")
    .option('--from-savepoint <path>', "start from a savepoint (the path `eddy savepoint` printed)")
    .option('--allow-non-restored-state', "start even if the savepoint holds state of stages this bundle does not have")
    .option(
      '--start-at <source=position>',
      'where a source starts on this fresh start: <stream>=<sequence|ISO time|earliest|latest>, e.g. clicks=2026-11-22T10:00:00Z (repeatable; not with --from-savepoint)',
      collectStartAt,
    )
    .action(async (file: string, options: { manifest?: string; fromSavepoint?: string; allowNonRestoredState?: boolean; startAt?: SubmitOptions['startAt'] }, command: Command) => {
      if (options.startAt && options.fromSavepoint) {
        command.error('error: --start-at cannot be combined with --from-savepoint: a savepoint goes on from its own source positions', { exitCode: 2, code: 'eddy.usage' });
      }
      const bundle = await loadJobBundle(file, options.manifest);
      const submit: SubmitOptions = {
        ...(options.fromSavepoint ? { fromSavepoint: options.fromSavepoint } : {}),
        ...(options.allowNonRestoredState ? { allowNonRestoredState: true } : {}),
        ...(options.startAt ? { startAt: options.startAt } : {}),
      };
      const jobId = await withClient(command, (client) => submitBundle(client, bundle, timeoutGiven(command) ? client.timeoutMs : undefined, submit));
      console.log(jobId);
    });
}
