// Heap and RSS of ONE worker process holding 1 million open session windows and 2 million
// event-time timers: the sessionizer with an hour of allowed lateness (two timers per window),
// fed one page view each from 1 million users, all within ~17 min of event time, so that no
// session closes. Windows and timers are keyed state (docs/ARCHITECTURE.md, "State"): they should
// sit in RocksDB, not on the heap. The worker's memory is sampled from inside it by
// bench/memory-probe-hook.mjs (heapUsed and RSS every 100 ms, the live heap after a forced full GC
// every 2 s); the baseline is the same worker with the job deployed and no state yet.
//
//   BENCH_ONLY=memory node --import tsx bench/run.ts          (part of `make bench`)
//   node --import tsx bench/state-memory.ts [users]           (alone; default 1000000)
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startCluster, waitFor, REPO_ROOT } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { buildBundle } from '../core/bundle.ts';
import { partitionForKey } from '../core/key-groups.ts';
import { ensureSourceStream } from '../core/nats.ts';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { userId } from '../jobs/sessionizer/generate.ts';
import { QUICK, RUNS, directoryBytes, isMain, machineLine, mb, median, runMain } from './lib.ts';

const HOOK = fileURLToPath(new URL('./memory-probe-hook.mjs', import.meta.url));
const PROBE_GC_MS = 2000;

interface Probe { heapUsed: number; rss: number; peakHeapUsed: number; peakRss: number; liveHeapUsed: number; peakLiveHeapUsed: number; gcs: number; lastGcAtMs: number }

export interface MemoryRun {
  users: number;
  baseline: { liveHeapUsed: number; rss: number };
  peakHeapUsed: number;
  peakLiveHeapUsed: number;
  peakRss: number;
  /** After every view is in and two more checkpoints completed (state committed to RocksDB). */
  end: { liveHeapUsed: number; rss: number };
  /** The worker's data directory (its RocksDB and bundle cache) at the end. */
  stateBytes: number;
  eventsPerSecond: number;
}

async function readProbe(dir: string, pid: number): Promise<Probe | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, `${pid}.json`), 'utf8')) as Probe;
  } catch {
    return undefined;
  }
}

/** A probe sample whose forced GC happened after `afterMs`. */
async function probeAfter(dir: string, pid: number, afterMs: number): Promise<Probe> {
  return waitFor(async () => {
    const p = await readProbe(dir, pid);
    return p !== undefined && p.lastGcAtMs > afterMs ? p : undefined;
  }, { timeoutMs: 30_000, what: 'a memory sample after a forced GC' });
}

export async function stateMemoryRun(users: number): Promise<MemoryRun> {
  const probeDir = await mkdtemp(join(tmpdir(), 'eddy-bench-memory-'));
  const cluster = await startCluster({
    workers: 1,
    env: { NODE_OPTIONS: `--import ${HOOK}`, EDDY_MEMORY_PROBE_DIR: probeDir, EDDY_MEMORY_PROBE_GC_MS: String(PROBE_GC_MS) },
  });
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const worker = cluster.workers[0]!;
  try {
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 15_000, what: 'a live worker' });
    const bundle = await buildBundle(join(REPO_ROOT, 'bench/fixtures/sessionizer-lateness.ts'), join(probeDir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob('sessionizer')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
    const baseline = await probeAfter(probeDir, worker.pid, Date.now());

    // One view per user, ms apart: the event time spans users / 1000 s, far less than the 30 min gap.
    const t0 = performance.now();
    await ensureSourceStream(nc, { stream: 'pageviews', partitions: 4, partitionKey: 'userId' });
    const publisher = new BulkPublisher(nc, { window: 4000 });
    const encoder = new TextEncoder();
    const T = Date.UTC(2026, 0, 1);
    for (let i = 0; i < users; i++) {
      const id = userId(i);
      await publisher.publish(`pageviews.${partitionForKey(id, 4)}`, encoder.encode(JSON.stringify({ userId: id, ts: T + i, page: '/' })));
    }
    await publisher.flush();
    publisher.close();
    // Settles on done, failed or restarted: stage counters start again at a redeploy, so after a
    // restart they would never reach the total (and waitFor retries a check that throws).
    const settled = await waitFor(async () => {
      const job = await client.getJob('sessionizer');
      return Number(job.stages[1]?.recordsIn ?? 0) >= users || job.state === 'FAILED' || job.restarts > 0 ? job : undefined;
    }, { timeoutMs: 1_800_000, what: `${users} views into the window stage`, intervalMs: 200 });
    if (settled.state === 'FAILED' || settled.restarts > 0) throw new Error(`sessionizer ${settled.state}, ${settled.restarts} restart(s): ${settled.lastFailure?.message ?? ''}`);
    const eventsPerSecond = users / ((performance.now() - t0) / 1000);
    const checkpoint = Number((await client.getJob('sessionizer')).checkpoints!.latestId);
    await waitFor(async () => Number((await client.getJob('sessionizer')).checkpoints!.latestId) >= checkpoint + 2, { timeoutMs: 120_000, what: 'two more checkpoints' });
    const end = await probeAfter(probeDir, worker.pid, Date.now());
    // Nothing fired: every window (and both of its timers) is still held.
    const fired = await (await jetstreamManager(nc)).streams.info('SESSIONS').then((i) => i.state.messages, () => 0);
    if (fired !== 0) throw new Error(`${fired} sessions fired; the benchmark needs every window open`);
    const job = await client.getJob('sessionizer');
    if (job.restarts > 0) throw new Error(`the job restarted ${job.restarts} time(s): ${job.lastFailure?.message}`);
    const stateBytes = await directoryBytes(join(cluster.dataDir, 'worker-1'));
    return {
      users,
      baseline: { liveHeapUsed: baseline.liveHeapUsed, rss: baseline.rss },
      peakHeapUsed: end.peakHeapUsed,
      peakLiveHeapUsed: end.peakLiveHeapUsed,
      peakRss: end.peakRss,
      end: { liveHeapUsed: end.liveHeapUsed, rss: end.rss },
      stateBytes,
      eventsPerSecond,
    };
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(probeDir, { recursive: true, force: true });
  }
}

export const MEMORY_USERS = Number(process.env.BENCH_MEMORY_USERS ?? (QUICK ? 200_000 : 1_000_000));

export async function stateMemoryBenchmarks(users = MEMORY_USERS): Promise<void> {
  console.log(`--- memory: one worker holding ${users} open session windows and ${2 * users} event-time timers (sessionizer, 1 h allowed lateness, one view per user)`);
  const runs: MemoryRun[] = [];
  for (let r = 0; r < RUNS; r++) {
    const run = await stateMemoryRun(users);
    runs.push(run);
    console.log(
      `  run ${r + 1}: heapUsed peak ${mb(run.peakHeapUsed)}, live heap peak ${mb(run.peakLiveHeapUsed)} (after deploy ${mb(run.baseline.liveHeapUsed)}, at the end ${mb(run.end.liveHeapUsed)}); ` +
        `RSS peak ${mb(run.peakRss)} (after deploy ${mb(run.baseline.rss)}, at the end ${mb(run.end.rss)}); data dir ${mb(run.stateBytes)}; ${Math.round(run.eventsPerSecond)} views/s`,
    );
  }
  const m = (f: (r: MemoryRun) => number) => mb(median(runs.map(f)));
  console.log(
    `memory, 1 worker, ${users} session windows + ${2 * users} timers: heapUsed peak ${m((r) => r.peakHeapUsed)}, live heap peak ${m((r) => r.peakLiveHeapUsed)} ` +
      `(after deploy ${m((r) => r.baseline.liveHeapUsed)}, at the end ${m((r) => r.end.liveHeapUsed)}); RSS peak ${m((r) => r.peakRss)} (after deploy ${m((r) => r.baseline.rss)}, at the end ${m((r) => r.end.rss)}); ` +
      `data dir ${m((r) => r.stateBytes)} (medians of ${RUNS})`,
  );
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await stateMemoryBenchmarks(process.argv[2] ? Number(process.argv[2]) : MEMORY_USERS);
  });
}
