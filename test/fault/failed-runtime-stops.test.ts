// A worker whose job failed stops changing that job's state before the job is deployed again
// (issue 11). A survivor of a recovery keeps its key groups' state in its RocksDB and rolls back
// what came after the checkpoint it restores; a keyed task of the failed epoch that went on
// draining its queue meanwhile wrote into the next epoch's state: timers fired (and their state
// evicted) or counts incremented by records the new epoch then replays — windows and timer joins
// emitted partial results or never fired. Here one key's records are slow, so a survivor still
// holds many of them when the other worker is SIGKILLed; every count must come out exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, readStream, REPO_ROOT } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { BulkPublisher } from '../../core/jetstream-publisher.ts';
import { keyGroupForKey, keyGroupsOf, partitionForKey } from '../../core/key-groups.ts';
import { SLOW_JOB, SLOW_PARTITIONS, type SlowEcho, type SlowEvent } from '../fixtures/slow-align-job.ts';

const KEYS = 20;
const SLOW_KEY = 'k-slow';
/** 60 slow records of 100 ms: the survivor is busy with them for seconds after the kill. */
const SLOW_RECORDS = 60;
const SLOW_MS = 100;

test('recovery - a survivor\'s keyed tasks of the failed epoch stop before its state is rolled back and reused: no record counted twice', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster({ workers: 2, workerTimeoutMs: 3000, checkpointIntervalMs: 500 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-failed-stops-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const input: SlowEvent[] = [];
  for (let i = 0; i < 400; i++) input.push({ id: i, key: `k${i % KEYS}` });
  for (let i = 0; i < SLOW_RECORDS; i++) input.push({ id: 400 + i, key: SLOW_KEY, slowMs: SLOW_MS });
  /** Published while the other worker dies: the survivor's sends to its key groups fail its epoch. */
  const trickle: SlowEvent[] = Array.from({ length: 300 }, (_, i) => ({ id: 1000 + i, key: `k${i % KEYS}` }));
  const publish = async (events: SlowEvent[]) => {
    const publisher = new BulkPublisher(nc);
    const encoder = new TextEncoder();
    for (const e of events) publisher.publishNow(`slow-events.${partitionForKey(e.key, SLOW_PARTITIONS)}`, encoder.encode(JSON.stringify(e)));
    await publisher.flush();
    publisher.close();
  };
  let passed = false;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/slow-align-job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => {
      const j = await client.getJob(SLOW_JOB);
      return j.state === 'RUNNING' && Number(j.checkpoints!.latestId) >= 1;
    }, { timeoutMs: 30_000, what: 'the job running, a checkpoint completed' });
    // The survivor: the owner of the slow key's key group; the other worker is killed.
    const slowKeyGroup = keyGroupForKey(SLOW_KEY, bundle.manifest.maxParallelism);
    const workers = await client.listWorkers();
    const owner = workers.find((w) => w.assignments.some((a) => a.jobId === SLOW_JOB && [...keyGroupsOf(a.keyGroups.map((r) => ({ start: r.start, end: r.end })))].includes(slowKeyGroup)))!.workerId;
    const victim = cluster.workers.find((w) => w.name !== `worker ${owner}`)!;

    await publish(input);
    // Some slow records are processed (their state written) when the other worker dies.
    await waitFor(async () => Number((await client.getJob(SLOW_JOB)).stages.find((s) => s.stageId === 'count')?.recordsIn) >= 405, { timeoutMs: 30_000, what: 'the slow records under way' });
    victim.kill('SIGKILL');
    await victim.exited;
    for (let i = 0; i < trickle.length; i += 20) {
      await publish(trickle.slice(i, i + 20));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await waitFor(async () => {
      const j = await client.getJob(SLOW_JOB);
      return j.restarts > 0 && j.state === 'RUNNING';
    }, { timeoutMs: 60_000, what: 'the job recovered on the survivor' });
    input.push(...trickle);
    await waitFor(async () => (await readStream(nc, 'SLOW_OUT')).length >= input.length, { timeoutMs: 60_000, what: `${input.length} echoes` }).catch(() => undefined);

    const echoes = (await readStream(nc, 'SLOW_OUT')).map((m) => JSON.parse(m.data) as SlowEcho);
    const counts = new Map<string, number[]>();
    for (const e of echoes) counts.set(e.key, [...(counts.get(e.key) ?? []), e.n]);
    const slow = [...(counts.get(SLOW_KEY) ?? [])].sort((a, b) => a - b);
    t.diagnostic(`${echoes.length} echoes of ${input.length}; counts of the slow key: ${slow.join(' ')}`);
    assert.deepEqual(slow, Array.from({ length: SLOW_RECORDS }, (_, i) => i + 1), 'the slow key counted each of its records once');
    for (const [key, ns] of counts) assert.deepEqual([...ns].sort((a, b) => a - b), Array.from({ length: ns.length }, (_, i) => i + 1), `counts of ${key}`);
    assert.equal(new Set(echoes.map((e) => e.id)).size, input.length, 'every record echoed');
    assert.equal(echoes.length, input.length, 'none twice');
    passed = true;
  } finally {
    if (!passed) for (const w of cluster.workers) t.diagnostic(`${w.name}: ${w.output().split('\n').filter((l) => /"msg":"(job deployed|job task failed|job stopped)"/.test(l)).join('\n')}`);
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
