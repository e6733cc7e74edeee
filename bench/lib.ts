// Shared by the benchmarks in bench/: statistics, the machine line, the customer-experience job on
// a real cluster (prepublished events, submit, wait until processed), and directory sizes.
import os from 'node:os';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, DeliverPolicy } from '@nats-io/jetstream';
import { startCluster, waitFor, CX_JOB, submitCx, waitForWorkers, type Cluster, type ClusterOptions, type Indicator as KitIndicator } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { partitionForKey } from '../core/key-groups.ts';
import { ensureSourceStream } from '../core/nats.ts';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { FRAME_FORMAT_NDJSON, FRAME_HEADER, FrameBuilder } from '../core/record-frame.ts';
import { RULES } from '../jobs/customer-experience/rules.ts';

export const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
/** BENCH_QUICK=1: smaller state, fewer events, no 10 M-key run. */
export const QUICK = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';
export const CX_PARTITIONS = 4;

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Nearest-rank percentile (p99 of 10 samples is their maximum). */
export const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((xs.length * p) / 100) - 1)]!;
export const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 2 : 1) + ' MB';
export const ms = (x: number): string => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : Math.round(x).toString()) + ' ms';
export const ratio = (a: number, b: number): string => (b === 0 ? 'n/a' : (a / b).toFixed(a / b < 0.01 ? 4 : 3));

export function machineLine(): string {
  return `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(2)}; BENCH_RUNS=${RUNS}${QUICK ? ', BENCH_QUICK=1' : ''}`;
}

/**
 * BENCH_ONLY=throughput,get,checkpoint,recovery (comma-separated); unset: everything. A part of a
 * group can be named alone (checkpoint-size, checkpoint-interval): selected('checkpoint') is then
 * true, and selected('checkpoint-size') true only for that part or its whole group.
 */
export function selected(name: string): boolean {
  const only = process.env.BENCH_ONLY;
  if (only === undefined || only === '' || only === 'all') return true;
  return only
    .split(',')
    .map((s) => s.trim())
    .some((item) => item === name || item.startsWith(`${name}-`) || name.startsWith(`${item}-`));
}

/** True when this module is the program node was started with (so a bench file runs alone too). */
export function isMain(importMetaUrl: string): boolean {
  return process.argv[1] !== undefined && importMetaUrl === pathToFileURL(process.argv[1]).href;
}

export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}

/** Sum of file sizes under a directory (0 when it does not exist). */
export async function directoryBytes(path: string): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await readdir(path, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  for (const name of names) {
    const info = await stat(join(path, name)).catch(() => undefined);
    if (info?.isFile() === true) total += info.size;
  }
  return total;
}

// --- customer-experience on a real cluster

const TYPES = Object.keys(RULES);

// The benchmarks share the test kit's cluster, job and worker helpers; an indicator's `ts` may be a
// padded string here (paddedReading), to build large state from few events.
export { CX_JOB, submitCx, waitForWorkers };
export type Indicator = Omit<KitIndicator, 'ts'> & { ts: number | string };

/**
 * Entities of the customer-experience events (BENCH_ENTITIES; 10,000 by default). More entities
 * than the state caches hold (live values: 500 k entries, about 8 per entity) measure a working
 * set larger than the cache.
 */
export const CX_ENTITIES = Number(process.env.BENCH_ENTITIES ?? 10_000);

/** run.ts's event i: CX_ENTITIES entities, the six rule types in turn. */
export function cxEvent(i: number, entities = CX_ENTITIES): Indicator {
  return { entityId: `cust-${String(i % entities).padStart(6, '0')}`, type: TYPES[i % TYPES.length]!, value: (i * 7919) % 150, ts: 1_700_000_000_000 + i };
}

/**
 * A reading `length` characters long, different for each i: hex of an LCG stream, which RocksDB's
 * block compression cannot shrink the way it would a repeated character. The benchmarks store it
 * as a reading's `ts` to build large state from few events.
 */
export function paddedReading(i: number, length: number): string {
  let s = (i * 2654435761) >>> 0;
  let out = '';
  while (out.length < length) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out += s.toString(16).padStart(8, '0');
  }
  return out.slice(0, length);
}

/**
 * Publishes `count` events into the job's source stream (created here, 4 partitions by entityId)
 * with the bulk publisher, and checks the stream holds them. Returns the mean event size.
 */
export async function prepublish(url: string, count: number, event: (i: number) => Indicator = (i) => cxEvent(i), frameRecords = 1): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    await ensureSourceStream(nc, { stream: 'indicators', partitions: CX_PARTITIONS, partitionKey: 'entityId' });
    const before = (await (await jetstreamManager(nc)).streams.info('indicators')).state.messages;
    const publisher = new BulkPublisher(nc, { window: frameRecords > 1 ? 256 : 4000 });
    const encoder = new TextEncoder();
    // Framed (core/record-frame.ts): up to frameRecords records per message and partition.
    const frames = frameRecords > 1 ? new FrameBuilder({ maxRecords: frameRecords }) : undefined;
    const frameHeaders = headers();
    frameHeaders.set(FRAME_HEADER, FRAME_FORMAT_NDJSON);
    let bytes = 0;
    let messages = 0;
    for (let i = 0; i < count; i++) {
      const e = event(i);
      const subject = `indicators.${partitionForKey(e.entityId, CX_PARTITIONS)}`;
      const text = JSON.stringify(e);
      if (frames === undefined) {
        const data = encoder.encode(text);
        bytes += data.length;
        messages++;
        await publisher.publish(subject, data);
        continue;
      }
      bytes += Buffer.byteLength(text);
      const full = frames.add(subject, text);
      if (full !== undefined) {
        messages++;
        await publisher.publish(subject, full, frameHeaders);
      }
    }
    for (const [subject, payload] of frames?.drain() ?? []) {
      messages++;
      await publisher.publish(subject, payload, frameHeaders);
    }
    await publisher.flush();
    publisher.close();
    const info = await (await jetstreamManager(nc)).streams.info('indicators');
    if (info.state.messages !== before + messages) throw new Error(`stream holds ${info.state.messages} messages, expected ${before + messages}`);
    return Math.round(bytes / count);
  } finally {
    await nc.close();
  }
}

/**
 * customer-experience on a fresh cluster: `events` events published into its source stream, the
 * job submitted once `workers` workers are up, and every event processed by its keyed stage.
 */
export async function cxProcessed(cluster: Cluster, client: EddyClient, workers: number, cacheDir: string, options: { events?: number; timeoutMs?: number } = {}): Promise<void> {
  const events = options.events ?? 20_000;
  await waitForWorkers(client, workers);
  await prepublish(cluster.nats.url, events);
  await submitCx(client, cacheDir);
  await waitFor(async () => (await keyedRecordsIn(client)) >= events, { timeoutMs: options.timeoutMs ?? 300_000, what: 'processed' });
}

/** Records into the keyed stage (stage 1: indicator-state), summed over workers. */
export async function keyedRecordsIn(client: EddyClient): Promise<number> {
  const job = await client.getJob(CX_JOB);
  if (job.state === 'FAILED') throw new Error(`job failed: ${job.lastFailure?.message}`);
  return Number(job.stages[1]?.recordsIn ?? 0);
}

export interface CxThroughput {
  eventsPerSecond: number;
  eventSize: number;
  /** Checkpoints completed, and failed, while the events were processed; the last failure. */
  checkpoints: number;
  checkpointsFailed: number;
  lastCheckpointFailure: string;
  /** Job restarts while the events were processed (0 expected), and the last failure. */
  restarts: number;
  lastFailure: string;
}

/**
 * customer-experience end to end: `events` prepublished, then the job submitted and timed until its
 * keyed stage has taken every event in. `before` runs once the stream is full (a baseline).
 */
export async function cxThroughput(
  options: {
    workers: number;
    events: number;
    /** Event i; run.ts's cxEvent by default. */
    event?: (i: number) => Indicator;
    /** Records per JetStream message: above 1, framed ingest (core/record-frame.ts). @default 1 */
    frameRecords?: number;
    /** Every process serves metrics, scraped every `scrapeEveryMs` while the events are processed. */
    scrapeEveryMs?: number;
  } & Pick<ClusterOptions, 'checkpointIntervalMs' | 'env' | 'metrics' | 'skipIdleCheckpoints' | 'workerArgs' | 'maxDeltaChain'>,
  before?: (cluster: Cluster, eventSize: number) => Promise<void>,
  after?: (cluster: Cluster) => Promise<void>,
): Promise<CxThroughput> {
  const cluster = await startCluster({
    workers: options.workers,
    ...(options.checkpointIntervalMs !== undefined && { checkpointIntervalMs: options.checkpointIntervalMs }),
    ...(options.env !== undefined && { env: options.env }),
    ...(options.metrics !== undefined && { metrics: options.metrics }),
    ...(options.skipIdleCheckpoints !== undefined && { skipIdleCheckpoints: options.skipIdleCheckpoints }),
    ...(options.workerArgs !== undefined && { workerArgs: options.workerArgs }),
    ...(options.maxDeltaChain !== undefined && { maxDeltaChain: options.maxDeltaChain }),
  });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  try {
    await waitForWorkers(client, options.workers);
    const eventSize = await prepublish(cluster.nats.url, options.events, options.event, options.frameRecords);
    await before?.(cluster, eventSize);
    const urls = [cluster.coordinator, ...cluster.workers].map((p) => p.metricsUrl).filter((u): u is string => u !== undefined);
    // As a Prometheus server would: every process, at an interval, the whole exposition read.
    const scraper = options.scrapeEveryMs !== undefined && urls.length > 0
      ? setInterval(() => void Promise.all(urls.map((u) => fetch(u).then((r) => r.text()))).catch(() => undefined), options.scrapeEveryMs)
      : undefined;
    const t0 = performance.now();
    await submitCx(client, join(dir, 'cache'));
    try {
      await waitFor(async () => (await keyedRecordsIn(client)) >= options.events, { timeoutMs: 600_000, what: 'all events processed', intervalMs: 50 });
    } finally {
      clearInterval(scraper);
    }
    const seconds = (performance.now() - t0) / 1000;
    await after?.(cluster);
    const job = await client.getJob(CX_JOB);
    return {
      eventsPerSecond: options.events / seconds,
      eventSize,
      checkpoints: Number(job.checkpoints?.completed ?? 0),
      checkpointsFailed: Number(job.checkpoints?.failed ?? 0),
      lastCheckpointFailure: job.checkpoints?.lastFailure ?? '',
      restarts: job.restarts,
      lastFailure: job.lastFailure?.message ?? '',
    };
  } finally {
    client.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export interface LatencyStats {
  p50: number;
  p99: number;
  p999: number;
  /** Calls per second completed: all calls over the time until the last one answered. */
  achieved: number;
  /** Calls that failed (e.g. past their deadline); counted in the percentiles at their time to failure. */
  failed?: number;
}

export interface GetLatency extends LatencyStats {
  /** Baseline: gRPC health Check (no NATS, no worker) on the same coordinator, open loop at the same rate. */
  health: LatencyStats;
  /** The same Get one call at a time (closed loop): latency without queueing, and the rate that gives. */
  closed: LatencyStats;
}

/** Calls `call(i)` open loop: issued on schedule whatever the earlier ones are doing. */
export async function openLoop(rate: number, seconds: number, call: (i: number) => Promise<unknown>): Promise<LatencyStats> {
  const latencies: number[] = [];
  let failed = 0;
  const total = rate * seconds;
  const t0 = performance.now();
  const calls: Array<Promise<void>> = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const start = performance.now();
    // A server that falls far behind fails calls at their deadline: counted, not fatal, and
    // kept in the percentiles at the time they took to fail (a lower bound of their latency).
    calls.push(call(i).then(
      () => void latencies.push(performance.now() - start),
      () => {
        failed++;
        latencies.push(performance.now() - start);
      },
    ));
  }
  await Promise.all(calls);
  return { p50: pct(latencies, 50), p99: pct(latencies, 99), p999: pct(latencies, 99.9), achieved: (total - failed) / ((performance.now() - t0) / 1000), failed };
}

async function closedLoop(count: number, call: (i: number) => Promise<unknown>): Promise<LatencyStats> {
  const latencies: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await call(i);
    latencies.push(performance.now() - start);
  }
  return { p50: pct(latencies, 50), p99: pct(latencies, 99), p999: pct(latencies, 99.9), achieved: count / ((performance.now() - t0) / 1000) };
}

/**
 * FeatureService Get latency: customer-experience on 2 workers with 20,000 events processed, then
 * one-entity BatchGets (latest view) issued open loop at `rate` per second for `seconds`: a server
 * that falls behind shows as latency, not as a lower rate. Then the baseline, gRPC health Check on
 * the same coordinator at the same rate, and the Get closed loop.
 */
export async function getLatency(
  options: { rate: number; seconds: number } & Pick<ClusterOptions, 'env'>,
  hooks: { before?: (cluster: Cluster) => Promise<void> | void; afterGets?: (cluster: Cluster) => Promise<void> | void } = {},
): Promise<GetLatency> {
  const cluster = await startCluster({ workers: 2, ...(options.env !== undefined && { env: options.env }) });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const grpcClient = new grpc.Client(cluster.address, grpc.credentials.createInsecure());
  const healthCheck = () =>
    new Promise<void>((resolve, reject) =>
      // HealthCheckRequest{service: ""} encodes to no bytes; the reply is not decoded.
      grpcClient.makeUnaryRequest('/grpc.health.v1.Health/Check', () => Buffer.alloc(0), (b: Buffer) => b, {}, (e) => (e ? reject(e) : resolve())),
    );
  try {
    await cxProcessed(cluster, client, 2, join(dir, 'cache'), { timeoutMs: 120_000 });
    await healthCheck();
    await hooks.before?.(cluster);
    const get = (i: number) => client.batchGet(CX_JOB, 'indicators', [cxEvent(i).entityId], 'latest');
    const open = await openLoop(options.rate, options.seconds, get);
    await hooks.afterGets?.(cluster);
    const health = await openLoop(options.rate, options.seconds, healthCheck);
    const closed = await closedLoop(Math.min(2000, options.rate * options.seconds), get);
    return { ...open, health, closed };
  } finally {
    grpcClient.close();
    client.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds (user + system) of each live thread of a process, by thread id, with its name (/proc/<pid>/task). */
export async function threadCpuSeconds(pid: number): Promise<Map<number, { name: string; seconds: number }>> {
  const threads = new Map<number, { name: string; seconds: number }>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads.set(Number(tid), { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), seconds: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return threads;
}

// --- baselines: what NATS alone does on the same server, in the same run

/**
 * Reads a whole stream with an ordered consumer (what a source split does: no acks, server-side
 * flow control), from the first message to the last; messages per second.
 */
export async function jetstreamOrderedMsgsPerSecond(url: string, stream: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const count = (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
    const consumer = await jetstream(nc).consumers.get(stream, { deliver_policy: DeliverPolicy.All });
    const t0 = performance.now();
    const messages = await consumer.consume({ max_messages: 1024 });
    let received = 0;
    for await (const m of messages) {
      if (m.data.length === 0) throw new Error('empty message');
      if (++received === count) break;
    }
    const rate = count / ((performance.now() - t0) / 1000);
    messages.stop();
    return rate;
  } finally {
    await nc.close();
  }
}

/** Core NATS publish→subscribe of `count` messages of `size` bytes across two connections; messages per second. */
export async function rawNatsMsgsPerSecond(url: string, size: number, count: number): Promise<number> {
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
