// Events per second of each use-case job in jobs/, end to end with ONE worker process, against
// what NATS alone does on the same server in the same run: core publish→subscribe of messages of
// the job's mean event size, and a JetStream ordered consume of its source stream. Each job's
// input is prepublished by its generator; the time runs from submit until the job's last stage
// has taken every input record in. Medians of BENCH_RUNS runs.
//
//   BENCH_ONLY=jobs node --import tsx bench/run.ts           (part of `make bench`)
//   node --import tsx bench/jobs.ts [job,job…]              (alone; default: every job below)
// BENCH_JOBS_EVENTS sets the events per run (default 200,000; BENCH_QUICK=1: 100,000).
//
// Adding a job: an entry in USE_CASE_JOBS with its generator. A job with several sources (say, a
// control stream of rules) gives one input per source.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startCluster, waitFor, REPO_ROOT } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { buildBundle } from '../core/bundle.ts';
import { partitionForKey } from '../core/key-groups.ts';
import { ensureSourceStream } from '../core/nats.ts';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { generateIndicators } from '../jobs/customer-experience/generate.ts';
import { generatePageViews } from '../jobs/sessionizer/generate.ts';
import { generateCustomerEvents } from '../jobs/dynamic-alerts/generate.ts';
import { generateOrderLines } from '../jobs/router/generate.ts';
import { generate as generateImpressionsPlays } from '../jobs/impressions-plays/generate.ts';
import { QUICK, RUNS, isMain, jetstreamOrderedMsgsPerSecond, machineLine, median, rawNatsMsgsPerSecond, runMain } from './lib.ts';

/** One source's prepublished input. */
export interface BenchInput {
  stream: string;
  partitions: number;
  /** Top-level JSON field producers partition by. */
  key: string;
  /** NDJSON lines, deterministic. */
  lines: string[];
}

export interface UseCaseJob {
  /** The job's name, as its manifest says. */
  job: string;
  /** Its entry file, relative to the repository. */
  entry: string;
  /** Inputs for a run of `events` events (the first is the stream the JetStream baseline reads). */
  inputs(events: number): BenchInput[];
  /** Records the job's last stage takes in once every input is processed. @default every input line */
  expectedAtLastStage?(inputs: BenchInput[]): number;
}

export const USE_CASE_JOBS: UseCaseJob[] = [
  {
    job: 'customer-experience',
    entry: 'jobs/customer-experience/job.ts',
    inputs: (events) => [{ stream: 'indicators', partitions: 4, key: 'entityId', lines: generateIndicators({ events, entities: 10_000 }) }],
  },
  {
    job: 'sessionizer',
    entry: 'jobs/sessionizer/job.ts',
    // 20,000 users over ~5.5 h of event time (100 ms per view on average): sessions open, close
    // on the gap, bots hit the 4 h cap, and 5% of views come out of order.
    inputs: (events) => [{ stream: 'pageviews', partitions: 4, key: 'userId', lines: generatePageViews({ events, users: 20_000 }) }],
  },
  {
    job: 'dynamic-alerts',
    entry: 'jobs/dynamic-alerts/job.ts',
    // 2,000 customers; five global rules (singular, wildcard and filter paths; broadcast to every
    // key group) and five customer rules, all in force before the events.
    inputs: (events) => [
      { stream: 'alert-events', partitions: 4, key: 'customer', lines: generateCustomerEvents({ events, customers: 2000, seed: 1, outOfOrderMs: 2000 }).map((e) => JSON.stringify(e)) },
      { stream: 'alert-rules', partitions: 1, key: 'scope', lines: ALERT_RULES.map((r) => JSON.stringify(r)) },
    ],
    // The alerts stage takes each global rule once per key group (128).
    expectedAtLastStage: (inputs) => inputs[0]!.lines.length + ALERT_RULES.filter((r) => r.scope === 'customer').length + ALERT_RULES.filter((r) => r.scope === 'global').length * 128,
  },
  {
    job: 'router',
    entry: 'jobs/router/job.ts',
    // jobs/router/routes.json: three routes with filters and projections, fan-out to four subjects.
    inputs: (events) => [
      { stream: 'orders', partitions: 4, key: 'id', lines: generateOrderLines({ events, seed: 1 }) },
      { stream: 'routes', partitions: 1, key: 'action', lines: [] },
    ],
  },
  {
    job: 'impressions-plays',
    entry: 'jobs/impressions-plays/job.ts',
    // About 1.2 plays per impression; the event count is impressions plus plays.
    inputs: (events) => {
      const sample = generateImpressionsPlays({ impressions: Math.round(events / 2.2), profiles: 2000 });
      return [
        { stream: 'impressions', partitions: 2, key: 'profile', lines: sample.impressions.map((e) => JSON.stringify(e.event)) },
        { stream: 'plays', partitions: 2, key: 'profile', lines: sample.plays.map((e) => JSON.stringify(e.event)) },
      ];
    },
  },
];

const ALERT_RULES = [
  { action: 'put', scope: 'global', rule: { id: 'big', path: '$.amount', op: '>', value: 150, threshold: 10, countFrom: 0 } },
  { action: 'put', scope: 'global', rule: { id: 'refund', path: '$.kind', op: '=', value: 'refund', threshold: 5, countFrom: 0 } },
  { action: 'put', scope: 'global', rule: { id: 'ios', path: '$.device.os', op: 'in', value: ['ios'], threshold: 20, countFrom: 0 } },
  { action: 'put', scope: 'global', rule: { id: 'pricey', path: '$.items[*].price', op: '>', value: 180, threshold: 4, countFrom: 0 } },
  { action: 'put', scope: 'global', rule: { id: 'vip', path: '$.tags', op: 'contains', value: 'vip', threshold: 3, countFrom: 0 } },
  ...Array.from({ length: 5 }, (_, i) => ({ action: 'put', scope: 'customer', customer: `c-000${i + 1}`, rule: { id: `own-${i}`, path: '$.amount', op: '<', value: 10, threshold: 2, countFrom: 0 } })),
];

export const JOB_EVENTS = Number(process.env.BENCH_JOBS_EVENTS ?? (QUICK ? 100_000 : 200_000));

export interface JobRun {
  eventsPerSecond: number;
  eventSize: number;
  rawNats: number;
  jetstreamOrdered: number;
  restarts: number;
}

async function prepublishInputs(url: string, inputs: BenchInput[]): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const encoder = new TextEncoder();
    let bytes = 0;
    let count = 0;
    for (const input of inputs) {
      await ensureSourceStream(nc, { stream: input.stream, partitions: input.partitions, partitionKey: input.key });
      const publisher = new BulkPublisher(nc, { window: 4000 });
      for (const line of input.lines) {
        const data = encoder.encode(line);
        bytes += data.length;
        count++;
        const key = String((JSON.parse(line) as Record<string, unknown>)[input.key] ?? '');
        await publisher.publish(`${input.stream}.${partitionForKey(key, input.partitions)}`, data);
      }
      await publisher.flush();
      publisher.close();
      const held = (await (await jetstreamManager(nc)).streams.info(input.stream)).state.messages;
      if (held !== input.lines.length) throw new Error(`stream ${input.stream} holds ${held} messages, expected ${input.lines.length}`);
    }
    return Math.round(bytes / count);
  } finally {
    await nc.close();
  }
}

class RestartedError extends Error {}

/** One run: a fresh cluster with one worker, the inputs prepublished, the baselines, then the job timed. */
export async function runJob(spec: UseCaseJob, events: number): Promise<JobRun> {
  const inputs = spec.inputs(events);
  const expected = spec.expectedAtLastStage?.(inputs) ?? inputs.reduce((n, i) => n + i.lines.length, 0);
  const cluster = await startCluster({ workers: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-jobs-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  try {
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 15_000, what: 'a live worker' });
    const eventSize = await prepublishInputs(cluster.nats.url, inputs);
    // Baselines on the same server, once the streams are full and before the job starts.
    const rawNats = await rawNatsMsgsPerSecond(cluster.nats.url, eventSize, 500_000);
    const jetstreamOrdered = await jetstreamOrderedMsgsPerSecond(cluster.nats.url, inputs[0]!.stream);
    const bundle = await buildBundle(join(REPO_ROOT, spec.entry), join(dir, 'cache'));
    const t0 = performance.now();
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    // The check settles on done, failed or restarted (waitFor would retry a check that throws).
    const settled = await waitFor(async () => {
      const job = await client.getJob(spec.job);
      const done = Number(job.stages[job.stages.length - 1]?.recordsIn ?? 0) >= expected;
      return done || job.state === 'FAILED' || job.restarts > 0 ? job : undefined;
    }, { timeoutMs: 600_000, what: `${spec.job}: ${expected} records into its last stage`, intervalMs: 50 }).catch(async (e: Error) => {
      const job = await client.getJob(spec.job);
      const stages = job.stages.map((st) => `${st.stageId} in ${st.recordsIn}, dead letters ${st.deadLetters}`).join('; ');
      throw new Error(`${e.message}: job ${job.state}, restarts ${job.restarts}, ${stages}, last failure ${job.lastFailure?.message ?? 'none'}`, { cause: e });
    });
    if (settled.state === 'FAILED') throw new Error(`${spec.job} failed: ${settled.lastFailure?.message}`);
    // Stage counters start again at a redeploy: after a restart they never reach the total.
    if (settled.restarts > 0) throw new RestartedError(`${spec.job} restarted (${settled.lastFailure?.message ?? 'no failure recorded'}): the run does not measure throughput`);
    const seconds = (performance.now() - t0) / 1000;
    return { eventsPerSecond: expected / seconds, eventSize, rawNats, jetstreamOrdered, restarts: settled.restarts };
  } finally {
    client.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** BENCH_ONLY=jobs: every use-case job (or those named), medians of RUNS runs. */
export async function jobBenchmarks(only?: string[]): Promise<void> {
  const jobs = only && only.length > 0 ? USE_CASE_JOBS.filter((j) => only.includes(j.job)) : USE_CASE_JOBS;
  const unknown = (only ?? []).filter((name) => !USE_CASE_JOBS.some((j) => j.job === name));
  if (unknown.length > 0) throw new Error(`no benchmark for job(s) ${unknown.join(', ')}; known: ${USE_CASE_JOBS.map((j) => j.job).join(', ')}`);
  console.log(`--- jobs: each use-case job end to end, 1 worker, ${JOB_EVENTS} events prepublished, checkpoints every second; vs raw NATS on the same server`);
  for (const spec of jobs) {
    const runs: JobRun[] = [];
    let retries = 0;
    for (let r = 0; r < RUNS; r++) {
      let run: JobRun;
      try {
        run = await runJob(spec, JOB_EVENTS);
      } catch (e) {
        // A loaded machine can time out a channel and restart the job: try that run again, twice at most.
        if (!(e instanceof RestartedError) || ++retries > 2) throw e;
        console.log(`  run ${r + 1}: ${e.message}; running it again`);
        r--;
        continue;
      }
      runs.push(run);
      console.log(`  run ${r + 1}: ${spec.job} ${Math.round(run.eventsPerSecond)} events/s; raw NATS pub→sub ${Math.round(run.rawNats)} msgs/s of ${run.eventSize} B; JetStream ordered consume ${Math.round(run.jetstreamOrdered)} msgs/s${run.restarts > 0 ? `; ${run.restarts} restart(s)!` : ''}`);
    }
    const eps = median(runs.map((r) => r.eventsPerSecond));
    const raw = median(runs.map((r) => r.rawNats));
    const js = median(runs.map((r) => r.jetstreamOrdered));
    console.log(
      `${spec.job}, 1 worker: ${Math.round(eps)} events/s (median of ${RUNS}); raw NATS core pub→sub ${Math.round(raw)} msgs/s, ratio ${(eps / raw).toFixed(3)}; ` +
        `JetStream ordered consume ${Math.round(js)} msgs/s, ratio ${(eps / js).toFixed(3)}; mean event ${runs[0]!.eventSize} B`,
    );
  }
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await jobBenchmarks(process.argv[2]?.split(',').filter((s) => s.length > 0));
  });
}
