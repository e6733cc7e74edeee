// The feature-store benchmarks: each Eddy figure beside baselines measured in the same run.
//  - get: FeatureService Get p50/p99/p999, open loop at 1 k and 5 k requests/s, against a bare
//    grpc-js echo service in its own process (the transport floor) and Redis GET, same rates.
//  - batchget: BatchGet of 100 ids, keys/s with 8 calls in flight, against Redis MGET of 100 keys.
//  - writes: sustained feature writes/s (customer-experience events, each a new entity) against
//    Redis pipelined SET of the same count and value size.
// `node --import tsx bench/feature-store.ts` runs it alone; bench/run.ts runs it in `make bench`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import { startCluster, startProcess, waitFor, REPO_ROOT } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { loadGrpc } from '../core/proto.ts';
import { CX_JOB, QUICK, RUNS, cxEvent, cxThroughput, isMain, keyedRecordsIn, machineLine, median, openLoop, prepublish, runMain, selected, submitCx, waitForWorkers, type LatencyStats } from './lib.ts';
import { ECHO_METHOD } from './echo-server.ts';
import { redisPipelinedSet, startRedis } from './redis.ts';

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
  const cluster = await startCluster({ workers: 2 });
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
    await waitForWorkers(client, 2);
    await prepublish(cluster.nats.url, 20_000);
    await submitCx(client, join(dir, 'cache'));
    await waitFor(async () => (await keyedRecordsIn(client)) >= 20_000, { timeoutMs: 300_000, what: 'processed' });
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

export async function featureStoreBenchmarks(): Promise<void> {
  if (selected('get') || selected('batchget')) await getBenchmarks();
  if (selected('writes')) await writesBenchmark();
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await featureStoreBenchmarks();
  });
}
