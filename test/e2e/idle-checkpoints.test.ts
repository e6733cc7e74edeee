// A job with no new input and nothing due takes no periodic checkpoints: no trigger, no barrier,
// no upload while idle (coordinator/checkpoint-idle.ts). Exactly-once is kept: the input that
// arrives after an idle spell is checkpointed as usual, and a savepoint still works while idle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startCluster, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, CX_JOB } from '../kit/index.ts';
import { EddyClient, type FeatureValue } from '../../cli/client.ts';

const ENTITIES = 20;
const ids = Array.from({ length: ENTITIES }, (_, i) => `e${i}`);
const INTERVAL_MS = 200;
/** How long the job must stay without a trigger to count as idle: many checkpoint intervals. */
const QUIET_MS = 3_000;

function committedEquals(values: readonly FeatureValue[], latest: ReturnType<typeof cxExpectation>['latest']): boolean {
  return values.every((v) => (latest.has(v.entityId) ? v.found && isDeepStrictEqual(JSON.parse(v.valueJson), latest.get(v.entityId)) : !v.found));
}

test('idle checkpoints - an idle job sends no barriers; input after the idle spell is checkpointed; a savepoint still works', { timeout: 120_000 }, async () => {
  await using cluster = await startCluster({ workers: 1, checkpointIntervalMs: INTERVAL_MS, skipIdleCheckpoints: true });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-idle-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: cluster.nats.url });
    // Every checkpoint trigger the coordinator sends a worker: the barrier traffic of the job.
    const triggers: number[] = [];
    nc.subscribe('eddy.ctl.worker.*.checkpoint', { callback: () => void triggers.push(Date.now()) });
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 20_000, what: 'a live worker' });
    await submitCx(client, join(dir, 'cache'), 'test/fixtures/cx-history.ts');
    await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job running' });

    const all = cxEvents(2_000, ENTITIES, 5);
    const [first, second] = [all.slice(0, 1_000), all.slice(1_000)];
    await publishSteadily(nc, first, 500).done;
    const m1 = cxExpectation(first);
    await waitFor(async () => committedEquals(await client.batchGet(CX_JOB, 'indicators', ids, 'committed'), m1.latest), { timeoutMs: 30_000, what: 'a checkpoint holding the first events' });

    // Input stopped: after the checkpoint that holds it (and at most a few while heartbeats catch
    // up), triggers stop. Without the idle rule one would come every 200 ms.
    const quietSince = () => Date.now() - (triggers[triggers.length - 1] ?? 0);
    await waitFor(() => quietSince() >= QUIET_MS, { timeoutMs: 20_000, what: `${QUIET_MS} ms without a checkpoint trigger (triggers so far: ${triggers.length})` });
    const idleAt = Number((await client.getJob(CX_JOB)).checkpoints!.latestId);

    // Input again: a checkpoint follows and COMMITTED shows exactly all events.
    await publishSteadily(nc, second, 500).done;
    const m2 = cxExpectation(all);
    await waitFor(async () => committedEquals(await client.batchGet(CX_JOB, 'indicators', ids, 'committed'), m2.latest), { timeoutMs: 30_000, what: 'a checkpoint holding the events after the idle spell' });
    assert.ok(Number((await client.getJob(CX_JOB)).checkpoints!.latestId) > idleAt, 'a new checkpoint after the idle spell');

    // Idle again, then a savepoint: it is taken although the periodic checkpoints are paused.
    await waitFor(() => quietSince() >= QUIET_MS, { timeoutMs: 20_000, what: 'idle again' });
    const savepoint = await client.savepoint(CX_JOB, false);
    assert.ok(Number(savepoint.checkpointId) > idleAt, `a savepoint while idle (${savepoint.checkpointId})`);
    assert.equal((await client.getJob(CX_JOB)).state, 'RUNNING');
  } catch (e) {
    for (const p of [cluster.coordinator, ...cluster.workers]) console.error(`--- ${p.name}\n${p.output().split('\n').slice(-30).join('\n')}`);
    throw e;
  } finally {
    await nc?.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
