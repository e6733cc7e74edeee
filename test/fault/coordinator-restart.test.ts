// The coordinator keeps jobs, epochs and completed checkpoints in NATS KV: one killed with
// SIGKILL and started again resumes the running job from its latest completed checkpoint,
// without a resubmission, and the job's state and output stay exactly once; output of completed
// checkpoints that the killed coordinator had not published yet is published by the new one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startCluster, startCoordinator, waitFor, soakSize, soakTimeoutMs, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, CX_JOB, clusterStore, readStream, REPO_ROOT } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { partitionForKey } from '../../core/key-groups.ts';
import { TUMBLE_MS, WF_JOB, WF_PARTITIONS, type WfEvent, type WfWindow } from '../fixtures/windows-faults-job.ts';

test('checkpoint - a coordinator killed with SIGKILL and restarted resumes the job exactly once', { timeout: soakTimeoutMs(240_000) }, async () => {
  const cluster = await startCluster({ workers: 2 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-coord-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  // The restart happens after two checkpoints, a few seconds in: more events only make the test longer.
  const events = cxEvents(soakSize(30_000, 300_000), 1_000, 11);
  let second: Awaited<ReturnType<typeof startCoordinator>> | undefined;
  let producer: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    await submitCx(client, join(dir, 'cache'));
    producer = publishSteadily(nc, events, 1_000);
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints!.latestId) >= 2, { timeoutMs: 30_000, what: 'two completed checkpoints' });
    const before = await client.getJob(CX_JOB);

    cluster.coordinator.kill('SIGKILL');
    await cluster.coordinator.exited;
    second = await startCoordinator({ natsUrl: cluster.nats.url, storeDir: cluster.storeDir, grpcPort: Number(cluster.address.split(':')[1]) });

    // Same job, not resubmitted: a new epoch, restored from a checkpoint, checkpointing again.
    await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return j.state === 'RUNNING' && Number(j.epoch) > Number(before.epoch) && Number(j.checkpoints!.latestId) > Number(before.checkpoints!.latestId) ? j : undefined;
    }, { timeoutMs: 60_000, what: 'the job to resume under the restarted coordinator' });
    assert.match(second.output(), /job resumed from the job store/);

    await producer!.done;
    await assertCxExactlyOnce(client, nc, cxExpectation(events), 120_000, clusterStore(cluster));
  } finally {
    producer?.stop();
    client.close();
    await nc.close();
    await second?.stop();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('checkpoint - a restarted coordinator publishes the output of every completed checkpoint it had not published, not only the latest', { timeout: 240_000 }, async () => {
  // The sink's stream is missing while windows fire, so the output of several completed
  // checkpoints waits in the coordinator's publisher; then the coordinator is SIGKILLed, the
  // stream comes back, and a new coordinator must publish all of it. (Before the job store kept
  // the list, a restart published only the latest checkpoint's output: the windows of the
  // others were lost, though the state said they had fired.) Several checkpoints per burst, idle
  // or not: a checkpoint every interval.
  const cluster = await startCluster({ workers: 1, skipIdleCheckpoints: false });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-coord-out-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  let second: Awaited<ReturnType<typeof startCoordinator>> | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 1, { timeoutMs: 15_000, what: 'a live worker' });
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/windows-faults-job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob(WF_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
    const jsm = await jetstreamManager(nc);
    const config = (await jsm.streams.info('WF_TUMBLING')).config;
    await jsm.streams.delete('WF_TUMBLING');

    // 20 users, an event every 20 ms for 60 s of event time, in three bursts a few checkpoints
    // apart: windows fire in each, and their output cannot be published.
    const T0 = 1_700_000_000_000;
    const events: WfEvent[] = Array.from({ length: 3000 }, (_, i) => ({ user: `u${i % 20}`, kind: 'b', id: i, ts: T0 + i * 20, amount: i % 7 }));
    const js = jetstream(nc);
    const publish = async (e: WfEvent) => js.publish(`wf-events.${partitionForKey(e.user, WF_PARTITIONS)}`, JSON.stringify(e));
    const closers = Array.from({ length: WF_PARTITIONS }, (_, p) => {
      let n = 0;
      while (partitionForKey(`closer-${p}-${n}`, WF_PARTITIONS) !== p) n++;
      return { user: `closer-${p}-${n}`, kind: 'b' as const, id: -1 - p, ts: T0 + 3_600_000, amount: 0 };
    });
    for (let burst = 0; burst < 3; burst++) {
      for (const e of events.slice(burst * 1000, (burst + 1) * 1000)) await publish(e);
      // The last burst closes every window (an event an hour later on every partition).
      if (burst === 2) for (const c of closers) await publish(c);
      const before = Number((await client.getJob(WF_JOB)).checkpoints!.latestId);
      await waitFor(async () => Number((await client.getJob(WF_JOB)).checkpoints!.latestId) >= before + 3, { timeoutMs: 60_000, what: `checkpoints after burst ${burst + 1}` });
    }
    const expected = new Map<string, [number, number]>();
    for (const e of events) {
      const start = Math.floor(e.ts / TUMBLE_MS) * TUMBLE_MS;
      const k = `${e.user}/${start}/${start + TUMBLE_MS}`;
      const [count, sum] = expected.get(k) ?? [0, 0];
      expected.set(k, [count + 1, sum + e.amount]);
    }
    // Every window fired (the job's counters say so), none published.
    await waitFor(async () => Number((await client.getJob(WF_JOB)).stages.find((s) => s.stageId === 'tumbling')?.recordsOut ?? 0) >= expected.size, { timeoutMs: 60_000, what: 'every window to fire' });

    cluster.coordinator.kill('SIGKILL');
    await cluster.coordinator.exited;
    await jsm.streams.add(config);
    second = await startCoordinator({ natsUrl: cluster.nats.url, storeDir: cluster.storeDir, grpcPort: Number(cluster.address.split(':')[1]) });
    const results = await waitFor(async () => {
      const r = await readStream(nc, 'WF_TUMBLING');
      return r.length >= expected.size ? r : undefined;
    }, { timeoutMs: 60_000, what: `${expected.size} window results` }).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${(await readStream(nc, 'WF_TUMBLING')).length} published`, { cause: e });
    });
    const got = results.map((m) => JSON.parse(m.data) as WfWindow).map((w) => `${w.user}/${w.start}/${w.end}/${w.count}/${w.sum}`);
    assert.deepEqual(got.sort(), [...expected].map(([k, [count, sum]]) => `${k}/${count}/${sum}`).sort(), 'every window result once');
  } finally {
    client.close();
    await nc.close();
    await second?.stop();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
