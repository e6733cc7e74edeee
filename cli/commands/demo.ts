// eddy demo: the README's one-command quick start (make demo). A fresh local cluster, the
// customer-experience job, a generated sample published through its source, then the results:
// throughput, features by entity, triggers and dead letters. The cluster then keeps running for
// the user to try the CLI against it, until Ctrl-C.
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Command } from 'commander';
import { DEAD_LETTER_STREAM } from '../../core/subjects.ts';
import { colourOf, type Colour } from '../../jobs/customer-experience/rules.ts';
import { entityId, generateIndicators } from '../../jobs/customer-experience/generate.ts';
import { parseHostPort, parseHostPortOrOff, parseNonNegativeInt, parsePort, parsePositiveInt } from '../arguments.ts';
import { EddyClient, type FeatureValue } from '../client.ts';
import { CliError } from '../errors.ts';
import { formatCount } from '../format.ts';
import { abortable, listenForInterrupt } from '../interrupt.ts';
import { buildJob } from '../job-bundle.ts';
import { countersLine, waitForJobRunning, waitUntilProcessed } from '../job-progress.ts';
import { REPO_ROOT, startLocalCluster } from '../local-cluster.ts';
import { startProgress } from '../progress.ts';
import { connectToNats, publishLines, resolveSourceTarget, streamMessageCount } from '../source-publisher.ts';
import { submitBundle } from './submit.ts';
import { printClusterInfo, superviseUntilStopped } from './up.ts';
import { publishSummary } from './publish.ts';

const JOB_ENTRY = path.join(REPO_ROOT, 'jobs', 'customer-experience', 'job.ts');
const FEATURE = 'indicators';
const SAMPLE_SEED = 42;
const QUERIED_ENTITIES = 5;
/** A job is deployed within this long, or something is wrong. */
const RUNNING_TIMEOUT_MS = 60_000;
/** Exactly-once sinks publish when a checkpoint completes: triggers may trail the counters. */
const SINK_SETTLE_TIMEOUT_MS = 15_000;

interface DemoOptions {
  workers: number;
  events: number;
  entities: number;
  malformedEvery: number;
  data: string;
  natsPort: number;
  grpc: string;
  http: string;
  logLevel: string;
}

/** What the job should emit for the well-formed lines: a trigger per GREEN→RED transition. */
function expectedOutcome(lines: readonly string[]): { triggers: number; malformed: number } {
  const colours = new Map<string, Colour>();
  let triggers = 0;
  let malformed = 0;
  for (const line of lines) {
    let e: { entityId?: unknown; type?: unknown; value?: unknown };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      malformed++;
      continue;
    }
    if (typeof e.entityId !== 'string' || typeof e.type !== 'string' || typeof e.value !== 'number') {
      malformed++;
      continue;
    }
    const key = `${e.entityId}\u0000${e.type}`;
    const colour = colourOf({ type: e.type, value: e.value });
    if ((colours.get(key) ?? 'GREEN') === 'GREEN' && colour === 'RED') triggers++;
    colours.set(key, colour);
  }
  return { triggers, malformed };
}

/** One line per entity: `cust-00003  packetErrors 22 GREEN · uptimePercent 82.76 RED · …`. */
function indicatorLines(values: readonly FeatureValue[]): string[] {
  const width = Math.max(0, ...values.map((v) => v.entityId.length));
  return values.map((v) => {
    if (!v.found) return `${v.entityId.padEnd(width)}  not found`;
    const byType = JSON.parse(v.valueJson) as Record<string, { value: number; colour: Colour }>;
    const readings = Object.entries(byType).map(([type, r]) => `${type} ${r.value} ${r.colour}`);
    return `${v.entityId.padEnd(width)}  ${readings.join(' · ')}`;
  });
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('quick start: a local cluster, the customer-experience job, a sample published and queried')
    .option('--workers <n>', 'workers to start', parsePositiveInt, 2)
    .option('--events <n>', 'events in the generated sample', parsePositiveInt, 20_000)
    .option('--entities <n>', 'distinct entities (cust-00001…)', parsePositiveInt, 1_000)
    .option('--malformed-every <n>', 'every n-th event is malformed, to show dead letters (0: none)', parseNonNegativeInt, 1_000)
    .option('--data <dir>', 'the demo runs in a fresh <dir>/demo', './data')
    .option('--nats-port <port>', 'port of nats-server on 127.0.0.1', parsePort, 4222)
    .option('--grpc <host:port>', "the coordinator's gRPC address", parseHostPort, '127.0.0.1:7400')
    .option('--http <host:port|off>', "the coordinator's dashboard address, or off", parseHostPortOrOff, '127.0.0.1:7480')
    .option('--log-level <level>', 'log level of the coordinator and workers', 'info')
    .action(async (options: DemoOptions) => {
      using interrupt = listenForInterrupt();
      const dataDir = path.resolve(options.data, 'demo');
      // A demo starts from nothing: an old run's streams and state would change every number.
      await fs.rm(dataDir, { recursive: true, force: true });

      console.log(`1. starting a local cluster with ${options.workers} worker${options.workers === 1 ? '' : 's'} in ${path.relative(process.cwd(), dataDir)}…`);
      const cluster = await startLocalCluster({
        workers: options.workers,
        natsPort: options.natsPort,
        grpcAddress: options.grpc,
        httpAddress: options.http,
        dataDir,
        logLevel: options.logLevel,
        signal: interrupt.signal,
      });
      const client = new EddyClient({ address: cluster.grpcAddress, timeoutMs: 10_000 });
      const producer = cluster.natsLogins.producer;
      const nc = await connectToNats(cluster.natsUrl, 'eddy-demo', { user: producer.user, password: (await fs.readFile(producer.passwordFile, 'utf8')).trim() });
      // Every step gives up as soon as Ctrl-C arrives or a cluster process dies.
      const failed = cluster.failed.then((d) => {
        throw new CliError(`${d}; stopped the rest of the cluster`);
      });
      failed.catch(() => {});
      const step = <T>(promise: Promise<T>): Promise<T> =>
        Promise.race([abortable(promise, interrupt.signal, () => new CliError('interrupted', { exitCode: 130 })), failed]);
      try {
        printClusterInfo(cluster);

        console.log('2. building and submitting jobs/customer-experience/job.ts…');
        const bundle = await step(buildJob(JOB_ENTRY));
        const jobId = await step(submitBundle(client, bundle));
        await step(waitForJobRunning(client, jobId, RUNNING_TIMEOUT_MS));
        console.log(`   job ${jobId} is running (stages ${bundle.manifest.stages.map((s) => s.id).join(' → ')})`);

        const lines = generateIndicators({ events: options.events, entities: options.entities, seed: SAMPLE_SEED, malformedEvery: options.malformedEvery });
        const expected = expectedOutcome(lines);
        const stream = bundle.manifest.sources[0]!.stream;
        console.log(`3. publishing ${formatCount(lines.length)} events for ${formatCount(options.entities)} entities to stream ${stream} (${expected.malformed} malformed on purpose)…`);
        const target = await step(resolveSourceTarget(nc, stream));
        const progress = startProgress(`   ${stream}`, lines.length, 'events');
        const publishedAt = performance.now();
        let result;
        try {
          result = await step(publishLines(nc, target, lines, { onProgress: (n) => progress.update(n) }));
        } finally {
          progress.stop();
        }
        console.log(`   ${publishSummary(stream, result)}`);

        console.log('4. waiting until the job has processed them…');
        const processTimeoutMs = Math.max(120_000, options.events);
        const job = await step(waitUntilProcessed(client, jobId, result.published, { timeoutMs: processTimeoutMs }));
        const seconds = (performance.now() - publishedAt) / 1000;
        console.log(`   processed ${formatCount(result.published)} events in ${seconds.toFixed(2)} s from the first publish (${formatCount(Math.round(result.published / seconds))} events/s end to end)`);
        console.log(`   ${countersLine(job)}`);

        const ids = Array.from({ length: Math.min(QUERIED_ENTITIES, options.entities) }, (_, i) => entityId(i));
        console.log(`5. feature ${FEATURE} of ${ids.join(', ')}:`);
        for (const line of indicatorLines(await step(client.batchGet(jobId, FEATURE, ids, 'latest')))) console.log(`   ${line}`);

        const sink = bundle.manifest.stages.flatMap((s) => s.sinks).find((s) => s.kind === 'jetstream');
        if (sink?.kind === 'jetstream') {
          let triggers = 0;
          const settleBy = Date.now() + SINK_SETTLE_TIMEOUT_MS;
          do {
            triggers = (await step(streamMessageCount(nc, sink.stream))) ?? 0;
            if (triggers >= expected.triggers) break;
            await step(delay(250));
          } while (Date.now() < settleBy);
          console.log(`6. triggers (GREEN→RED transitions): ${formatCount(triggers)} in stream ${sink.stream}; the sample has ${formatCount(expected.triggers)}`);
        }
        const deadLetters = (await step(streamMessageCount(nc, DEAD_LETTER_STREAM))) ?? 0;
        console.log(`   dead letters: ${formatCount(deadLetters)} in stream ${DEAD_LETTER_STREAM}; the sample has ${formatCount(expected.malformed)} malformed events`);

        console.log('');
        if (cluster.httpAddress) console.log(`the dashboard: http://${cluster.httpAddress}/#/jobs/${jobId}`);
        console.log('the cluster keeps running; try the CLI against it from another shell:');
        console.log(`  export EDDY_ADDR=${cluster.grpcAddress} EDDY_NATS=${cluster.natsUrl} EDDY_NATS_USER=${producer.user} EDDY_NATS_PASSWORD_FILE=${producer.passwordFile}`);
        console.log(`  eddy jobs`);
        console.log(`  eddy job ${jobId}`);
        console.log(`  eddy workers`);
        console.log(`  eddy query ${jobId} ${FEATURE} ${entityId(41)}`);
        console.log(`  node --import tsx jobs/customer-experience/generate.ts 1000 50 7 | eddy publish ${stream} -`);
        console.log('  (without eddy on your PATH: npm run eddy -- <command>)');
        console.log('press Ctrl-C to stop');
      } catch (e) {
        await nc.close().catch(() => {});
        client.close();
        await cluster.stop();
        throw e;
      }
      await nc.close();
      client.close();
      await superviseUntilStopped(cluster, interrupt);
    });
}
