// `make bench`: every benchmark in bench/, each figure beside a baseline measured in the same run;
// medians of BENCH_RUNS runs (default 3). BENCH_ONLY=throughput|get|checkpoint|recovery (or a
// comma-separated list) runs a subset; BENCH_QUICK=1 a smaller, faster run.
//  - throughput: customer-experience with 1 and 2 workers against raw NATS core publish→subscribe
//    of the same event size.
//  - get: FeatureService Get latency at a fixed rate (open loop).
//  - checkpoint: bench/checkpoint.ts (checkpoint duration and bytes vs change rate; throughput with
//    checkpoints every second vs effectively off).
//  - recovery: bench/recovery.ts (SIGKILL of a worker: time to RUNNING, time to the first record).
import os from 'node:os';
import { connect } from '@nats-io/transport-node';
import { RUNS, QUICK, cxThroughput, getLatency, machineLine, median, runMain, selected, type GetLatency } from './lib.ts';
import { checkpointBenchmarks } from './checkpoint.ts';
import { recoveryBenchmarks } from './recovery.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? (QUICK ? 100_000 : 200_000));
const GET_RATE = 1000;
const GET_SECONDS = 5;

async function rawNatsMsgsPerSecond(url: string, size: number, count: number): Promise<number> {
  const pub = await connect({ servers: url });
  const sub = await connect({ servers: url });
  const payload = new Uint8Array(size);
  let received = 0;
  const done = new Promise<void>((resolve) => sub.subscribe('bench.raw', { callback: () => {
    if (++received === count) resolve();
  } }));
  await sub.flush();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    pub.publish('bench.raw', payload);
    if (i % 10_000 === 0) await pub.flush();
  }
  await pub.flush();
  await done;
  const rate = count / ((performance.now() - t0) / 1000);
  await pub.close();
  await sub.close();
  return rate;
}

interface ThroughputRun {
  eventsPerSecond: number;
  eventSize: number;
  rawNats: number;
}

async function throughput(workers: number): Promise<ThroughputRun> {
  let rawNats = 0;
  // The baseline runs once the stream is full and before the job starts: same NATS server, same moment.
  const run = await cxThroughput({ workers, events: EVENTS }, async (cluster, eventSize) => {
    rawNats = await rawNatsMsgsPerSecond(cluster.nats.url, eventSize, 500_000);
  });
  return { eventsPerSecond: run.eventsPerSecond, eventSize: run.eventSize, rawNats };
}

async function main(): Promise<void> {
  console.log(machineLine());
  if (selected('throughput')) {
    console.log(`--- throughput: customer-experience, ${EVENTS} events prepublished, checkpoints every second (the default)`);
    for (const workers of [1, 2]) {
      const runs: ThroughputRun[] = [];
      for (let r = 0; r < RUNS; r++) {
        const run = await throughput(workers);
        runs.push(run);
        console.log(`  run ${r + 1}: ${workers} worker(s) ${Math.round(run.eventsPerSecond)} events/s; raw NATS pub→sub ${Math.round(run.rawNats)} msgs/s of ${run.eventSize} B`);
      }
      const eps = median(runs.map((r) => r.eventsPerSecond));
      const raw = median(runs.map((r) => r.rawNats));
      console.log(
        `customer-experience, ${workers} worker(s): ${Math.round(eps)} events/s (median); raw NATS core pub→sub ${Math.round(raw)} msgs/s; ratio ${(eps / raw).toFixed(3)}; ` +
          `${Math.round(eps / workers)} events/s per worker = ${(eps / workers / 150_000).toFixed(3)} of the 150 k/s-per-worker-core target`,
      );
    }
  }
  if (selected('get')) {
    console.log(`--- get: FeatureService BatchGet of one entity (latest view), 2 workers; baseline gRPC health Check on the same coordinator`);
    const gets: GetLatency[] = [];
    for (let r = 0; r < RUNS; r++) {
      const g = await getLatency({ rate: GET_RATE, seconds: GET_SECONDS });
      gets.push(g);
      console.log(
        `  run ${r + 1}: Get open loop p50 ${g.p50.toFixed(2)} ms, p99 ${g.p99.toFixed(2)} ms (completed ${Math.round(g.achieved)}/s); ` +
          `health Check p50 ${g.health.p50.toFixed(2)} ms, p99 ${g.health.p99.toFixed(2)} ms; Get closed loop p50 ${g.closed.p50.toFixed(2)} ms, p99 ${g.closed.p99.toFixed(2)} ms, ${Math.round(g.closed.achieved)}/s`,
      );
    }
    const m = (f: (g: GetLatency) => number) => median(gets.map(f));
    console.log(
      `FeatureService Get at ${GET_RATE}/s (open loop, ${GET_SECONDS} s): p50 ${m((g) => g.p50).toFixed(2)} ms, p99 ${m((g) => g.p99).toFixed(2)} ms (medians of ${RUNS} runs; completed ${Math.round(m((g) => g.achieved))}/s); ` +
        `baseline gRPC health Check at ${GET_RATE}/s: p50 ${m((g) => g.health.p50).toFixed(2)} ms, p99 ${m((g) => g.health.p99).toFixed(2)} ms; ratio p99 ${(m((g) => g.p99) / m((g) => g.health.p99)).toFixed(1)}; ` +
        `Get one at a time: p50 ${m((g) => g.closed.p50).toFixed(2)} ms, p99 ${m((g) => g.closed.p99).toFixed(2)} ms, ${Math.round(m((g) => g.closed.achieved))}/s`,
    );
  }
  if (selected('checkpoint')) await checkpointBenchmarks();
  if (selected('recovery')) await recoveryBenchmarks();
}

runMain(async () => {
  const t0 = performance.now();
  await main();
  console.log(`(bench took ${((performance.now() - t0) / 60_000).toFixed(1)} min; load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (1, 5, 15 min))`);
});
