// `make bench`: every benchmark in bench/, each figure beside a baseline measured in the same run;
// medians of BENCH_RUNS runs (default 3). BENCH_ONLY=throughput,keyed,ranges,metrics,get,batchget,writes,
// checkpoint,recovery,rescale,jobs,memory,nexmark,python (any comma-separated subset) runs a part; BENCH_QUICK=1 a
// smaller, faster run.
//  - throughput: customer-experience with 1 and 2 workers against raw NATS core publish→subscribe
//    and JetStream ordered-consume of the same events (the source stream itself).
//  - keyed: bench/keyed-stage.ts (customer-experience's keyed stage in process, 10 k and 100 k
//    entities, against the same logic on objects in a Map).
//  - ranges: bench/map-ranges.ts (bounded range reads of keyed maps from the map cache, in
//    process, against a RocksDB iterator per read).
//  - metrics: bench/metrics-cost.ts (the per-batch histogram record and a scrape, in process), then
//    customer-experience, 1 worker, with every process serving metrics (scraped every second)
//    against metrics off: the cost of the instrumentation.
//  - get, batchget, writes: bench/feature-store.ts (Get latency vs grpc-js echo and Redis GET,
//    BatchGet vs Redis MGET, feature writes vs Redis pipelined SET).
//  - checkpoint: bench/checkpoint.ts (checkpoint duration and bytes vs change rate; throughput with
//    checkpoints every second vs effectively off).
//  - recovery: bench/recovery.ts (SIGKILL of a worker: time to RUNNING, time to the first record).
//  - rescale: bench/rescale.ts (a worker joins a running job: pause of moving key groups, time to
//    a balanced assignment, throughput during the rebalance).
//  - jobs: bench/jobs.ts (each use-case job in jobs/ with one worker, against raw NATS and a
//    JetStream ordered consume of its source on the same server).
//  - nexmark: bench/nexmark.ts (Nexmark q0-q5, q7, q8 with the generator and the JetStream
//    source, 1 and 2 workers; events/s per core of worker CPU beside Flink's published figures).
//  - memory: bench/state-memory.ts (heap and RSS of one worker holding 1 M session windows and
//    2 M timers).
//  - python: bench/python-client.ts (feature reads from the Python client, values as Struct and as
//    JSON, through the coordinator and direct, against redis-py MGET/GET).
import os from 'node:os';
import { RUNS, QUICK, cpuSeconds, cxThroughput, jetstreamOrderedMsgsPerSecond, machineLine, median, rawNatsMsgsPerSecond, runMain, selected } from './lib.ts';
import { featureStoreBenchmarks } from './feature-store.ts';
import { metricsCostBenchmark } from './metrics-cost.ts';
import { checkpointBenchmarks } from './checkpoint.ts';
import { recoveryBenchmarks } from './recovery.ts';
import { rescaleBenchmarks } from './rescale.ts';
import { jobBenchmarks } from './jobs.ts';
import { stateMemoryBenchmarks } from './state-memory.ts';
import { nexmarkBenchmarks } from './nexmark.ts';
import { pythonClient } from './python-client.ts';
import { keyedStageBenchmarks } from './keyed-stage.ts';
import { mapRangeBenchmarks } from './map-ranges.ts';
import type { Cluster } from '../test/kit/index.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? (QUICK ? 100_000 : 200_000));

interface ThroughputRun {
  eventsPerSecond: number;
  eventSize: number;
  rawNats: number;
  jetstreamOrdered: number;
  /** The workers' CPU (all threads) from submit to the last event in, per event, in µs. */
  workerCpuMicrosPerEvent: number;
  /** Seconds per completed checkpoint while the events were processed (the interval asked for: 1 s). */
  secondsPerCheckpoint: number;
}

/** Worker counts of the throughput runs (BENCH_THROUGHPUT_WORKERS, default 1,2). */
const THROUGHPUT_WORKERS = (process.env.BENCH_THROUGHPUT_WORKERS ?? '1,2').split(',').map(Number);

/** Records per message in the framed runs (`eddy publish --frame 100`). */
const FRAME_RECORDS = 100;

async function throughput(workers: number, frameRecords = 1): Promise<ThroughputRun> {
  let rawNats = 0;
  let jetstreamOrdered = 0;
  let cpu0 = 0;
  let cpu1 = 0;
  const workerCpu = async (cluster: Cluster) => (await Promise.all(cluster.workers.map((w) => cpuSeconds(w.pid)))).reduce((a, b) => a + b, 0);
  // The baselines run once the stream is full and before the job starts: same NATS server, same moment.
  const run = await cxThroughput({ workers, events: EVENTS, frameRecords }, async (cluster, eventSize) => {
    rawNats = await rawNatsMsgsPerSecond(cluster.nats.url, eventSize, 500_000);
    jetstreamOrdered = await jetstreamOrderedMsgsPerSecond(cluster.nats.url, 'indicators');
    cpu0 = await workerCpu(cluster);
  }, async (cluster) => void (cpu1 = await workerCpu(cluster)));
  const seconds = EVENTS / run.eventsPerSecond;
  return { eventsPerSecond: run.eventsPerSecond, eventSize: run.eventSize, rawNats, jetstreamOrdered, workerCpuMicrosPerEvent: ((cpu1 - cpu0) * 1e6) / EVENTS, secondsPerCheckpoint: seconds / Math.max(1, run.checkpoints) };
}

/**
 * Throughput with metrics on (scraped every second) and off, alternating, 1 worker; and the
 * worker's CPU per event (from submit until the last event is in), which a busy machine disturbs
 * less than the rate.
 */
async function metricsCost(): Promise<void> {
  console.log(`--- metrics: customer-experience, 1 worker, ${EVENTS} events; every process serving Prometheus metrics, scraped every second, vs metrics off (alternating runs)`);
  const rates = { on: [] as number[], off: [] as number[] };
  const cpu = { on: [] as number[], off: [] as number[] };
  const once = async (mode: 'on' | 'off') => {
    let cpu0 = 0;
    let cpu1 = 0;
    const run = await cxThroughput(
      { workers: 1, events: EVENTS, ...(mode === 'on' && { metrics: true, scrapeEveryMs: 1000 }) },
      async (cluster) => void (cpu0 = await cpuSeconds(cluster.workers[0]!.pid)),
      async (cluster) => void (cpu1 = await cpuSeconds(cluster.workers[0]!.pid)),
    );
    rates[mode].push(run.eventsPerSecond);
    cpu[mode].push(((cpu1 - cpu0) * 1e6) / EVENTS);
  };
  for (let r = 0; r < RUNS; r++) {
    await once('off');
    await once('on');
    console.log(`  run ${r + 1}: metrics off ${Math.round(rates.off[r]!)} events/s, worker ${cpu.off[r]!.toFixed(1)} µs CPU/event; metrics on ${Math.round(rates.on[r]!)} events/s, ${cpu.on[r]!.toFixed(1)} µs CPU/event`);
  }
  const [on, off] = [median(rates.on), median(rates.off)];
  const [cpuOn, cpuOff] = [median(cpu.on), median(cpu.off)];
  console.log(
    `customer-experience with metrics on: ${Math.round(on)} events/s, worker ${cpuOn.toFixed(1)} µs CPU/event; metrics off: ${Math.round(off)} events/s, ${cpuOff.toFixed(1)} µs CPU/event; ` +
      `rate ratio ${(on / off).toFixed(3)}, CPU ratio ${(cpuOn / cpuOff).toFixed(3)} (medians of ${RUNS})`,
  );
}

async function main(): Promise<void> {
  console.log(machineLine());
  if (selected('throughput')) {
    console.log(`--- throughput: customer-experience, ${EVENTS} events prepublished, checkpoints every second (the default)`);
    // One record per message, then framed (FRAME_RECORDS per message): the ratio to the JetStream
    // ordered consume is per message of one event, so framed runs may pass 1.
    for (const frameRecords of [1, FRAME_RECORDS]) {
      for (const workers of THROUGHPUT_WORKERS) {
        const runs: ThroughputRun[] = [];
        const label = frameRecords > 1 ? `framed (${frameRecords} per message)` : 'one per message';
        for (let r = 0; r < RUNS; r++) {
          const run = await throughput(workers, frameRecords);
          runs.push(run);
          console.log(`  run ${r + 1}: ${label}, ${workers} worker(s) ${Math.round(run.eventsPerSecond)} events/s, worker CPU ${run.workerCpuMicrosPerEvent.toFixed(1)} µs/event, a checkpoint every ${run.secondsPerCheckpoint.toFixed(1)} s; raw NATS pub→sub ${Math.round(run.rawNats)} msgs/s of ${run.eventSize} B; JetStream ordered consume ${Math.round(run.jetstreamOrdered)} msgs/s`);
        }
        const eps = median(runs.map((r) => r.eventsPerSecond));
        const raw = median(runs.map((r) => r.rawNats));
        const js = median(runs.map((r) => r.jetstreamOrdered));
        const cpu = median(runs.map((r) => r.workerCpuMicrosPerEvent));
        const cadence = median(runs.map((r) => r.secondsPerCheckpoint));
        console.log(
          `customer-experience, ${label}, ${workers} worker(s): ${Math.round(eps)} events/s (median); worker CPU ${cpu.toFixed(1)} µs/event; a checkpoint every ${cadence.toFixed(1)} s; raw NATS core pub→sub ${Math.round(raw)} msgs/s; ratio ${(eps / raw).toFixed(3)}; ` +
            `JetStream ordered consume ${Math.round(js)} msgs/s; ratio ${(eps / js).toFixed(3)}`,
        );
      }
    }
  }
  if (selected('keyed')) await keyedStageBenchmarks(QUICK ? 100_000 : 200_000);
  if (selected('ranges')) await mapRangeBenchmarks(QUICK ? 5_000 : 20_000);
  if (selected('metrics')) {
    await metricsCostBenchmark();
    await metricsCost();
  }
  if (selected('get') || selected('batchget') || selected('writes')) await featureStoreBenchmarks();
  if (selected('checkpoint')) await checkpointBenchmarks();
  if (selected('recovery')) await recoveryBenchmarks();
  if (selected('rescale')) await rescaleBenchmarks();
  if (selected('jobs')) await jobBenchmarks();
  if (selected('memory')) await stateMemoryBenchmarks();
  if (selected('nexmark')) await nexmarkBenchmarks();
  if (selected('python')) await pythonClient();
}

runMain(async () => {
  const t0 = performance.now();
  await main();
  console.log(`(bench took ${((performance.now() - t0) / 60_000).toFixed(1)} min; load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (1, 5, 15 min))`);
});
