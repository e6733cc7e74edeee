// A backlog of framed records (README, "Framed ingest") larger than nats-server lets a client fall
// behind (its max_pending). A source split's consumer pulls ahead of what it has read; at 1,024
// messages a pull, four splits of 100-record Nexmark frames asked for ~110 MB, the server cut the
// worker's connection off as a slow consumer, and the shuffle batches in flight on it were lost:
// every query with a shuffle restarted (channel "batch 5 arrived after 0"), again and again. Pulls
// are now sized by bytes (worker/task/source-task.ts, "Pull size"). Here the server's max_pending
// is 8 MB, the worker's pull budget 2 MiB, and the backlog ~28 MB: q3 (people and auctions joined
// by seller, shuffled by key) reads it with no restart, and its rows are those of its definition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, readStream } from '../kit/index.ts';
import { buildNexmarkBundle } from '../kit/nexmark.ts';
import { EddyClient } from '../../cli/client.ts';
import { publishNexmark } from '../../cli/nexmark-publisher.ts';
import { jetstream as jetstreamSink } from '../../sdk/sinks.ts';
import { NexmarkModel, compileNexmarkConfig } from '../../sdk/nexmark.ts';
import { expectedRows } from '../fixtures/nexmark-expected.ts';

const EVENTS = 100_000;
const SEED = 9;
const MiB = 1024 * 1024;

test('framed backlog - frames past the server\'s max_pending are read by byte-sized pulls: no slow-consumer cut, no restart, q3\'s rows exact', { timeout: 180_000 }, async () => {
  const model = new NexmarkModel(compileNexmarkConfig({ events: EVENTS, seed: SEED }));
  const expected = expectedRows('q3', Array.from({ length: EVENTS }, (_, n) => model.eventAt(n)));
  assert.ok(expected.length > 0, 'q3 has rows on this input');
  const cluster = await startCluster({ workers: 1, natsMaxPendingBytes: 8 * MiB, env: { EDDY_SOURCE_PULL_BYTES: String(2 * MiB) } });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-framed-backlog-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 1, { timeoutMs: 15_000, what: 'a live worker' });
    const published = await publishNexmark(nc, { stream: 'nexmark', events: EVENTS, partitions: 4, seed: SEED, frameRecords: 100 });
    assert.ok(published.bytes > 3 * 8 * MiB, `a backlog well past max_pending (${published.bytes} bytes)`);
    const bundle = await buildNexmarkBundle('q3', { source: { kind: 'jetstream', stream: 'nexmark', partitions: 4 }, sink: jetstreamSink('nx.q3', { stream: 'NX_Q3' }), maxParallelism: 32, name: 'framed-q3' }, dir);
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    const outcome = await waitFor(async () => {
      const job = await client.getJob('framed-q3');
      // A cut-off connection loses shuffle batches and the job restarts: the failure this is about.
      if (job.restarts > 0) return { restarted: job.lastFailure?.message ?? 'no failure recorded', rows: [] };
      const out = await readStream(nc, 'NX_Q3');
      return out.length >= expected.length ? { restarted: undefined, rows: out.map((m) => JSON.stringify(JSON.parse(m.data))) } : undefined;
    }, { timeoutMs: 120_000, what: `q3's ${expected.length} rows` });
    assert.equal(outcome.restarted, undefined, 'the job read the backlog without a restart');
    assert.deepEqual(outcome.rows.sort(), expected, 'the rows of its definition, each once');
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
