// Where a direct read's CPU goes (issue 17): one worker started with --serve, customer-experience
// over 20,000 events, then GetFeatures of one id directly from the owner (sdk/feature-client.ts,
// direct) in a closed loop, and the grpc-js health check of the same endpoint as the floor. CPU
// per call is read per thread of the worker (/proc/<pid>/task/*/stat): its main thread (gRPC, the
// endpoint), the job's thread (the query responder) and the rest (libuv, V8's helpers, GC).
//
//   node --import tsx bench/serving-profile.ts [seconds]          CPU per call by thread
//   BENCH_PROFILE_DIR=<dir> node --import tsx bench/serving-profile.ts   also a .cpuprofile of the
//     worker's main thread (bench/cpu-profile-hook.mjs; with EDDY_JOB_ISOLATION=none the job runs
//     there too) and one of this process (the client) as client.cpuprofile, summarized with
//     bench/profile.ts's summary
//   BENCH_BATCH=100: each call reads 100 ids (a BatchGet); BENCH_THREADS=1 prints each thread's CPU
//     and the client's CPU per call
//   BENCH_BUSY=400000: then that many more events are published at once, and while the job reads
//     them as fast as it can, direct Gets and health checks go open loop at BENCH_BUSY_RATE (500/s),
//     and Gets through the coordinator at BENCH_BUSY_ROUTED_RATE (100/s), for [seconds]: the
//     latency of reads from a job at full load (BENCH_PROFILE_DIR: the worker's
//     profile of that span is <pid>-2.cpuprofile)
// EDDY_DIST=<tree> runs the compiled processes (what production runs); BENCH_RUNS=n repeats.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { startCluster } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { FeatureClient } from '../sdk/feature-client.ts';
import { loadGrpc } from '../core/proto.ts';
import { CX_JOB, RUNS, cxEvent, cxProcessed, isMain, keyedRecordsIn, machineLine, median, openLoop, prepublish, runMain } from './lib.ts';
import { profileSelf, summarize } from './profile.ts';
import { keyGroupForKey } from '../core/key-groups.ts';

const SECONDS = Number(process.argv[2] ?? 5);
/** BENCH_WORKERS=2: two serving workers from the start (no move); each one's CPU per Get it serves is printed too. */
const WORKERS = Number(process.env.BENCH_WORKERS ?? 1);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 8);
/** BENCH_BATCH=100: each call reads that many ids (a BatchGet), not one. */
const BATCH = Number(process.env.BENCH_BATCH ?? 1);
const ENTITIES = 10_000;
/** BENCH_BUSY=n: latency of Gets while the job reads a backlog of n events (see the head). */
const BUSY = Number(process.env.BENCH_BUSY ?? 0);
const BUSY_RATE = Number(process.env.BENCH_BUSY_RATE ?? 500);
/** The rate of the same Gets through the coordinator meanwhile (its NATS request reaches the job's thread at its next turn). */
const BUSY_ROUTED_RATE = Number(process.env.BENCH_BUSY_ROUTED_RATE ?? 100);
const WARM_EVENTS = 20_000;
const HOOK = fileURLToPath(new URL('./cpu-profile-hook.mjs', import.meta.url));

/** CPU seconds per thread of a process, keyed "<tid> <name>". */
export async function threadCpu(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    if (stat === '') continue;
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(`${tid} ${name}`, (Number(fields[11]) + Number(fields[12])) / 100);
  }
  return out;
}

/** Thread CPU grouped: main (tid = pid), the busiest other JS thread (the job's), the rest. */
function grouped(pid: number, d: Map<string, number>): { main: number; job: number; rest: number } {
  let main = 0;
  const others: Array<[string, number]> = [];
  for (const [k, v] of d) (k.startsWith(`${pid} `) ? (main += v) : others.push([k, v]));
  // The job's thread is a Node worker thread; libuv and V8 helpers are the others.
  const jobThreads = others.filter(([k]) => / node$| eddy|WorkerThread|job/i.test(k) && !/V8|libuv|Signal|Inspector/i.test(k));
  const job = jobThreads.reduce((a, [, v]) => a + v, 0);
  const rest = others.reduce((a, [, v]) => a + v, 0) - job;
  return { main, job, rest };
}

async function measure(pid: number, seconds: number, call: () => Promise<unknown>, others: number[] = []): Promise<{ perSecond: number; us: { main: number; job: number; rest: number; all: number }; othersUs: number[] }> {
  const diff = (a: Map<string, number>, b: Map<string, number>) => new Map([...a].map(([k, v]) => [k, v - (b.get(k) ?? 0)]));
  const total = async (p: number) => [...(await threadCpu(p)).values()].reduce((a, b) => a + b, 0);
  const o0 = await Promise.all(others.map(total));
  const i0 = await threadCpu(pid);
  const it0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const idle = grouped(pid, diff(await threadCpu(pid), i0));
  const idleMs = performance.now() - it0;
  const oIdle = (await Promise.all(others.map(total))).map((v, i) => v - o0[i]!);
  const oc0 = await Promise.all(others.map(total));
  const c0 = await threadCpu(pid);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let calls = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (performance.now() < end) {
      await call();
      calls++;
    }
  }));
  const ms = performance.now() - t0;
  const client = process.cpuUsage(client0);
  if (process.env.BENCH_THREADS) console.log(`client (this process) ${Math.round((client.user + client.system) / calls)} µs per call`);
  const busyThreads = diff(await threadCpu(pid), c0);
  if (process.env.BENCH_THREADS) console.log([...busyThreads].filter(([, v]) => v > 0).map(([k, v]) => `${k}: ${v.toFixed(2)} s`).join(', '));
  const busy = grouped(pid, busyThreads);
  const oBusy = (await Promise.all(others.map(total))).map((v, i) => v - oc0[i]!);
  const othersUs = oBusy.map((v, i) => (1e6 * Math.max(0, v - (oIdle[i]! * ms) / idleMs)) / calls);
  const per = (k: 'main' | 'job' | 'rest') => (1e6 * Math.max(0, busy[k] - (idle[k] * ms) / idleMs)) / calls;
  const us = { main: per('main'), job: per('job'), rest: per('rest'), all: 0 };
  us.all = us.main + us.job + us.rest;
  return { perSecond: (calls * 1000) / ms, us, othersUs };
}

async function run(): Promise<{ direct: number; health: number; lines: string[] }> {
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const cluster = await startCluster({ workers: WORKERS, workerArgs: ['--serve', '127.0.0.1:0'], ...(profileDir && { env: { NODE_OPTIONS: `--import ${HOOK}`, EDDY_CPU_PROFILE_DIR: profileDir, EDDY_CPU_PROFILE_ON_SIGNAL: '1' } }) });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-serving-profile-'));
  const admin = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const direct = new FeatureClient({ address: cluster.address, direct: true, timeoutMs: 5_000 });
  // The same reads through the coordinator (NATS to the job's thread), for BENCH_BUSY's comparison.
  const routed = new FeatureClient({ address: cluster.address, timeoutMs: 5_000 });
  let health: grpc.Client | undefined;
  const lines: string[] = [];
  const pid = cluster.workers[0]!.pid;
  try {
    await cxProcessed(cluster, admin, WORKERS, join(dir, 'cache'), { events: WARM_EVENTS });
    const ids = Array.from({ length: ENTITIES }, (_, i) => cxEvent(i).entityId);
    const map = await new Promise<{ maxParallelism: number; owners: Array<{ workerId: string; address: string; keyGroups: Array<{ start: number; end: number }> }> }>((resolve, reject) => {
      const c = new (loadGrpc().eddy.v2.FeatureService)(cluster.address, grpc.credentials.createInsecure());
      c.GetServingMap({ jobId: CX_JOB }, { deadline: Date.now() + 10_000 }, (e, m) => (c.close(), e ? reject(e) : resolve(m!)));
    });
    health = new grpc.Client(map.owners[0]!.address, grpc.credentials.createInsecure());
    const h = health;
    const healthCall = () => new Promise<void>((resolve, reject) => h.makeUnaryRequest('/grpc.health.v1.Health/Check', () => Buffer.alloc(0), (b: Buffer) => b, {}, { deadline: Date.now() + 5_000 }, (e) => (e ? reject(e) : resolve())));
    let n = 0;
    const directGet = async () => {
      const want = Array.from({ length: BATCH }, () => ids[(n++ * 7919) % ENTITIES]!);
      const rows = await direct.getFeatures(CX_JOB, ['indicators'], want);
      if (rows[0]!.indicators === null) throw new Error('no value');
    };
    // Every entity read once: the measured reads are hot (the state backend's map cache), as a
    // feature store's reads mostly are; BENCH_COLD=1 measures first reads instead.
    if (!process.env.BENCH_COLD) for (let i = 0; i < ENTITIES; i += 100) await direct.getFeatures(CX_JOB, ['indicators'], ids.slice(i, i + 100));
    for (let i = 0; i < 1000; i++) await Promise.all([directGet(), healthCall()]);
    if (profileDir) process.kill(pid, 'SIGUSR2');
    const others = cluster.workers.slice(1);
    // The client's side too (this process), over the idle span and the direct reads.
    const self = profileDir ? profileSelf() : undefined;
    const d = await measure(pid, SECONDS, directGet, others.map((w) => w.pid));
    if (self) {
      const profile = await self.stop();
      await writeFile(join(profileDir!, 'client.cpuprofile'), JSON.stringify(profile));
      console.log(`client (this process):\n${summarize(profile, 25)}`);
    }
    if (others.length > 0) {
      // Each worker's CPU per Get it serves: its share of the ids, by the serving map (the health check reaches worker 1 only).
      const owner = new Array<string>(map.maxParallelism).fill('');
      for (const o of map.owners) for (const r of o.keyGroups) for (let kg = r.start; kg <= r.end; kg++) owner[kg] = o.workerId;
      const share = new Map<string, number>();
      for (const id of ids) {
        const w = owner[keyGroupForKey(id, map.maxParallelism)]!;
        share.set(w, (share.get(w) ?? 0) + 1 / ids.length);
      }
      const perWorker = [d.us.all, ...d.othersUs].map((us, i) => {
        const name = cluster.workers[i]!.name.replace(/^worker /, '');
        const served = share.get(name) ?? 0;
        return `${name}: ${Math.round(us)} µs per Get of all, ${Math.round(100 * served)} % of the Gets, ${Math.round(us / served)} µs per Get it serves`;
      });
      lines.push(`${WORKERS} workers, direct GetFeatures ${Math.round(d.perSecond)}/s: ${perWorker.join('; ')}`);
      console.log(`  ${lines.at(-1)}`);
    }
    if (profileDir) process.kill(pid, 'SIGUSR2');
    const hc = await measure(pid, SECONDS, healthCall);
    const fmt = (x: typeof d) => `${Math.round(x.us.all)} µs (main thread ${Math.round(x.us.main)}, job thread ${Math.round(x.us.job)}, other threads ${Math.round(x.us.rest)}; ${Math.round(x.perSecond)}/s)`;
    lines.push(`worker CPU per call, ${IN_FLIGHT} in flight, job idle, isolation ${process.env.EDDY_JOB_ISOLATION ?? 'thread'}: direct GetFeatures ${fmt(d)}; health check ${fmt(hc)}`);
    console.log(`  ${lines[0]}`);
    if (BUSY > 0) {
      // The backlog is published before the reads start (the publisher does not compete with them).
      await prepublish(cluster.nats.url, BUSY, (i) => cxEvent(WARM_EVENTS + i));
      const before = await keyedRecordsIn(admin);
      const t0 = performance.now();
      // With BENCH_PROFILE_DIR, the worker's profile of this span is <pid>-2.cpuprofile.
      if (profileDir) process.kill(pid, 'SIGUSR2');
      const routedGet = (i: number) => routed.getFeatures(CX_JOB, ['indicators'], [ids[(i * 7919) % ENTITIES]!]);
      const [gets, checks, routedGets] = await Promise.all([openLoop(BUSY_RATE, SECONDS, () => directGet()), openLoop(BUSY_RATE, SECONDS, healthCall), openLoop(BUSY_ROUTED_RATE, SECONDS, routedGet)]);
      if (profileDir) process.kill(pid, 'SIGUSR2');
      const after = await keyedRecordsIn(admin);
      const rate = (after - before) / ((performance.now() - t0) / 1000);
      const lat = (x: typeof gets) => `p50 ${x.p50.toFixed(2)} / p99 ${x.p99.toFixed(2)} / p999 ${x.p999.toFixed(2)} ms`;
      lines.push(`while the job reads a backlog (${Math.round(rate)} events/s meanwhile${after >= WARM_EVENTS + BUSY ? ', backlog done before the end' : ''}), ${BUSY_RATE}/s open loop: direct GetFeatures ${lat(gets)}; health check ${lat(checks)}; through the coordinator at ${BUSY_ROUTED_RATE}/s ${lat(routedGets)}`);
      console.log(`  ${lines.at(-1)}`);
    }
    return { direct: d.us.all, health: hc.us.all, lines };
  } finally {
    health?.close();
    direct.close();
    routed.close();
    admin.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
    if (profileDir) {
      const profile = JSON.parse(await readFile(join(profileDir, `${pid}-1.cpuprofile`), 'utf8').catch(() => 'null'));
      if (profile) console.log(summarize(profile, 40));
    }
  }
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    const runs = [];
    for (let r = 0; r < RUNS; r++) runs.push(await run());
    console.log(`median of ${RUNS}: direct ${Math.round(median(runs.map((r) => r.direct)))} µs, health ${Math.round(median(runs.map((r) => r.health)))} µs per call (worker, all threads)`);
  });
}
