// Nexmark: the generator (sdk/nexmark.ts) against the reference model's rules, and each query job
// (jobs/nexmark/queries.ts) over generated events on real processes (nats-server, a coordinator,
// two workers), its output compared with expectedRows (test/fixtures/nexmark-expected.ts), which
// computes each query from its definition over the whole input. One cluster runs all eight jobs
// at once. Then the generator source across a worker's SIGKILL: every event once, none lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { checkpointsOrIdle, startCluster, startNatsServer, runCli, waitFor, readStream, type ChildHandle } from '../kit/index.ts';
import { buildNexmarkBundle } from '../kit/nexmark.ts';
import { EddyClient } from '../../cli/client.ts';
import { jetstream as jetstreamSink } from '../../sdk/sinks.ts';
import { nexmark, NexmarkModel, compileNexmarkConfig, type NexmarkEvent } from '../../sdk/nexmark.ts';
import { DEFAULT_BASE_TIME_MS, datagen, splitShare } from '../../sdk/generator.ts';
import { job } from '../../sdk/job.ts';
import { validateManifest } from '../../core/manifest.ts';
import { QUERIES, type NexmarkSourceOptions, type QueryName } from '../../jobs/nexmark/queries.ts';
import { expectedRows, lastRowPerCategory } from '../fixtures/nexmark-expected.ts';

test('nexmark generator - the reference model: 1:3:46, ids from 1000, sizes, hot ids, time from the rate, same for a seed', () => {
  const gen = nexmark({ events: 50_000, rate: 1000, seed: 7 });
  const events = Array.from({ length: 50_000 }, (_, n) => gen.eventAt(n));
  const of = <K extends NexmarkEvent['type']>(type: K) => events.filter((e): e is Extract<NexmarkEvent, { type: K }> => e.type === type);
  const [people, auctions, bids] = [of('person'), of('auction'), of('bid')];
  assert.deepEqual([people.length, auctions.length, bids.length], [1000, 3000, 46_000]);
  assert.equal(events[0]!.type, 'person');
  assert.deepEqual([1, 2, 3].map((n) => events[n]!.type), ['auction', 'auction', 'auction']);
  assert.deepEqual(people.map((p) => p.id), people.map((_, i) => 1000 + i), 'people ids from 1000, in order');
  assert.deepEqual(auctions.map((a) => a.id), auctions.map((_, i) => 1000 + i), 'auction ids from 1000, in order');
  // Padded sizes as the reference counts them (8 bytes per number): within 20 % on average.
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const bidSize = mean(bids.map((b) => 32 + b.extra.length));
  const personSize = mean(people.map((p) => 8 + p.name.length + p.emailAddress.length + p.creditCard.length + p.city.length + p.state.length + p.extra.length));
  const auctionSize = mean(auctions.map((a) => 48 + a.itemName.length + a.description.length + a.extra.length));
  assert.ok(Math.abs(bidSize - 100) < 5 && Math.abs(personSize - 200) < 10 && Math.abs(auctionSize - 500) < 25, `sizes ${bidSize} ${personSize} ${auctionSize}`);
  // Hot auctions and bidders: about half the bids go to the first auction of a batch of 100.
  const hot = bids.filter((b) => (b.auction - 1000) % 100 === 0).length / bids.length;
  assert.ok(hot > 0.45 && hot < 0.6, `hot auction share ${hot}`);
  // Every bid's auction and bidder exist or are only a few ids ahead.
  assert.ok(bids.every((b) => b.auction < 1000 + auctions.length + 10 && b.bidder < 1000 + people.length + 10 && b.auction >= 1000 && b.bidder >= 1000));
  // Event time advances with the rate: 1000 events per second.
  assert.equal(events[49_999]!.dateTime - events[0]!.dateTime, 49_999);
  assert.ok(auctions.every((a) => a.expires > a.dateTime));
  // Deterministic for a seed, different for another.
  const again = nexmark({ events: 50_000, rate: 1000, seed: 7 });
  assert.deepEqual(again.eventAt(12_345), events[12_345]);
  assert.notDeepEqual(nexmark({ events: 50_000, rate: 1000, seed: 8 }).eventAt(12_345), events[12_345]);
  // Splits: split p of P makes n ≡ p (mod P); their shares add up to the whole.
  for (const P of [1, 3, 4, 7]) assert.equal(Array.from({ length: P }, (_, p) => splitShare(50_000, P, p)).reduce((a, b) => a + b, 0), 50_000);
  assert.equal(splitShare(5, 8, 6), 0);
});

test('datagen - a job reading a generator: the manifest names it (no stream), event time comes from the rate', () => {
  const j = job('numbers-job');
  j.source(datagen({ name: 'numbers', events: 100, partitions: 2, rate: 10, generate: (n) => ({ n, square: n * n }) })).map((x) => x.square);
  const m = j.manifest();
  assert.deepEqual(m.sources[0]!.generator, { kind: 'datagen', events: 100, ratePerSec: 10, paced: false, params: {} });
  assert.equal(m.sources[0]!.eventTime?.maxOutOfOrdernessMs, 0);
  assert.equal(m.stages[0]!.id, 'source-numbers');
  const generator = j.plan().stages[0]!.generator!;
  assert.deepEqual(generator.eventAt(7), { n: 7, square: 49 });
  assert.equal(generator.timeAt(25), DEFAULT_BASE_TIME_MS + 2500);
  assert.throws(() => validateManifest({ ...m, sources: [{ ...m.sources[0]!, startAt: { kind: 'earliest' } }] }), /is a generator/);
  assert.throws(() => datagen({ events: -1, generate: (n) => n }), /non-negative/);
});

test('nexmark publish - the generator\'s events into a stream, event n on partition n mod P', { timeout: 60_000 }, async () => {
  await using nats = await startNatsServer();
  const result = await runCli(['nexmark', 'publish', '--events', '300', '--partitions', '3', '--seed', '4', '--nats', nats.url]);
  assert.equal(result.code, 0, result.stderr);
  const nc = await connect({ servers: nats.url });
  try {
    const stored = await readStream(nc, 'nexmark');
    assert.equal(stored.length, 300);
    const model = new NexmarkModel(compileNexmarkConfig({ events: 300, seed: 4, partitions: 3 }));
    const onTwo = stored.filter((m) => m.subject === 'nexmark.2').map((m) => JSON.parse(m.data) as NexmarkEvent);
    assert.deepEqual(onTwo, Array.from({ length: 100 }, (_, k) => model.eventAt(2 + 3 * k)), 'partition 2 holds events 2, 5, 8, … in order');
  } finally {
    await nc.close();
  }
});

// Event time runs 25 s for these events: a few windows of every query fire, auctions close.
const EVENTS = 5000;
const RATE = 200;
const SEED = 3;
const source: NexmarkSourceOptions = { kind: 'generator', events: EVENTS, rate: RATE, seed: SEED, partitions: 2 };

function sinkOf(query: QueryName) {
  return jetstreamSink(`nx.${query}`, { stream: `NX_${query.toUpperCase()}` });
}

test('nexmark - every query over 5,000 generated events on two workers matches its definition', { timeout: 240_000 }, async () => {
  const model = new NexmarkModel(compileNexmarkConfig({ events: EVENTS, rate: RATE, seed: SEED }));
  const events = Array.from({ length: EVENTS }, (_, n) => model.eventAt(n));
  const expected = new Map(QUERIES.map((q) => [q, expectedRows(q, events)]));
  // Rows each job writes: q4 writes one per closed auction with a price (a running average).
  const q4Rows = expected.get('q4')!.map((r) => (JSON.parse(r) as { auctions: number }).auctions).reduce((a, b) => a + b, 0);
  const wanted = (q: QueryName) => (q === 'q4' ? q4Rows : expected.get(q)!.length);
  for (const q of QUERIES) assert.ok(wanted(q) > 0, `${q} has something to output on this input`);

  const cluster = await startCluster({ workers: 2 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-nexmark-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    for (const q of QUERIES) {
      const bundle = await buildNexmarkBundle(q, { source, sink: sinkOf(q), maxParallelism: 8 }, dir);
      await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    }
    for (const q of QUERIES) {
      const stream = `NX_${q.toUpperCase()}`;
      const rows = await waitFor(async () => {
        const out = await readStream(nc, stream);
        return out.length >= wanted(q) ? out.map((m) => m.data) : undefined;
      }, { timeoutMs: 120_000, what: `${q}: ${wanted(q)} rows in ${stream}` }).catch(async (e: Error) => {
        const job = await client.getJob(`nexmark-${q}`);
        throw new Error(`${e.message}; it holds ${(await readStream(nc, stream)).length}; job ${job.state}, restarts ${job.restarts}, ${job.lastFailure?.message ?? ''}`, { cause: e });
      });
      const actual = q === 'q4' ? lastRowPerCategory(rows.map((r) => JSON.parse(r) as { id: number; final: number; auctions: number })) : rows.map((r) => JSON.stringify(JSON.parse(r))).sort();
      const missing = expected.get(q)!.filter((r) => !actual.includes(r));
      const extra = actual.filter((r) => !expected.get(q)!.includes(r));
      assert.equal(rows.length, wanted(q), `${q}: as many rows as expected; missing ${missing.slice(0, 5).join(' ')}; extra ${extra.slice(0, 5).join(' ')}`);
      assert.deepEqual(actual, expected.get(q), `${q}: the rows of its definition`);
    }
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('nexmark - a generator source resumes exactly-once across a worker SIGKILL and a split move: every bid once', { timeout: 180_000 }, async () => {
  // Paced, so that the kill and the move fall in the middle: 4 splits over two workers, ~30 s of
  // input (two workers start in between, each with a job thread: 12 s of input was too short on
  // a loaded machine once workers isolate jobs in threads).
  const events = 30_000;
  const paced: NexmarkSourceOptions = { kind: 'generator', events, rate: 1000, paced: true, seed: 5, partitions: 4 };
  const model = new NexmarkModel(compileNexmarkConfig({ events, rate: 1000, seed: 5 }));
  const expected = expectedRows('q0', Array.from({ length: events }, (_, n) => model.eventAt(n)));
  const cluster = await startCluster({ workers: 2, workerTimeoutMs: 2000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-nexmark-kill-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildNexmarkBundle('q0', { source: paced, sink: sinkOf('q0'), maxParallelism: 8, name: 'nexmark-kill' }, dir);
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    // Kill a worker that reads splits once two checkpoints completed with output behind them.
    await waitFor(async () => {
      const j = await client.getJob('nexmark-kill');
      return j.state === 'RUNNING' && Number(j.checkpoints?.latestId ?? 0) >= 2 && (await readStream(nc, 'NX_Q0')).length > 0;
    }, { timeoutMs: 60_000, what: 'checkpoints with output' });
    const before = await client.getJob('nexmark-kill');
    const written = (await readStream(nc, 'NX_Q0')).length;
    assert.ok(written < expected.length, `the kill falls before the end (${written} of ${expected.length} written)`);
    const running = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((a) => a.jobId === 'nexmark-kill'));
    const handles = new Map<string, ChildHandle>(cluster.workers.map((w) => [w.name.replace(/^worker /, ''), w]));
    handles.get(running[0]!.workerId)!.kill('SIGKILL');
    await cluster.addWorker('replacement-1');
    await waitFor(async () => (await client.getJob('nexmark-kill')).restarts > before.restarts, { timeoutMs: 30_000, what: 'the job to restart' });
    // A worker joins the running job: splits move to it at a checkpoint and go on from their position there.
    await cluster.addWorker('joiner-1');
    await waitFor(async () => (await client.listWorkers()).some((w) => w.workerId === 'joiner-1' && w.assignments.some((a) => a.jobId === 'nexmark-kill' && a.sourceSplits.length > 0)), { timeoutMs: 60_000, what: 'splits moved to the joining worker' });
    assert.ok((await readStream(nc, 'NX_Q0')).length < expected.length, 'the move falls before the end');
    const rows = await waitFor(async () => {
      const out = await readStream(nc, 'NX_Q0');
      return out.length >= expected.length ? out : undefined;
    }, { timeoutMs: 90_000, what: `${expected.length} bids in NX_Q0` });
    // A little longer: anything made twice would show as extra rows (two more checkpoints, or the
    // job idle with everything in its latest one: no checkpoints while idle).
    await checkpointsOrIdle(client, 'nexmark-kill');
    const all = await readStream(nc, 'NX_Q0');
    assert.equal(all.length, expected.length, `every bid once (had ${rows.length} when the count was reached)`);
    assert.deepEqual(all.map((m) => JSON.stringify(JSON.parse(m.data))).sort(), expected);
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
