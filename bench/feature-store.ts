// The feature-store benchmarks: each Eddy figure beside baselines measured in the same run.
//  - get: FeatureService Get p50/p99/p999, open loop at 1 k and 5 k requests/s, against a bare
//    grpc-js echo service in its own process (the transport floor) and Redis GET, same rates.
//  - batchget: BatchGet of 100 ids, keys/s with 8 calls in flight, against Redis MGET of 100 keys.
//  - writes: sustained feature writes/s (customer-experience events, each a new entity) against
//    Redis pipelined SET of the same count and value size.
//  - serving (issue 17): eddy.v2 GetFeatures through the coordinator and read directly from the
//    owning workers (--serve, sdk/feature-client.ts direct), against the grpc-js health check of
//    the worker's own endpoint and Redis GET/MGET: server-side CPU per Get summed over every Eddy
//    process and nats-server, p50/p99 at 1,000/s while the job processes input, the highest open-
//    loop rate with p99 ≤ 10 ms, BatchGet(100) keys/s with 1, 4 and 8 in flight, and Gets/s and
//    CPU per Get of each serving worker with 1 and 2 of them (each serves only its key groups).
//    `BENCH_ONLY=serving node --import tsx bench/feature-store.ts`.
// `node --import tsx bench/feature-store.ts` runs it alone; bench/run.ts runs it in `make bench`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import { startCluster, startProcess, waitFor, REPO_ROOT } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { loadGrpc } from '../core/proto.ts';
import { CX_JOB, QUICK, RUNS, cpuSeconds, cxEvent, cxProcessed, cxThroughput, isMain, machineLine, median, openLoop, runMain, selected, type LatencyStats } from './lib.ts';
import { ECHO_METHOD } from './echo-server.ts';
import { redisPipelinedSet, startRedis } from './redis.ts';
import { FeatureClient } from '../sdk/feature-client.ts';
import { publishSteadily, cxEvents, type Cluster } from '../test/kit/index.ts';
import { loadGrpc as loadServices } from '../core/proto.ts';
import { keyGroupForKey } from '../core/key-groups.ts';

const GET_RATES = (process.env.BENCH_GET_RATES ?? '1000,5000').split(',').map(Number);
const GET_SECONDS = Number(process.env.BENCH_GET_SECONDS ?? (QUICK ? 3 : 5));
const ENTITIES = 10_000;
const BATCH_IDS = 100;
const BATCH_IN_FLIGHT = 8;
const BATCH_SECONDS = QUICK ? 2 : 3;
const WRITES = Number(process.env.BENCH_WRITES ?? (QUICK ? 50_000 : 100_000));

const f2 = (x: number) => x.toFixed(2);
const stats = (s: LatencyStats) => `p50 ${f2(s.p50)} / p99 ${f2(s.p99)} / p999 ${f2(s.p999)} ms (${Math.round(s.achieved)}/s${s.failed ? `, ${s.failed} failed` : ''})`;
/** A Get slower than this has failed: the open loop counts it and goes on. */
const GET_DEADLINE_MS = 5_000;

/** Calls `call` with `inFlight` outstanding for `seconds`; returns calls per second. */
async function closedLoopRate(seconds: number, inFlight: number, call: (i: number) => Promise<unknown>): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let calls = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) await call(calls++);
    }),
  );
  return calls / ((performance.now() - t0) / 1000);
}

interface GetRun {
  byRate: Map<number, { eddy: LatencyStats; echo: LatencyStats; redis: LatencyStats }>;
  batchKeysPerSecond: number;
  mgetKeysPerSecond: number;
}

/** One cluster (2 workers, customer-experience over 20,000 events), an echo server and Redis. */
async function getRun(): Promise<GetRun> {
  const cluster = await startCluster({ workers: 2, skipIdleCheckpoints: SKIP_IDLE_CHECKPOINTS });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const { FeatureService } = loadGrpc().eddy.v1;
  const features = new FeatureService(cluster.address, grpc.credentials.createInsecure());
  const echoProcess = await startProcess({
    name: 'echo server',
    command: process.execPath,
    args: ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'bench/echo-server.ts')],
    readyLine: /echo listening on \d+/,
  });
  const echoPort = Number(/echo listening on (\d+)/.exec(echoProcess.output())![1]);
  const echo = new grpc.Client(`127.0.0.1:${echoPort}`, grpc.credentials.createInsecure());
  const redis = await startRedis();
  try {
    await cxProcessed(cluster, client, 2, join(dir, 'cache'));
    // Redis holds the same values as Eddy's feature, so both answer the same bytes.
    const ids = Array.from({ length: ENTITIES }, (_, i) => cxEvent(i).entityId);
    let requestBytes = 0;
    for (let i = 0; i < ids.length; i += 1000) {
      const values = await client.batchGet(CX_JOB, 'indicators', ids.slice(i, i + 1000), 'latest');
      const p = redis.client.pipeline();
      for (const v of values) {
        if (!v.found) throw new Error(`entity ${v.entityId} has no indicators feature`);
        p.set(v.entityId, v.valueJson);
      }
      await p.exec();
    }
    const getRequest = (i: number) => ({ jobId: CX_JOB, feature: 'indicators', entityId: ids[i % ENTITIES]!, view: 'VIEW_LATEST' as const });
    requestBytes = Buffer.byteLength(JSON.stringify(getRequest(0)));
    const echoPayload = Buffer.alloc(requestBytes, 1);
    const eddyGet = (i: number) =>
      new Promise<void>((resolve, reject) => features.Get(getRequest(i), { deadline: Date.now() + GET_DEADLINE_MS }, (e, v) => (e ? reject(e) : v?.found ? resolve() : reject(new Error(`no value for ${ids[i % ENTITIES]}`)))));
    const echoCall = () => new Promise<void>((resolve, reject) => echo.makeUnaryRequest(ECHO_METHOD, (b: Buffer) => b, (b: Buffer) => b, echoPayload, { deadline: Date.now() + GET_DEADLINE_MS }, (e) => (e ? reject(e) : resolve())));
    const redisGet = async (i: number) => {
      if ((await redis.client.get(ids[i % ENTITIES]!)) === null) throw new Error('redis GET missed');
    };
    // Warm every path (connections, JIT) before measuring.
    for (let i = 0; i < 500; i++) await Promise.all([eddyGet(i), echoCall(), redisGet(i)]);

    // BatchGet first: an overloaded open loop at the higher Get rate leaves thousands of calls
    // cancelled at their deadline, which the next phase should not inherit.
    let batchKeysPerSecond = 0;
    let batchSequentialKeysPerSecond = 0;
    let batchRequests = 0;
    let mgetKeysPerSecond = 0;
    if (selected('batchget')) {
      const batch = (i: number) => {
        const start = (i * 37) % (ENTITIES - BATCH_IDS);
        return ids.slice(start, start + BATCH_IDS);
      };
      const batchGet = async (i: number) => {
        const values = await client.batchGet(CX_JOB, 'indicators', batch(i), 'latest');
        if (values.length !== BATCH_IDS || !values.every((v) => v.found)) throw new Error('BatchGet answered short');
      };
      // NATS requests behind one BatchGet (router → workers), counted on the query subjects.
      const nc = await connect({ servers: cluster.nats.url });
      let queries = 0;
      const sub = nc.subscribe('eddy.q.>', { callback: () => void queries++ });
      await nc.flush();
      for (let i = 0; i < 20; i++) await batchGet(i);
      await nc.flush();
      sub.unsubscribe();
      await nc.close();
      batchRequests = queries / 20;
      batchSequentialKeysPerSecond = BATCH_IDS * (await closedLoopRate(BATCH_SECONDS, 1, batchGet));
      batchKeysPerSecond = BATCH_IDS * (await closedLoopRate(BATCH_SECONDS, BATCH_IN_FLIGHT, batchGet));
      mgetKeysPerSecond = BATCH_IDS * (await closedLoopRate(BATCH_SECONDS, BATCH_IN_FLIGHT, async (i) => {
        const values = await redis.client.mget(...batch(i));
        if (values.some((v) => v === null)) throw new Error('MGET missed');
      }));
      console.log(`    BatchGet ${Math.round(batchKeysPerSecond)} keys/s (1 in flight: ${Math.round(batchSequentialKeysPerSecond)} keys/s; ${batchRequests} NATS requests per BatchGet); Redis MGET ${Math.round(mgetKeysPerSecond)} keys/s`);
    }
    const byRate: GetRun['byRate'] = new Map();
    for (const rate of selected('get') ? GET_RATES : []) {
      const eddy = await openLoop(rate, GET_SECONDS, eddyGet);
      const echoStats = await openLoop(rate, GET_SECONDS, echoCall);
      const redisStats = await openLoop(rate, GET_SECONDS, redisGet);
      byRate.set(rate, { eddy, echo: echoStats, redis: redisStats });
      console.log(`    at ${rate}/s: Get ${stats(eddy)}; echo ${stats(echoStats)}; Redis GET ${stats(redisStats)}`);
    }
    return { byRate, batchKeysPerSecond, mgetKeysPerSecond };
  } finally {
    echo.close();
    features.close();
    client.close();
    await redis.stop();
    await echoProcess.stop();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function getBenchmarks(): Promise<void> {
  if (selected('get')) console.log(`--- get: FeatureService Get (indicators, latest) open loop at ${GET_RATES.join(' and ')}/s for ${GET_SECONDS} s, 2 workers; baselines bare grpc-js echo (own process) and Redis GET, same rates`);
  if (selected('batchget')) console.log(`--- batchget: BatchGet of ${BATCH_IDS} ids, ${BATCH_IN_FLIGHT} in flight for ${BATCH_SECONDS} s; baseline Redis MGET of ${BATCH_IDS} keys, same concurrency`);
  const runs: GetRun[] = [];
  for (let r = 0; r < RUNS; r++) {
    console.log(`  run ${r + 1}:`);
    const run = await getRun();
    runs.push(run);
  }
  if (selected('get')) {
    for (const rate of GET_RATES) {
      const m = (f: (x: { eddy: LatencyStats; echo: LatencyStats; redis: LatencyStats }) => number) => median(runs.map((run) => f(run.byRate.get(rate)!)));
      const p99 = m((x) => x.eddy.p99);
      const echoP99 = m((x) => x.echo.p99);
      console.log(
        `FeatureService Get at ${rate}/s: p50 ${f2(m((x) => x.eddy.p50))}, p99 ${f2(p99)}, p999 ${f2(m((x) => x.eddy.p999))} ms (completed ${Math.round(m((x) => x.eddy.achieved))}/s, failed ${m((x) => x.eddy.failed ?? 0)}); ` +
          `grpc-js echo p50 ${f2(m((x) => x.echo.p50))}, p99 ${f2(echoP99)}, p999 ${f2(m((x) => x.echo.p999))} ms; ` +
          `Redis GET p50 ${f2(m((x) => x.redis.p50))}, p99 ${f2(m((x) => x.redis.p99))}, p999 ${f2(m((x) => x.redis.p999))} ms; ` +
          `Get p99 / echo p99 ${(p99 / echoP99).toFixed(2)} (target ≤ 1.5${rate === 1000 ? `; and p99 < 2 ms: ${p99 < 2 ? 'met' : 'missed'}` : ''}) (medians of ${RUNS})`,
      );
    }
  }
  if (selected('batchget')) {
    const keys = median(runs.map((r) => r.batchKeysPerSecond));
    const mget = median(runs.map((r) => r.mgetKeysPerSecond));
    console.log(`BatchGet of ${BATCH_IDS} ids: ${Math.round(keys)} keys/s; Redis MGET of ${BATCH_IDS}: ${Math.round(mget)} keys/s; ratio ${(keys / mget).toFixed(3)} (target ≥ 0.25) (medians of ${RUNS})`);
  }
}

async function writesBenchmark(): Promise<void> {
  console.log(`--- writes: ${WRITES} customer-experience events, each a new entity (a feature written per event), 1 worker, checkpoints every second; baseline Redis pipelined SET (1000 per pipeline) of ${WRITES} keys, same value size`);
  const eddy: number[] = [];
  const redisRates: number[] = [];
  // Every event a distinct entity: no update lands on a key already in the overlay.
  const event = (i: number) => ({ ...cxEvent(i), entityId: `w-${String(i).padStart(8, '0')}` });
  for (let r = 0; r < RUNS; r++) {
    const run = await cxThroughput({ workers: 1, events: WRITES, event });
    const redis = await startRedis();
    let rate: number;
    try {
      rate = await redisPipelinedSet(redis.client, WRITES, (i) => event(i).entityId, (i) => JSON.stringify(event(i)));
    } finally {
      await redis.stop();
    }
    eddy.push(run.eventsPerSecond);
    redisRates.push(rate);
    console.log(`  run ${r + 1}: Eddy ${Math.round(run.eventsPerSecond)} feature writes/s (restarts ${run.restarts}, checkpoints ${run.checkpoints}); Redis pipelined SET ${Math.round(rate)}/s`);
  }
  const e = median(eddy);
  const s = median(redisRates);
  console.log(`sustained feature writes (distinct entities, through the job): ${Math.round(e)}/s; Redis pipelined SET ${Math.round(s)}/s; ratio ${(e / s).toFixed(3)} (medians of ${RUNS})`);
}

// --- serving (issue 17)

const SERVING_SECONDS = Number(process.env.BENCH_SERVING_SECONDS ?? (QUICK ? 3 : 5));
const SERVING_RATES = (process.env.BENCH_SERVING_RATES ?? '1000,2000,3000,4000,6000,8000').split(',').map(Number);
const SERVING_IN_FLIGHT = 32;
/** GetFeatures of 100 ids: calls in flight (issue 17: faster with several in flight than with one). */
const BATCH_IN_FLIGHTS = [1, 4, 8];
/** Calls in flight while CPU per call is measured. */
const CPU_IN_FLIGHT = 8;
const SERVE_ARGS = ['--serve', '127.0.0.1:0'];
/**
 * The coordinator's default: an idle job takes no periodic checkpoints (README, "Idle jobs").
 * BENCH_CHECKPOINT_WHEN_IDLE=1 measures with a checkpoint every second whatever the job does.
 */
const SKIP_IDLE_CHECKPOINTS = process.env.BENCH_CHECKPOINT_WHEN_IDLE !== '1';

/** CPU seconds of each server-side process: coordinator, workers (all their threads), nats-server. */
async function serverCpu(cluster: Cluster): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  out.set('coordinator', await cpuSeconds(cluster.coordinator.pid));
  for (const w of cluster.workers) out.set(w.name, await cpuSeconds(w.pid));
  out.set('nats-server', await cpuSeconds(cluster.nats.pid));
  return out;
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const minus = (a: Map<string, number>, b: Map<string, number>) => new Map([...a].map(([k, v]) => [k, v - (b.get(k) ?? 0)]));
/** CPU seconds per process over `ms` milliseconds, as "process ms-per-second" pairs. */
const msPerSecondByProcess = (cpu: Map<string, number>, ms: number) => [...cpu].map(([k, v]) => `${k} ${((v * 1e6) / ms).toFixed(1)}`).join(', ');

/**
 * Server-side CPU per call in µs: the CPU of `seconds` of calls, `inFlight` at a time (closed loop:
 * a loaded client slows the calls down instead of failing them), minus that of the same time
 * without calls just before (the idle job's checkpoints, heartbeats); and the calls per second.
 */
async function cpuPerCall(cluster: Cluster, inFlight: number, seconds: number, call: (i: number) => Promise<unknown>): Promise<{ us: number; perSecond: number; failed: number; byProcess: string; perProcess: Map<string, number>; idleMsPerSecond: number; idleByProcess: string }> {
  const idle0 = await serverCpu(cluster);
  const i0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const idleMs = performance.now() - i0;
  const idle = minus(await serverCpu(cluster), idle0);
  const c0 = await serverCpu(cluster);
  const t0 = performance.now();
  let calls = 0;
  let failed = 0;
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        // A failed call (its deadline passed on a loaded machine) is not counted as served.
        if (await call(calls).then(() => true, () => false)) calls++;
        else failed++;
      }
    }),
  );
  const elapsedMs = performance.now() - t0;
  const busy = minus(await serverCpu(cluster), c0);
  // Each process's CPU beyond its idle CPU over the same time, per call.
  const perCall = new Map([...busy].map(([k, v]) => [k, (1e6 * Math.max(0, v - ((idle.get(k) ?? 0) * elapsedMs) / idleMs)) / Math.max(1, calls)]));
  const byProcess = [...perCall].map(([k, v]) => `${k} ${Math.round(v)}`).join(', ');
  const idleByProcess = msPerSecondByProcess(idle, idleMs);
  return { us: sum(perCall), perSecond: (calls * 1000) / elapsedMs, failed, byProcess, perProcess: perCall, idleMsPerSecond: (sum(idle) * 1e6) / idleMs, idleByProcess };
}

/** The highest of SERVING_RATES whose open loop completes with p99 ≤ 10 ms and nothing failed. */
async function maxRate(call: (i: number) => Promise<unknown>): Promise<{ rate: number; stats: LatencyStats | undefined; tried: string[] }> {
  let best: { rate: number; stats: LatencyStats | undefined } = { rate: 0, stats: undefined };
  const tried: string[] = [];
  for (const rate of SERVING_RATES) {
    const run = await openLoop(rate, SERVING_SECONDS, call);
    tried.push(`${rate}/s: ${stats(run)}`);
    if (run.p99 > 10 || (run.failed ?? 0) > 0 || run.achieved < rate * 0.95) break;
    best = { rate, stats: run };
  }
  return { ...best, tried };
}

/** A call whose failure is counted in `failures` instead of ending the loop that makes it. */
function counted<T>(call: (i: number) => Promise<T>, failures: { n: number; last?: string }): (i: number) => Promise<void> {
  return (i) =>
    call(i).then(
      () => undefined,
      (e: unknown) => {
        failures.n++;
        failures.last = String((e as Error).message).slice(0, 160);
      },
    );
}

async function servingBenchmark(): Promise<void> {
  console.log(`--- serving: GetFeatures of one id (indicators, latest), customer-experience over 20,000 events; through the coordinator vs directly from the owning workers (--serve); baselines: grpc-js health check of a worker's serving endpoint, Redis GET/MGET; ${SERVING_SECONDS} s per measurement`);
  const cluster = await startCluster({ workers: 1, workerArgs: SERVE_ARGS, skipIdleCheckpoints: SKIP_IDLE_CHECKPOINTS });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-'));
  // Setting up (BatchGets of 1,000 ids to fill Redis) on a loaded machine takes more than 10 s.
  const admin = new EddyClient({ address: cluster.address, timeoutMs: 60_000 });
  const viaCoordinator = new FeatureClient({ address: cluster.address, timeoutMs: GET_DEADLINE_MS });
  const direct = new FeatureClient({ address: cluster.address, direct: true, timeoutMs: GET_DEADLINE_MS });
  const redis = await startRedis();
  const healthClients: grpc.Client[] = [];
  const publishNc = await connect({ servers: cluster.nats.url });
  const lines: string[] = [];
  const out = (line: string) => {
    lines.push(line);
    console.log(`    ${line}`);
  };
  try {
    await cxProcessed(cluster, admin, 1, join(dir, 'cache'));
    const ids = Array.from({ length: ENTITIES }, (_, i) => cxEvent(i).entityId);
    for (let i = 0; i < ids.length; i += 1000) {
      const values = await admin.batchGet(CX_JOB, 'indicators', ids.slice(i, i + 1000), 'latest');
      const p = redis.client.pipeline();
      for (const v of values) p.set(v.entityId, v.valueJson);
      await p.exec();
    }
    const mapOf = () =>
      new Promise<{ maxParallelism: number; owners: Array<{ workerId: string; address: string; keyGroups: Array<{ start: number; end: number }> }> }>((resolve, reject) => {
        const c = new (loadServices().eddy.v2.FeatureService)(cluster.address, grpc.credentials.createInsecure());
        c.GetServingMap({ jobId: CX_JOB }, { deadline: Date.now() + 10_000 }, (e, m) => (c.close(), e ? reject(e) : resolve(m!)));
      });
    const healthOf = (address: string) => {
      const c = new grpc.Client(address, grpc.credentials.createInsecure());
      healthClients.push(c);
      return () => new Promise<void>((resolve, reject) => c.makeUnaryRequest('/grpc.health.v1.Health/Check', () => Buffer.alloc(0), (b: Buffer) => b, {}, { deadline: Date.now() + GET_DEADLINE_MS }, (e) => (e ? reject(e) : resolve())));
    };
    const health = healthOf((await mapOf()).owners[0]!.address);
    const getVia = (client: FeatureClient) => async (i: number) => {
      const rows = await client.getFeatures(CX_JOB, ['indicators'], [ids[(i * 7919) % ENTITIES]!]);
      if (rows[0]!.indicators === null) throw new Error('no value');
    };
    /** The share of the Gets each worker (by process name) serves when calls read ids[(i * 7919) % ENTITIES] (as getVia). */
    const servedBy = async (calls: number): Promise<Map<string, number>> => {
      const map = await mapOf();
      const owner = new Array<string>(map.maxParallelism).fill('');
      for (const o of map.owners) for (const r of o.keyGroups) for (let kg = r.start; kg <= r.end; kg++) owner[kg] = o.workerId;
      const counts = new Map<string, number>();
      for (let i = 0; i < Math.min(calls, ENTITIES); i++) {
        const w = owner[keyGroupForKey(ids[(i * 7919) % ENTITIES]!, map.maxParallelism)]!;
        counts.set(`worker ${w}`, (counts.get(`worker ${w}`) ?? 0) + 1);
      }
      const n = Math.min(calls, ENTITIES);
      return new Map([...counts].map(([w, c]) => [w, c / n]));
    };
    const coordinatorGet = getVia(viaCoordinator);
    const directGet = getVia(direct);
    const redisGet = async (i: number) => {
      if ((await redis.client.get(ids[(i * 7919) % ENTITIES]!)) === null) throw new Error('redis GET missed');
    };
    for (let i = 0; i < 500; i++) await Promise.all([coordinatorGet(i), directGet(i), health(), redisGet(i)]);
    // Every entity read once: the measured Gets are hot reads (the state backend's map cache), as a
    // feature store's mostly are (a first read of a map feature opens a RocksDB iterator).
    for (let i = 0; i < ENTITIES; i += BATCH_IDS) await direct.getFeatures(CX_JOB, ['indicators'], ids.slice(i, i + BATCH_IDS));

    // 1. Server-side CPU per call, job idle (no input): all Eddy processes and nats-server.
    const cpu = { coordinator: await cpuPerCall(cluster, CPU_IN_FLIGHT, SERVING_SECONDS, coordinatorGet), direct: await cpuPerCall(cluster, CPU_IN_FLIGHT, SERVING_SECONDS, directGet), health: await cpuPerCall(cluster, CPU_IN_FLIGHT, SERVING_SECONDS, health) };
    const perCall = (x: { us: number; perSecond: number; failed: number; byProcess: string }) => `${Math.round(x.us)} µs [${x.byProcess}] (${Math.round(x.perSecond)}/s${x.failed ? `, ${x.failed} failed` : ''})`;
    out(`server-side CPU per call (coordinator, worker, nats-server), ${CPU_IN_FLIGHT} in flight, 1 worker, job idle: through the coordinator ${perCall(cpu.coordinator)}; direct ${perCall(cpu.direct)}; health check of the worker's endpoint ${perCall(cpu.health)}; direct / health ${(cpu.direct.us / cpu.health.us).toFixed(2)}; coordinator / direct ${(cpu.coordinator.us / cpu.direct.us).toFixed(2)} (target ≤ 300 µs)`);
    // What the idle job costs without any call (subtracted above): heartbeats, and periodic
    // checkpoints unless the coordinator skips them while idle (SKIP_IDLE_CHECKPOINTS).
    out(`server-side CPU of the idle job without calls, ${SKIP_IDLE_CHECKPOINTS ? 'idle checkpoints skipped (the default)' : 'a checkpoint every second (--checkpoint-when-idle)'}: ${(cpu.direct.idleMsPerSecond).toFixed(1)} ms per second [${cpu.direct.idleByProcess}]`);

    // 2. Scale-out: Gets/s closed loop with 1, then 2 serving workers (the rest runs with 2).
    const scaleFailures = { n: 0 } as { n: number; last?: string };
    const one = await closedLoopRate(SERVING_SECONDS, SERVING_IN_FLIGHT, counted(directGet, scaleFailures));
    const cpuOne = await cpuPerCall(cluster, CPU_IN_FLIGHT, SERVING_SECONDS, directGet);
    await cluster.addWorker();
    await waitFor(async () => {
      const map = await mapOf().catch(() => undefined);
      return map !== undefined && map.owners.length === 2 && map.owners.every((o) => o.address !== '') && (await admin.getJob(CX_JOB)).state === 'RUNNING';
    }, { timeoutMs: 300_000, what: 'key groups moved to the second worker' });
    // The rebalance goes on for a few checkpoints (a bounded batch of key groups per step).
    await new Promise((r) => setTimeout(r, 5_000));
    // Warm the new worker's endpoint; a call that retried past its deadline during the last move is counted, not fatal.
    for (let i = 0; i < 500; i++) await counted(directGet, scaleFailures)(i);
    const two = await closedLoopRate(SERVING_SECONDS, SERVING_IN_FLIGHT, counted(directGet, scaleFailures));
    const cpuTwo = await cpuPerCall(cluster, CPU_IN_FLIGHT, SERVING_SECONDS, directGet);
    out(`direct Gets/s, closed loop with ${SERVING_IN_FLIGHT} in flight (client in this process): 1 worker ${Math.round(one)}/s, 2 workers ${Math.round(two)}/s (× ${(two / one).toFixed(2)}); server-side CPU per Get ${Math.round(cpuOne.us)} µs [${cpuOne.byProcess}] with 1, ${Math.round(cpuTwo.us)} µs [${cpuTwo.byProcess}] with 2${scaleFailures.n ? `; ${scaleFailures.n} calls failed, last: ${scaleFailures.last}` : ''}`);
    // Each serving process's CPU per Get it serves itself: what bounds its Gets/s per core.
    const share = await servedBy(100_000);
    const perOwn = (x: { perProcess: Map<string, number> }) =>
      [...x.perProcess]
        .filter(([k]) => share.has(k))
        .map(([k, us]) => `${k} ${Math.round(us / share.get(k)!)} µs per Get it serves (${Math.round((100 * share.get(k)!))} % of the Gets) → ${Math.round(1e6 / (us / share.get(k)!))} Gets/s per core`)
        .join('; ');
    out(`scale-out, CPU of each serving worker per Get it serves: with 1 worker ${[...cpuOne.perProcess].filter(([k]) => k.startsWith('worker')).map(([k, us]) => `${k} ${Math.round(us)} µs → ${Math.round(1e6 / us)} Gets/s per core`).join('; ')}; with 2 workers ${perOwn(cpuTwo)}`);
    // 3. Latency at 1,000/s while the job processes input (2,000 events/s) and checkpoints every second.
    const input = publishSteadily(publishNc, cxEvents(1_000_000, ENTITIES, 3), 200);
    input.done.catch(() => undefined);
    const busy = { coordinator: await openLoop(1000, SERVING_SECONDS, coordinatorGet), direct: await openLoop(1000, SERVING_SECONDS, directGet), health: await openLoop(1000, SERVING_SECONDS, health), redis: await openLoop(1000, SERVING_SECONDS, redisGet) };
    input.stop();
    out(`at 1000/s while the job processes 2,000 events/s, 2 workers: coordinator ${stats(busy.coordinator)}; direct ${stats(busy.direct)}; health ${stats(busy.health)}; Redis GET ${stats(busy.redis)}; direct p99 / health p99 ${(busy.direct.p99 / busy.health.p99).toFixed(2)} (target p99 ≤ 2 ms)`);

    // 4. The highest open-loop rate with p99 ≤ 10 ms (job idle).
    const maxDirect = await maxRate(directGet);
    const maxCoordinator = await maxRate(coordinatorGet);
    out(`highest open-loop rate with p99 ≤ 10 ms (of ${SERVING_RATES.join(', ')}), 2 workers: direct ${maxDirect.rate}/s [${maxDirect.tried.join('; ')}]; coordinator ${maxCoordinator.rate}/s [${maxCoordinator.tried.join('; ')}] (target ≥ 5000/s)`);

    // 5. GetFeatures of 100 ids, 1 and 2 in flight, vs Redis MGET.
    const batch = (i: number) => {
      const start = (i * 37) % (ENTITIES - BATCH_IDS);
      return ids.slice(start, start + BATCH_IDS);
    };
    const batchVia = (client: FeatureClient) => async (i: number) => {
      const rows = await client.getFeatures(CX_JOB, ['indicators'], batch(i));
      if (rows.length !== BATCH_IDS || rows.some((r) => r.indicators === null)) throw new Error('BatchGet answered short');
    };
    const mget = async (i: number) => {
      if ((await redis.client.mget(...batch(i))).some((v) => v === null)) throw new Error('MGET missed');
    };
    for (const inFlight of BATCH_IN_FLIGHTS) {
      const failures = { n: 0 } as { n: number; last?: string };
      const d = BATCH_IDS * (await closedLoopRate(BATCH_SECONDS, inFlight, counted(batchVia(direct), failures)));
      const c = BATCH_IDS * (await closedLoopRate(BATCH_SECONDS, inFlight, counted(batchVia(viaCoordinator), failures)));
      const m = BATCH_IDS * (await closedLoopRate(BATCH_SECONDS, inFlight, mget));
      out(`GetFeatures of ${BATCH_IDS} ids, ${inFlight} in flight, 2 workers: direct ${Math.round(d)} keys/s, coordinator ${Math.round(c)} keys/s; Redis MGET ${Math.round(m)} keys/s; direct / MGET ${(d / m).toFixed(3)} (target ≥ 0.25)${failures.n ? `; ${failures.n} calls failed (counted in the rate), last: ${failures.last}` : ''}`);
    }

  } finally {
    for (const c of healthClients) c.close();
    await publishNc.close();
    viaCoordinator.close();
    direct.close();
    admin.close();
    await redis.stop();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
  console.log('serving summary:');
  for (const line of lines) console.log(`  ${line}`);
}

/** How long the idle job's CPU is sampled in the idle benchmark (BENCH_IDLE_SECONDS). */
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? (QUICK ? 10 : 20));

/**
 * What a feature store whose job receives nothing costs: the CPU of the coordinator, the worker
 * and nats-server per second once customer-experience (1 worker) has processed 20,000 events and
 * gone idle, with the coordinator's default (no periodic checkpoints while idle) and with a
 * checkpoint every second (--checkpoint-when-idle), alternating, RUNS times each.
 */
async function idleBenchmark(): Promise<void> {
  console.log(`--- idle: server-side CPU of an idle job (customer-experience, 1 worker, 20,000 events processed, then ${IDLE_SECONDS} s without input or calls): idle checkpoints skipped (the default) vs a checkpoint every second (--checkpoint-when-idle)`);
  const runs: Record<'skipped' | 'periodic', number[]> = { skipped: [], periodic: [] };
  for (let r = 0; r < RUNS; r++) {
    for (const mode of ['skipped', 'periodic'] as const) {
      const cluster = await startCluster({ workers: 1, skipIdleCheckpoints: mode === 'skipped' });
      const admin = new EddyClient({ address: cluster.address, timeoutMs: 60_000 });
      const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-'));
      try {
        await cxProcessed(cluster, admin, 1, join(dir, 'cache'));
        // The last checkpoints after the input (the default stops once one holds everything).
        await waitFor(async () => mode === 'periodic' || (await admin.getJob(CX_JOB)).checkpoints?.idle === true, { timeoutMs: 60_000, what: 'the job idle' });
        const c0 = await serverCpu(cluster);
        const id0 = Number((await admin.getJob(CX_JOB)).checkpoints?.latestId ?? 0);
        const t0 = performance.now();
        await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
        const ms = performance.now() - t0;
        const used = minus(await serverCpu(cluster), c0);
        const checkpoints = Number((await admin.getJob(CX_JOB)).checkpoints?.latestId ?? 0) - id0;
        const total = (sum(used) * 1e6) / ms;
        runs[mode].push(total);
        console.log(`    ${mode === 'skipped' ? 'idle checkpoints skipped' : 'a checkpoint every second'}, run ${r + 1}: ${total.toFixed(1)} ms per second [${msPerSecondByProcess(used, ms)}], ${checkpoints} checkpoints`);
      } finally {
        admin.close();
        await cluster[Symbol.asyncDispose]();
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
  const skipped = median(runs.skipped);
  const periodic = median(runs.periodic);
  console.log(`idle summary: medians of ${RUNS}: skipped ${skipped.toFixed(1)} ms of CPU per second, a checkpoint every second ${periodic.toFixed(1)}; skipped / periodic ${(skipped / periodic).toFixed(2)}`);
}

export async function featureStoreBenchmarks(): Promise<void> {
  if (selected('serving')) await servingBenchmark();
  if (selected('idle')) await idleBenchmark();
  if (selected('get') || selected('batchget')) await getBenchmarks();
  if (selected('writes')) await writesBenchmark();
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await featureStoreBenchmarks();
  });
}
