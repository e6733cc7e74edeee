// The cost of the worker's instrumentation, in process (so a busy machine disturbs it little):
// the per-batch histogram record that is the only telemetry on the record path, against the same
// call with metrics off (the no-op meter) and against a plain closure doing nothing but counting;
// and what one Prometheus scrape of a worker with one job costs (collection, serialization, HTTP).
// Both in CPU time of this process, not wall time.
// `node --import tsx bench/metrics-cost.ts` runs it alone; bench/run.ts runs it in the metrics group.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Telemetry } from '../core/telemetry.ts';
import { silentLogger } from '../core/logger.ts';
import { WorkerMetrics, type ObservedJob } from '../worker/worker-metrics.ts';
import { freePort, waitFor } from '../test/kit/index.ts';
import { RUNS, isMain, machineLine, median, runMain } from './lib.ts';

const CALLS = 2_000_000;
const SCRAPES = 300;

/** CPU ns (user + system, this process) per call of `record`, over CALLS calls: CPU time, not wall time, so that other processes on a busy machine do not count. */
function nsPerCall(record: (n: number) => void): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) record(1 + (i & 63));
  const used = process.cpuUsage(t0);
  return ((used.user + used.system) * 1000) / CALLS;
}

export interface MetricsCost {
  recordNs: number;
  noopNs: number;
  plainNs: number;
  scrapeMs: number;
  exposedLines: number;
}

export async function metricsCostRun(): Promise<MetricsCost> {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-metrics-cost-'));
  const on = await Telemetry.start({ serviceName: 'eddy-bench', metricsPort: await freePort(), logger: silentLogger });
  const off = await Telemetry.start({ serviceName: 'eddy-bench', logger: silentLogger });
  try {
    for (let i = 0; i < 20; i++) await writeFile(join(dir, `${i}.sst`), Buffer.alloc(64 * 1024));
    // A job as customer-experience is on one worker: two stages, four source splits.
    const job: ObservedJob = {
      jobId: 'customer-experience',
      statePath: dir,
      stageSamples: () => ['source-indicators', 'indicator-state'].map((stageId, i) => ({ stageId, recordsIn: 1e6 + i, recordsOut: 1e6, deadLetters: 3, backpressureMs: 1234 })),
      splitSamples: () => [0, 1, 2, 3].map((split) => ({ stageId: 'source-indicators', split, lastTimestampMs: Date.now() - 50, pending: 10 })),
    };
    const metrics = new WorkerMetrics(on.meter, 'worker-1', { measureState: true });
    metrics.attach(job);
    await waitFor(async () => (await (await fetch(on.metricsUrl)).text()).includes('eddy_rocksdb_size_bytes{'), { timeoutMs: 10_000, what: 'the RocksDB size measured' });
    const offMetrics = new WorkerMetrics(off.meter, 'worker-1', { measureState: false });
    let sink = 0;
    const plain = (n: number) => void (sink += n);
    const recorder = metrics.batchRecorder('customer-experience', 'indicator-state');
    const noop = offMetrics.batchRecorder('customer-experience', 'indicator-state');
    metrics.queryRecorder('customer-experience')(0.4);
    metrics.checkpointUploaded('customer-experience', 12, 1 << 20, false);
    // Warm the JIT on all three before timing.
    nsPerCall(plain);
    nsPerCall(recorder);
    nsPerCall(noop);
    const plainNs = nsPerCall(plain);
    const recordNs = nsPerCall(recorder);
    const noopNs = nsPerCall(noop);
    if (sink === 0) throw new Error('unreachable');
    let lines = 0;
    for (let i = 0; i < 20; i++) lines = (await (await fetch(on.metricsUrl)).text()).split('\n').length;
    const t0 = process.cpuUsage();
    for (let i = 0; i < SCRAPES; i++) await (await fetch(on.metricsUrl)).text();
    const used = process.cpuUsage(t0);
    const scrapeMs = (used.user + used.system) / 1000 / SCRAPES;
    return { recordNs, noopNs, plainNs, scrapeMs, exposedLines: lines };
    metrics.close();
  } finally {
    await on.close();
    await off.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function metricsCostBenchmark(): Promise<void> {
  console.log(`--- metrics-cost: in process, ${CALLS} per-batch histogram records; ${SCRAPES} scrapes of a worker's endpoint with one job (2 stages, 4 splits)`);
  const runs: MetricsCost[] = [];
  for (let r = 0; r < RUNS; r++) {
    const c = await metricsCostRun();
    runs.push(c);
    console.log(`  run ${r + 1}: record ${c.recordNs.toFixed(1)} ns/batch (metrics off ${c.noopNs.toFixed(1)}, plain closure ${c.plainNs.toFixed(1)}); scrape ${c.scrapeMs.toFixed(2)} ms (${c.exposedLines} lines)`);
  }
  const m = (f: (c: MetricsCost) => number) => median(runs.map(f));
  console.log(
    `batch-size histogram record: ${m((c) => c.recordNs).toFixed(1)} ns per batch with metrics on, ${m((c) => c.noopNs).toFixed(1)} ns off, plain closure ${m((c) => c.plainNs).toFixed(1)} ns; ` +
      `one scrape of a worker with one job ${m((c) => c.scrapeMs).toFixed(2)} ms of CPU, client and server in one process (medians of ${RUNS})`,
  );
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await metricsCostBenchmark();
  });
}
