// eddy jobs | job <id> [--json] | savepoint <id> | stop <id> [--savepoint] | cancel <id>: the jobs the coordinator runs.
import type { Command } from 'commander';
import { withClient } from '../context.ts';
import { formatAge, formatCount, formatRate, table } from '../format.ts';
import type { JobInfo, WorkerInfo } from '../client.ts';

/** JobInfo with its 64-bit counters as numbers, for --json. */
export function jobToJson(job: JobInfo): object {
  return {
    jobId: job.jobId,
    name: job.name,
    state: job.state,
    bundleSha256: job.bundleSha256,
    submittedAtUnixMs: Number(job.submittedAtUnixMs),
    epoch: Number(job.epoch),
    features: job.features,
    stages: job.stages.map((s) => ({
      stageId: s.stageId,
      kind: s.kind,
      recordsIn: Number(s.recordsIn),
      recordsOut: Number(s.recordsOut),
      deadLetters: Number(s.deadLetters),
      recordsInPerSecond: s.recordsInPerSecond,
      recordsOutPerSecond: s.recordsOutPerSecond,
      backpressureMs: Number(s.backpressureMs),
      backpressureRatio: s.backpressureRatio,
    })),
    restarts: job.restarts,
    checkpoints: job.checkpoints
      ? {
          completed: Number(job.checkpoints.completed),
          failed: Number(job.checkpoints.failed),
          lastFailure: job.checkpoints.lastFailure,
          lastDurationMs: Number(job.checkpoints.lastDurationMs),
          lastBytes: Number(job.checkpoints.lastBytes),
          latestId: Number(job.checkpoints.latestId),
          inFlightId: Number(job.checkpoints.inFlightId),
          idle: job.checkpoints.idle === true,
        }
      : null,
    lastFailure: job.lastFailure?.message
      ? { ...job.lastFailure, atUnixMs: Number(job.lastFailure.atUnixMs) }
      : null,
  };
}

function workersOf(jobId: string, workers: readonly WorkerInfo[]): number {
  return workers.filter((w) => w.state !== 'DEAD' && w.assignments.some((a) => a.jobId === jobId)).length;
}

function printJob(job: JobInfo): void {
  const submitted = Number(job.submittedAtUnixMs);
  const rows: [string, string][] = [
    ['job', job.jobId],
    ['name', job.name],
    ['state', job.state],
    ['epoch', String(job.epoch)],
    ['bundle', `sha256 ${job.bundleSha256}`],
    ['submitted', submitted ? `${new Date(submitted).toISOString()} (${formatAge(submitted)} ago)` : '-'],
    ['features', job.features.length > 0 ? job.features.join(', ') : '-'],
    ['restarts', String(job.restarts)],
  ];
  const c = job.checkpoints;
  if (c) {
    rows.push([
      'checkpoints',
      `${formatCount(c.completed)} completed, ${formatCount(c.failed)} failed; latest ${Number(c.latestId) || '-'}` +
        (Number(c.latestId) ? ` (${c.lastDurationMs} ms, ${formatCount(c.lastBytes)} bytes)` : '') +
        (Number(c.inFlightId) ? `; ${c.inFlightId} in flight` : ''),
    ]);
    if (c.lastFailure) rows.push(['last checkpoint failure', c.lastFailure]);
  }
  console.log(table(rows));
  console.log('');
  console.log(
    table([
      ['STAGE', 'KIND', 'RECORDS IN', 'RECORDS OUT', 'DEAD LETTERS', 'RATE IN', 'RATE OUT', 'BACKPRESSURE'],
      ...job.stages.map((s) => [
        s.stageId,
        s.kind,
        formatCount(s.recordsIn),
        formatCount(s.recordsOut),
        formatCount(s.deadLetters),
        formatRate(s.recordsInPerSecond),
        formatRate(s.recordsOutPerSecond),
        // Share of the last few seconds the stage's senders waited on full channel windows.
        `${Math.round(s.backpressureRatio * 100)}%`,
      ]),
    ]),
  );
  const failure = job.lastFailure;
  if (failure?.message) {
    const at = Number(failure.atUnixMs);
    console.log('');
    console.log(`last failure${at ? ` at ${new Date(at).toISOString()} (${formatAge(at)} ago)` : ''}:`);
    console.log(`  ${failure.message}`);
    const where = [
      failure.stageId && `stage ${failure.stageId}`,
      failure.keyGroup >= 0 && failure.stageId ? `key group ${failure.keyGroup}` : '',
      failure.workerId && `worker ${failure.workerId}`,
    ].filter(Boolean);
    if (where.length > 0) console.log(`  in ${where.join(', ')}`);
    if (failure.stack) for (const line of failure.stack.split('\n')) console.log(`  | ${line}`);
  }
}

export function registerJobs(program: Command): void {
  program
    .command('jobs')
    .description('list jobs: state, workers, assignment epoch, records in per stage')
    .action(async (_options: object, command: Command) => {
      const [jobs, workers] = await withClient(command, (client) => Promise.all([client.listJobs(), client.listWorkers()]));
      if (jobs.length === 0) {
        console.log('no jobs (submit one with: eddy submit <job.ts>)');
        return;
      }
      console.log(
        table([
          ['JOB', 'STATE', 'WORKERS', 'EPOCH', 'RECORDS IN'],
          ...jobs.map((j) => [
            j.jobId,
            j.state,
            String(workersOf(j.jobId, workers)),
            String(j.epoch),
            j.stages.map((s) => `${s.stageId}=${formatCount(s.recordsIn)}`).join(' '),
          ]),
        ]),
      );
    });

  program
    .command('job')
    .description("a job's state, stages with records in/out, dead letters, rates, backpressure and last failure")
    .argument('<id>', 'job id')
    .option('--json', 'print the job as JSON')
    .action(async (jobId: string, options: { json?: boolean }, command: Command) => {
      const job = await withClient(command, (client) => client.getJob(jobId));
      if (options.json) console.log(JSON.stringify(jobToJson(job), null, 2));
      else printJob(job);
    });

  program
    .command('savepoint')
    .description('take a savepoint now and print its path (for submit --from-savepoint)')
    .argument('<id>', 'job id')
    .action(async (jobId: string, _options: object, command: Command) => {
      const sp = await withClient(command, (client) => client.savepoint(jobId, false));
      console.log(sp.path);
    });

  program
    .command('stop')
    .description('stop a job; with --savepoint, after taking a savepoint (its path is printed)')
    .argument('<id>', 'job id')
    .option('--savepoint', 'take a savepoint first')
    .action(async (jobId: string, options: { savepoint?: boolean }, command: Command) => {
      if (options.savepoint) {
        const sp = await withClient(command, (client) => client.savepoint(jobId, true));
        console.log(sp.path);
      } else {
        const job = await withClient(command, (client) => client.cancelJob(jobId));
        console.log(`${job.jobId || jobId} ${job.state || 'CANCELLED'}`);
      }
    });

  program
    .command('cancel')
    .description('cancel a job')
    .argument('<id>', 'job id')
    .action(async (jobId: string, _options: object, command: Command) => {
      const job = await withClient(command, (client) => client.cancelJob(jobId));
      console.log(`${job.jobId || jobId} ${job.state || 'CANCELLED'}`);
    });
}
