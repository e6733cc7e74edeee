// Observability end to end: a real cluster whose processes serve Prometheus metrics, the
// customer-experience job fed a known number of events, a few feature queries and a completed
// checkpoint; then every named metric is scraped from the coordinator and the workers and checked
// against what the test did (record counts it computed, queries it made), and a killed worker
// shows as a recovery.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, cxEvents, cxExpectation, publishSteadily, submitCx, runCli, CX_JOB } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';

const EVENTS = 6_000;
const ENTITIES = 300;
const QUERIES = 5;

/** One sample of a Prometheus text exposition: name, labels, value. */
interface Sample { name: string; labels: Record<string, string>; value: number }

function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    assert.ok(m, `an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

async function scrape(url: string | undefined, what: string): Promise<Sample[]> {
  assert.ok(url, 'the process serves metrics');
  // A deadline: an endpoint that stops answering fails here, by name, not at the test's time-out.
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    // fetch rejects with a DOMException on time-out, which the test reporter prints as {}.
    throw new Error(`scraping ${what} at ${url} failed: ${e instanceof Error || e instanceof DOMException ? `${e.name}: ${e.message}` : String(e)}`, { cause: e });
  }
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return parseExposition(await res.text());
}

/** Sum of a metric's samples whose labels include `where`; undefined when there is none. */
function sum(samples: Sample[], name: string, where: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v));
  return hits.length === 0 ? undefined : hits.reduce((a, s) => a + s.value, 0);
}

test('metrics - the Prometheus endpoints of the coordinator and the workers expose the named metrics with the values of the run', { timeout: 180_000 }, async (t) => {
  // A short worker timeout: the kill at the end is noticed in 3 s, not the default 10 s.
  const cluster = await startCluster({ workers: 2, metrics: true, workerTimeoutMs: 3000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-metrics-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: '2 live workers' });
    await submitCx(client, join(dir, 'cache'));
    const events = cxEvents(EVENTS, ENTITIES);
    const expected = cxExpectation(events);
    await publishSteadily(nc, events, 3_000).done;
    await waitFor(async () => Number((await client.getJob(CX_JOB)).stages[1]?.recordsIn ?? 0) >= EVENTS, { timeoutMs: 60_000, what: 'every event into the keyed stage' });

    // Queries through the coordinator's FeatureService, each answered by a worker.
    const ids = [...expected.received.keys()].slice(0, QUERIES);
    for (const id of ids) {
      const [v] = await client.batchGet(CX_JOB, 'received', [id], 'latest');
      assert.equal(v?.found, true, id);
      assert.equal(JSON.parse(v!.valueJson), expected.received.get(id), `records counted for ${id}`);
    }
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints?.completed ?? 0) >= 1, { timeoutMs: 30_000, what: 'a completed checkpoint' });

    // eddy job's view: per-stage rates out and backpressure come over gRPC from the heartbeats.
    const job = await client.getJob(CX_JOB);
    for (const s of job.stages) {
      assert.ok(s.recordsOutPerSecond >= 0 && Number.isFinite(s.recordsOutPerSecond), `${s.stageId} rate out`);
      assert.ok(s.backpressureRatio >= 0 && s.backpressureRatio <= 1, `${s.stageId} backpressure ratio ${s.backpressureRatio}`);
    }

    // The same through the CLI: a row per stage with its rates and backpressure.
    const cli = await runCli(['--addr', cluster.address, 'job', CX_JOB]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /STAGE\s+KIND\s+RECORDS IN\s+RECORDS OUT\s+DEAD LETTERS\s+RATE IN\s+RATE OUT\s+BACKPRESSURE/);
    for (const s of job.stages) assert.match(cli.stdout, new RegExp(`^${s.stageId}\\s+${s.kind}\\s.*/s\\s+[\\d,]+/s\\s+\\d+%$`, 'm'), `a row for ${s.stageId}`);

    // Stage counters start again at a redeploy, and records after the last checkpoint are
    // replayed; batch histograms live as long as the worker process. A run without a recovery
    // (the usual case) is checked exactly; one with a spurious recovery (a worker starved of CPU
    // past its heartbeat time-out) only where replays cannot change the answer.
    const exact = job.restarts === 0;
    if (!exact) t.diagnostic(`the job restarted ${job.restarts} time(s) before the scrape: record counts checked as lower bounds`);
    const records = (actual: number | undefined, what: string) => (exact ? assert.equal(actual, EVENTS, what) : assert.ok(actual !== undefined && actual > 0, `${what}: ${actual}`));
    const sourceStage = job.stages[0]!.stageId;
    const keyedStage = job.stages[1]!.stageId;
    // Worker metrics are summed over both workers: together they saw every event once.
    const workers = await Promise.all(cluster.workers.map((w) => scrape(w.metricsUrl, w.name)));
    const all = workers.flat();
    records(sum(all, 'eddy_stage_records_in_total', { job: CX_JOB, stage: keyedStage }), 'records into the keyed stage');
    records(sum(all, 'eddy_stage_records_in_total', { job: CX_JOB, stage: sourceStage }), 'records read by the source');
    records(sum(all, 'eddy_stage_records_out_total', { job: CX_JOB, stage: sourceStage }), 'records shuffled by the source');
    // Every shuffled record travelled in exactly one batch to the keyed stage (a replay sends it again).
    const batched = sum(all, 'eddy_channel_batch_records_sum', { job: CX_JOB, stage: keyedStage });
    if (exact) assert.equal(batched, EVENTS, 'records in shuffle batches');
    else assert.ok(batched !== undefined && batched >= EVENTS, `records in shuffle batches: ${batched}`);
    const batches = sum(all, 'eddy_channel_batch_records_count', { job: CX_JOB, stage: keyedStage })!;
    assert.ok(batches > 0 && batches < batched!, `batches (${batches}) carry several records each`);
    assert.notEqual(sum(all, 'eddy_stage_backpressure_ms_total', { job: CX_JOB, stage: sourceStage }), undefined, 'backpressure is reported');
    assert.notEqual(sum(all, 'eddy_source_lag_ms', { job: CX_JOB }), undefined, 'source lag is reported per split');
    assert.equal(sum(all, 'eddy_worker_query_duration_ms_count', { job: CX_JOB }), QUERIES, 'queries answered by the workers');
    assert.ok(sum(all, 'eddy_worker_query_duration_ms_sum', { job: CX_JOB })! > 0);
    assert.ok(sum(all, 'eddy_worker_checkpoint_upload_duration_ms_count', { job: CX_JOB })! >= 1, 'checkpoint uploads');
    assert.ok(sum(all, 'eddy_worker_checkpoint_upload_bytes_sum', { job: CX_JOB })! > 0, 'checkpoint bytes uploaded');
    // Each worker reports its own RocksDB (workers[] is in start-up order, not id order).
    for (const samples of workers) {
      const sizes = samples.filter((s) => s.name === 'eddy_rocksdb_size_bytes' && s.labels.job === CX_JOB);
      assert.equal(sizes.length, 1, `one RocksDB size per worker: ${JSON.stringify(sizes)}`);
      assert.ok(sizes[0]!.value > 0 && /^worker-\d$/.test(sizes[0]!.labels.worker ?? ''), `RocksDB size: ${JSON.stringify(sizes[0])}`);
    }

    const coordinator = await scrape(cluster.coordinator.metricsUrl, 'the coordinator');
    assert.ok(sum(coordinator, 'eddy_checkpoints_completed_total', { job: CX_JOB })! >= 1, 'checkpoints completed');
    assert.ok(sum(coordinator, 'eddy_checkpoint_duration_ms_count', { job: CX_JOB })! >= 1, 'checkpoint durations');
    assert.ok(sum(coordinator, 'eddy_checkpoint_duration_ms_sum', { job: CX_JOB })! > 0);
    assert.ok(sum(coordinator, 'eddy_checkpoint_size_bytes_sum', { job: CX_JOB })! > 0, 'checkpoint sizes');
    assert.equal(sum(coordinator, 'eddy_feature_query_duration_ms_count', { job: CX_JOB, outcome: 'ok' }), QUERIES, 'FeatureService requests');
    assert.ok(sum(coordinator, 'eddy_feature_query_duration_ms_sum', { job: CX_JOB })! > 0);

    // A worker killed: the coordinator counts a recovery and times it once the job runs again.
    cluster.workers[1]!.kill('SIGKILL');
    await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return j.state === 'RUNNING' && j.restarts >= 1;
    }, { timeoutMs: 60_000, what: 'the job running again after the kill' });
    const after = await scrape(cluster.coordinator.metricsUrl, 'the coordinator');
    // The cause is worker-lost or, when a channel to the dead worker broke first, infrastructure.
    assert.ok(sum(after, 'eddy_job_recoveries_total', { job: CX_JOB })! >= 1, 'a recovery after the worker was lost');
    assert.ok(sum(after, 'eddy_job_recovery_duration_ms_count', { job: CX_JOB })! >= 1, 'the recovery timed');
  } finally {
    await nc.close();
    client.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
