// `make bench`: customer-experience throughput with 1 and 2 workers against raw NATS core
// publish→subscribe of the same event size, and FeatureService Get latency at a fixed rate.
// Every figure is measured in this run, next to its baseline; medians of RUNS repetitions.
import os from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startCluster, waitFor, REPO_ROOT, type Cluster } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { buildBundle } from '../core/bundle.ts';
import { partitionForKey } from '../core/key-groups.ts';
import { ensureSourceStream } from '../core/nats.ts';
import { RULES } from '../jobs/customer-experience/rules.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const ENTITIES = 10_000;
const GET_RATE = 1000;
const GET_SECONDS = 5;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;
const types = Object.keys(RULES);

function event(i: number): { entityId: string; type: string; value: number; ts: number } {
  return { entityId: `cust-${String(i % ENTITIES).padStart(6, '0')}`, type: types[i % types.length]!, value: (i * 7919) % 150, ts: 1_700_000_000_000 + i };
}

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

async function prepublish(url: string, events: number): Promise<number> {
  const nc = await connect({ servers: url });
  await ensureSourceStream(nc, { stream: 'indicators', partitions: 4, partitionKey: 'entityId' });
  const js = jetstream(nc);
  let bytes = 0;
  let inflight: Array<Promise<unknown>> = [];
  for (let i = 0; i < events; i++) {
    const e = event(i);
    const data = JSON.stringify(e);
    bytes += data.length;
    inflight.push(js.publish(`indicators.${partitionForKey(e.entityId, 4)}`, data));
    if (inflight.length >= 2000) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
  const info = await (await jetstreamManager(nc)).streams.info('indicators');
  if (info.state.messages !== events) throw new Error(`stream holds ${info.state.messages} messages, expected ${events}`);
  await nc.close();
  return Math.round(bytes / events);
}

interface ThroughputRun {
  eventsPerSecond: number;
  eventSize: number;
  rawNats: number;
}

async function throughput(workers: number): Promise<ThroughputRun> {
  const cluster: Cluster = await startCluster({ workers});
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === workers, { timeoutMs: 15_000, what: 'workers' });
    const eventSize = await prepublish(cluster.nats.url, EVENTS);
    const rawNats = await rawNatsMsgsPerSecond(cluster.nats.url, eventSize, 500_000);
    const bundle = await buildBundle(join(REPO_ROOT, 'jobs/customer-experience/job.ts'), join(dir, 'cache'));
    const t0 = performance.now();
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(
      async () => {
        const job = await client.getJob('customer-experience');
        if (job.state === 'FAILED') throw new Error(`job failed: ${job.lastFailure?.message}`);
        return Number(job.stages[1]?.recordsIn ?? 0) >= EVENTS;
      },
      { timeoutMs: 600_000, what: 'all events processed', intervalMs: 50 },
    );
    const seconds = (performance.now() - t0) / 1000;
    return { eventsPerSecond: EVENTS / seconds, eventSize, rawNats };
  } finally {
    client.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function getLatency(): Promise<{ p50: number; p99: number; achieved: number }> {
  const cluster = await startCluster({ workers: 2});
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'workers' });
    await prepublish(cluster.nats.url, 20_000);
    const bundle = await buildBundle(join(REPO_ROOT, 'jobs/customer-experience/job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => Number((await client.getJob('customer-experience')).stages[1]?.recordsIn ?? 0) >= 20_000, { timeoutMs: 120_000, what: 'processed' });
    const latencies: number[] = [];
    const total = GET_RATE * GET_SECONDS;
    const t0 = performance.now();
    const calls: Array<Promise<void>> = [];
    // Open loop: requests are issued on schedule whatever the previous ones are doing.
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / GET_RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const start = performance.now();
      calls.push(client.batchGet('customer-experience', 'indicators', [event(i).entityId], 'latest').then(() => void latencies.push(performance.now() - start)));
    }
    await Promise.all(calls);
    const achieved = total / ((performance.now() - t0) / 1000);
    return { p50: pct(latencies, 50), p99: pct(latencies, 99), achieved };
  } finally {
    client.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${RUNS} runs, ${EVENTS} events each`);
  const only = process.env.BENCH_ONLY;
  for (const workers of only === 'get' ? [] : [1, 2]) {
    const runs: ThroughputRun[] = [];
    for (let r = 0; r < RUNS; r++) {
      const run = await throughput(workers);
      runs.push(run);
      console.log(`  run ${r + 1}: ${workers} worker(s) ${Math.round(run.eventsPerSecond)} events/s; raw NATS pub→sub ${Math.round(run.rawNats)} msgs/s of ${run.eventSize} B`);
    }
    const eps = median(runs.map((r) => r.eventsPerSecond));
    const raw = median(runs.map((r) => r.rawNats));
    console.log(`customer-experience, ${workers} worker(s): ${Math.round(eps)} events/s (median); raw NATS core pub→sub ${Math.round(raw)} msgs/s; ratio ${(eps / raw).toFixed(3)}`);
  }
  const gets = [];
  for (let r = 0; r < RUNS; r++) gets.push(await getLatency());
  console.log(`FeatureService Get at ${GET_RATE}/s (open loop, ${GET_SECONDS} s): p50 ${median(gets.map((g) => g.p50)).toFixed(2)} ms, p99 ${median(gets.map((g) => g.p99)).toFixed(2)} ms (medians of ${RUNS} runs; achieved ${Math.round(median(gets.map((g) => g.achieved)))}/s)`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
