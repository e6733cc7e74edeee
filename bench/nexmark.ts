// Nexmark (jobs/nexmark): events per second of each query, with the events made by the job's own
// generator source and read from a JetStream stream (prepublished by `eddy nexmark publish`'s
// code), with 1 and 2 workers, checkpoints every second, no sink (Flink's runs write to a
// blackhole). Beside the wall-clock rate, the rate per core: events over the CPU time the worker
// processes spent (from /proc, submit to done), set next to Flink's published per-core figures
// (Flink's "cores" are its TaskManagers' CPU use); and per core of worker plus nats-server CPU, as
// the shuffles (and the stream source) go through the server.
//
//   BENCH_ONLY=nexmark node --import tsx bench/run.ts       (part of `make bench`)
//   node --import tsx bench/nexmark.ts [q0,q3,…]             (alone)
// BENCH_NEXMARK_EVENTS sets the events per run (default 1,000,000; BENCH_QUICK=1: 100,000);
// BENCH_NEXMARK_WORKERS the worker counts (default 1,2); BENCH_RUNS the runs per figure (default 1 here);
// BENCH_NEXMARK_FRAME=100 publishes the stream in frames of 100 events (README, "Framed ingest");
// BENCH_NEXMARK_SOURCES=generator (or jetstream) runs one source only; BENCH_NEXMARK_THREADS=1
// prints each run's worker CPU by thread; BENCH_PROFILE_DIR=<dir> writes a .cpuprofile of each
// Eddy process there (bench/cpu-profile-hook.mjs: main threads only, so run the workers with
// EDDY_JOB_ISOLATION=none to see the job; summarize with bench/profile.ts's summary).
//
// Worker CPU is that of the worker processes, all their threads (/proc/<pid>/stat), less the
// threads started during the run: with jobs isolated in threads (the default) a job takes the
// worker's spare thread and the worker starts the next job's spare at once, ~0.4-0.6 s of CPU
// that is no work of the measured job (until 2026-12-06 it was counted: q0's 200,000 events take
// ~0.25 s of the job's thread, so q0 read ~1.7 times too low). What stays counted: the job's own thread from its
// deploy (a fresh isolate: its JIT starts cold in every run, unlike jobs in the worker's thread)
// and V8's shared helper threads (GC, compilation).
//
// A job's deploy and first moments (its isolate's cold JIT, the bundle's import, the first
// checkpoints) cost the same whatever the number of events, and Flink's published figures are of
// runs of 100 million events, where they vanish. So, with the generator source, each run is paired
// with a run of EVENTS / 50 events just before it (the same query, the first events of the same
// sequence), and "per core, deploy excluded" is the difference in events over the difference in
// worker CPU: the cost of the events the longer run adds. The JetStream source reads a whole
// prepublished stream, so it has no such pair.
//
// A run is done when the source stage has taken every event in and the query's first keyed stage
// every record the source sends it (counted here from the same generator). Stages after a window
// (q4's averages, q5's hot items) are not waited for: with a stream source the last windows never
// close (a stream has no end), and they carry a small fraction of the work.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, type Cluster } from '../test/kit/index.ts';
import { buildNexmarkBundle } from '../test/kit/nexmark.ts';
import { EddyClient } from '../cli/client.ts';
import { publishNexmark } from '../cli/nexmark-publisher.ts';
import { NexmarkModel, compileNexmarkConfig, type NexmarkEvent } from '../sdk/nexmark.ts';
import { QUERIES, Q3_CATEGORY, type NexmarkSourceOptions, type QueryName } from '../jobs/nexmark/queries.ts';
import { QUICK, cpuSeconds, threadCpuSeconds, isMain, machineLine, median, runMain } from './lib.ts';

const EVENTS = Number(process.env.BENCH_NEXMARK_EVENTS ?? (QUICK ? 100_000 : 1_000_000));
/** The events of the short run paired with each generator run (see above). */
const SHORT_EVENTS = Math.max(2_000, Math.round(EVENTS / 50));
const WORKERS = (process.env.BENCH_NEXMARK_WORKERS ?? '1,2').split(',').map(Number);
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 1));
/** Events per JetStream message for the stream source (BENCH_NEXMARK_FRAME; 1: one per message). */
/** BENCH_PROFILE_DIR: where each Eddy process writes its CPU profile (bench/cpu-profile-hook.mjs). */
const PROFILE_DIR = process.env.BENCH_PROFILE_DIR;
const PROFILE_HOOK = fileURLToPath(new URL('./cpu-profile-hook.mjs', import.meta.url));
const FRAME_RECORDS = Math.max(1, Number(process.env.BENCH_NEXMARK_FRAME ?? 1));
/** The sources to run (BENCH_NEXMARK_SOURCES, default both). */
const SOURCES = (process.env.BENCH_NEXMARK_SOURCES ?? 'generator,jetstream').split(',').filter((s): s is 'generator' | 'jetstream' => s === 'generator' || s === 'jetstream');
const PARTITIONS = 4;
const SEED = 1;

/** Flink's published events/s per core: 1.13 (nexmark/nexmark README, 3 × 8 cores, RocksDB) and 2.x (GUIDE_V2, 4 × 16 cores). */
export const FLINK_PER_CORE: Record<QueryName, { v113: number; v2: number }> = {
  q0: { v113: 155_000, v2: 379_000 },
  q1: { v113: 158_000, v2: 395_000 },
  q2: { v113: 175_000, v2: 414_000 },
  q3: { v113: 152_000, v2: 219_000 },
  q4: { v113: 34_000, v2: 28_000 },
  q5: { v113: 22_000, v2: 75_000 },
  q7: { v113: 12_000, v2: 23_000 },
  q8: { v113: 146_000, v2: 162_000 },
};

/** The first keyed stage of each query and how many records the source sends it. */
const FIRST_KEYED: Partial<Record<QueryName, { stage: string; takes: (e: NexmarkEvent) => boolean }>> = {
  q3: { stage: 'q3-join', takes: (e) => e.type === 'person' || (e.type === 'auction' && e.category === Q3_CATEGORY) },
  q4: { stage: 'q4-winning-bids', takes: (e) => e.type !== 'person' },
  q5: { stage: 'q5-bid-counts', takes: (e) => e.type === 'bid' },
  q7: { stage: 'q7-highest-bids', takes: (e) => e.type === 'bid' },
  q8: { stage: 'q8-join', takes: (e) => e.type !== 'bid' },
};

export interface NexmarkRun {
  query: QueryName;
  source: 'generator' | 'jetstream';
  workers: number;
  eventsPerSecond: number;
  /** Events per second of worker CPU time (all worker processes together). */
  eventsPerCoreSecond: number;
  /** Worker CPU in use over the run, in cores (CPU seconds / wall seconds). */
  cores: number;
  /** Events per second of worker and nats-server CPU time: the shuffles and the stream source run through the server. */
  eventsPerCoreSecondWithNats: number;
  /** CPU seconds of the threads the worker processes started during the run (the next job's spare thread), not counted above. */
  spareCpu: number;
  /** Worker CPU seconds of the run (as counted for eventsPerCoreSecond). */
  cpuSeconds: number;
  /** Events per second of the worker CPU that the run spent beyond its short pair (generator source only; see above). */
  eventsPerCoreSecondSteady?: number;
}

class RestartedError extends Error {}

async function runQuery(cluster: Cluster, client: EddyClient, dir: string, query: QueryName, source: 'generator' | 'jetstream', events: number, expectedFirstKeyed: number, run: number): Promise<NexmarkRun> {
  const name = `nx-${query}-${source === 'generator' ? 'gen' : 'js'}-${run}`;
  const sourceOptions: NexmarkSourceOptions = source === 'generator' ? { kind: 'generator', events, seed: SEED, partitions: PARTITIONS } : { kind: 'jetstream', stream: 'nexmark', partitions: PARTITIONS };
  const bundle = await buildNexmarkBundle(query, { source: sourceOptions, name }, dir);
  const pids = cluster.workers.map((w) => w.pid);
  // The CPU of the worker processes (all threads: /proc/<pid>/stat sums them), less the threads
  // that started during the run: a job in thread isolation (the default) takes the worker's spare
  // thread, and the worker starts the next job's spare at once (an isolate compiling and
  // importing the runtime, ~0.4 s of CPU), which is no work of this job. Counted as `spareCpu`.
  const threads0 = await Promise.all(pids.map((p) => threadCpuSeconds(p)));
  const cpu0 = await Promise.all(pids.map((p) => cpuSeconds(p)));
  const nats0 = await cpuSeconds(cluster.nats.pid);
  const t0 = performance.now();
  try {
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
  } catch (e) {
    await client.cancelJob(name).catch(() => undefined);
    throw e;
  }
  const first = FIRST_KEYED[query];
  const settled = await waitFor(async () => {
    const job = await client.getJob(name);
    const stage = (id: string) => Number(job.stages.find((s) => s.stageId === id)?.recordsIn ?? 0);
    const done = stage(bundle.manifest.stages[0]!.id) >= events && (first === undefined || stage(first.stage) >= expectedFirstKeyed);
    return done || job.state === 'FAILED' || job.restarts > 0 ? job : undefined;
  }, { timeoutMs: 600_000, what: `${name}: ${events} events in`, intervalMs: 50 });
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = await Promise.all(pids.map((p) => cpuSeconds(p)));
  const threads1 = await Promise.all(pids.map((p) => threadCpuSeconds(p)));
  const natsUsed = (await cpuSeconds(cluster.nats.pid)) - nats0;
  let spareCpu = 0;
  threads1.forEach((after, i) => {
    for (const [tid, t] of after) if (!threads0[i]!.has(tid)) spareCpu += t.seconds;
  });
  const cpuUsed = cpu1.reduce((a, b, i) => a + b - cpu0[i]!, 0) - spareCpu;
  if (process.env.BENCH_NEXMARK_THREADS === '1') {
    threads1.forEach((after, i) => {
      const before = threads0[i]!;
      const parts = [...after].map(([tid, t]) => [tid, t.name, t.seconds - (before.get(tid)?.seconds ?? 0), before.has(tid)] as const).filter((x) => x[2] > 0).map(([tid, n, d, old]) => `${tid}${old ? '' : ' (new)'} ${n} ${d.toFixed(2)}`);
      console.log(`    ${name}, worker ${pids[i]}: ${(cpu1[i]! - cpu0[i]!).toFixed(2)} s of CPU; by thread: ${parts.join(', ')}`);
    });
  }
  await client.cancelJob(name);
  await waitFor(async () => (await client.getJob(name)).state === 'CANCELLED', { timeoutMs: 60_000, what: `${name} cancelled` });
  if (settled.state === 'FAILED') throw new Error(`${name} failed: ${settled.lastFailure?.message}`);
  if (settled.restarts > 0) throw new RestartedError(`${name} restarted (${settled.lastFailure?.message ?? 'no failure recorded'})`);
  return { query, source, workers: cluster.workers.length, eventsPerSecond: events / seconds, eventsPerCoreSecond: events / cpuUsed, cores: cpuUsed / seconds, eventsPerCoreSecondWithNats: events / (cpuUsed + natsUsed), spareCpu, cpuSeconds: cpuUsed };
}

/** Every query × source for one worker count, on one cluster (the stream is published once). */
async function benchWorkers(workers: number, queries: readonly QueryName[], expected: Map<QueryName, { full: number; short: number }>): Promise<NexmarkRun[]> {
  // A worker is declared dead after 15 s without heartbeats (3 s by default): on a machine shared
  // with other test suites (load averages of 20+ on 2 cores) a starved worker missed 3 s.
  const cluster = await startCluster({ workers, checkpointIntervalMs: 1000, workerTimeoutMs: 15_000, ...(PROFILE_DIR && { env: { NODE_OPTIONS: `--import ${PROFILE_HOOK}`, EDDY_CPU_PROFILE_DIR: PROFILE_DIR } }) });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-nexmark-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const results: NexmarkRun[] = [];
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === workers, { timeoutMs: 15_000, what: `${workers} live workers` });
    if (SOURCES.includes('jetstream')) {
      const nc = await connect({ servers: cluster.nats.url });
      try {
        const published = await publishNexmark(nc, { stream: 'nexmark', events: EVENTS, partitions: PARTITIONS, seed: SEED, frameRecords: FRAME_RECORDS });
        console.log(`  ${workers} worker(s): ${published.published} events published to JetStream in ${(published.elapsedMs / 1000).toFixed(1)} s, ${Math.round(published.bytes / published.published)} B each on average${FRAME_RECORDS > 1 ? `, in frames of up to ${FRAME_RECORDS}` : ''}`);
      } finally {
        await nc.close();
      }
    }
    let attempt = 0;
    // A first job pays for loading code and warming the JIT up: q0 once, not recorded.
    await runQuery(cluster, client, dir, 'q0', 'generator', EVENTS, 0, attempt++);
    for (const source of SOURCES) {
      for (const query of queries) {
        const runs: NexmarkRun[] = [];
        let retries = 0;
        while (runs.length < RUNS) {
          try {
            const short = source === 'generator' ? await runQuery(cluster, client, dir, query, source, SHORT_EVENTS, expected.get(query)?.short ?? 0, attempt++) : undefined;
            const full = await runQuery(cluster, client, dir, query, source, EVENTS, expected.get(query)?.full ?? 0, attempt++);
            runs.push(short === undefined || full.cpuSeconds <= short.cpuSeconds ? full : { ...full, eventsPerCoreSecondSteady: (EVENTS - SHORT_EVENTS) / (full.cpuSeconds - short.cpuSeconds) });
          } catch (e) {
            // A loaded machine can time out a channel or a deploy and restart or fail the job: run
            // it again, twice at most.
            if (++retries > 2) throw e;
            console.log(`  ${query} ${source}: ${(e as Error).message.split('\n')[0]}; running it again`);
          }
        }
        const steady = runs.flatMap((x) => (x.eventsPerCoreSecondSteady === undefined ? [] : [x.eventsPerCoreSecondSteady]));
        const r: NexmarkRun = {
          ...runs[0]!,
          eventsPerSecond: median(runs.map((x) => x.eventsPerSecond)),
          eventsPerCoreSecond: median(runs.map((x) => x.eventsPerCoreSecond)),
          cores: median(runs.map((x) => x.cores)),
          eventsPerCoreSecondWithNats: median(runs.map((x) => x.eventsPerCoreSecondWithNats)),
          spareCpu: median(runs.map((x) => x.spareCpu)),
          ...(steady.length > 0 && { eventsPerCoreSecondSteady: median(steady) }),
        };
        results.push(r);
        const flink = FLINK_PER_CORE[query];
        console.log(
          `  ${query} ${source.padEnd(9)} ${workers} worker(s): ${Math.round(r.eventsPerSecond)} events/s; ${Math.round(r.eventsPerCoreSecond)} events/s per core${r.eventsPerCoreSecondSteady === undefined ? '' : `, ${Math.round(r.eventsPerCoreSecondSteady)} deploy excluded (${(r.eventsPerCoreSecondSteady / flink.v113).toFixed(2)} of Flink 1.13)`} (worker CPU ${r.cores.toFixed(2)} cores; ${Math.round(r.eventsPerCoreSecondWithNats)} with nats-server's CPU; the next job's spare thread ${r.spareCpu.toFixed(2)} s, not counted); ` +
            `vs Flink 1.13 ${flink.v113 / 1000} k/core: ${(r.eventsPerCoreSecond / flink.v113).toFixed(2)}; vs Flink 2.x ${flink.v2 / 1000} k/core: ${(r.eventsPerCoreSecond / flink.v2).toFixed(2)}`,
        );
      }
    }
  } finally {
    client.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

/** A markdown table of the runs: one row per query, per source and worker count. */
function table(results: NexmarkRun[]): string {
  const lines = ['| query | source | workers | events/s | events/s per worker core | per core, deploy excluded | incl. nats-server CPU | Flink 1.13 /core | ratio (deploy excluded) | Flink 2.x /core | ratio (deploy excluded) |', '|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const r of results) {
    const f = FLINK_PER_CORE[r.query];
    const steady = r.eventsPerCoreSecondSteady;
    const ratio = (flink: number) => `${(r.eventsPerCoreSecond / flink).toFixed(2)}${steady === undefined ? '' : ` (${(steady / flink).toFixed(2)})`}`;
    lines.push(`| ${r.query} | ${r.source} | ${r.workers} | ${Math.round(r.eventsPerSecond).toLocaleString('en')} | ${Math.round(r.eventsPerCoreSecond).toLocaleString('en')} | ${steady === undefined ? '–' : Math.round(steady).toLocaleString('en')} | ${Math.round(r.eventsPerCoreSecondWithNats).toLocaleString('en')} | ${f.v113 / 1000} k | ${ratio(f.v113)} | ${f.v2 / 1000} k | ${ratio(f.v2)} |`);
  }
  return lines.join('\n');
}

/** BENCH_ONLY=nexmark: every query (or those named) with both sources, 1 and 2 workers. */
export async function nexmarkBenchmarks(only?: string[]): Promise<void> {
  const queries = only && only.length > 0 ? QUERIES.filter((q) => only.includes(q)) : QUERIES;
  // Records each query's first keyed stage takes, counted from the same generator.
  const firstKeyed = (query: QueryName, events: number) => {
    const model = new NexmarkModel(compileNexmarkConfig({ events, seed: SEED }));
    let n = 0;
    for (let i = 0; i < events; i++) if (FIRST_KEYED[query]?.takes(model.eventAt(i))) n++;
    return n;
  };
  const expected = new Map(queries.map((q) => [q, { full: firstKeyed(q, EVENTS), short: firstKeyed(q, SHORT_EVENTS) }] as const));
  console.log(`--- nexmark: ${queries.join(', ')}, ${EVENTS} events, ${PARTITIONS} splits, checkpoints every second, no sink; generator source and JetStream source; workers ${WORKERS.join(', ')}; medians of ${RUNS}`);
  const results: NexmarkRun[] = [];
  for (const workers of WORKERS) results.push(...(await benchWorkers(workers, queries, expected)));
  console.log(table(results));
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await nexmarkBenchmarks(process.argv[2]?.split(',').filter((s) => s.length > 0));
  });
}
