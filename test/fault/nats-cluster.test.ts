// Eddy on a three-node NATS cluster (README, "High availability"): every process is given all
// three URLs, the KV bucket and the streams are replicated three times, and killing the node that
// leads the source stream while records flow loses nothing. While the node is down the job keeps
// running: checkpoints complete with progress on every split (the time from the kill to the first
// is logged: the time to resume after a NATS-node loss). The node comes back on its store and
// catches up, and the results are exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startCoordinator, startWorker, waitFor, cxEvents, cxExpectation, submitCx, assertCxExactlyOnce, readStream, soakSize, soakTimeoutMs, publishCxResiliently, storedCxEvents, committedSourcePositions, CX_JOB, type EddyProcess, type CoordinatorHandle } from '../kit/index.ts';
import { startNatsCluster } from '../kit/nats-cluster.ts';
import { EddyClient } from '../../cli/client.ts';
import { ensureSourceStream } from '../../core/nats.ts';
import { openObjectStore } from '../../core/object-store.ts';

test('nats cluster - killing the node that leads the source stream under load: the job goes on while it is down, it comes back and catches up, and the results are exact', { timeout: soakTimeoutMs(240_000) }, async (t) => {
  const nats = await startNatsCluster(3);
  const root = await mkdtemp(join(tmpdir(), 'eddy-nats-ha-'));
  const storeDir = join(root, 'store');
  await mkdir(storeDir);
  const store = openObjectStore(storeDir);
  let coordinator: CoordinatorHandle | undefined;
  const workers: EddyProcess[] = [];
  let client: EddyClient | undefined;
  const nc = await connect({ servers: nats.url.split(',') });
  try {
    // The source stream R3, as the README tells operators to create it.
    await ensureSourceStream(nc, { stream: 'indicators', partitions: 4, partitionKey: 'entityId' }, 3);
    coordinator = await startCoordinator({ natsUrl: nats.url, storeDir });
    for (const id of ['worker-1', 'worker-2']) {
      await mkdir(join(root, id));
      workers.push(await startWorker({ natsUrl: nats.url, workerId: id, dataDir: join(root, id), storeDir }));
    }
    client = new EddyClient({ address: coordinator.address, timeoutMs: 10_000 });
    await waitFor(async () => (await client!.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 30_000, what: 'two live workers' });
    await submitCx(client, join(root, 'cache'));
    const jsm = await jetstreamManager(nc);
    // What Eddy created is replicated three times (the default on a cluster of three).
    assert.equal((await jsm.streams.info('KV_eddy-cluster')).config.num_replicas, 3, 'the job store bucket is R3');
    assert.equal((await jsm.streams.info('CX_TRIGGERS')).config.num_replicas, 3, 'the sink stream Eddy created is R3');

    // Enough events to flow through the loss and past the job's resumption.
    const events = cxEvents(soakSize(16_000, 300_000), 1_000, 31);
    const producer = publishCxResiliently(nc, events, 2_000);
    await waitFor(async () => Number((await client!.getJob(CX_JOB)).checkpoints!.latestId) >= 2, { timeoutMs: 90_000, what: 'two completed checkpoints' });

    const leader = await waitFor(() => nats.streamLeader('indicators').then((i) => (i === undefined ? undefined : { i })), { timeoutMs: 10_000, what: 'the source stream leader' });
    const before = await committedSourcePositions(client, store, CX_JOB);
    const killedAt = Date.now();
    await nats.kill(leader.i);
    // The survivors elect a new leader for the source stream while records flow.
    await waitFor(() => nats.streamLeader('indicators').then((i) => i !== undefined && i !== leader.i), { timeoutMs: 30_000, what: 'a new leader of the source stream' });
    t.diagnostic(`source stream leader re-elected ${Date.now() - killedAt} ms after ${nats.nodes[leader.i]!.name} was killed`);
    // With the node still down, the job goes on: a checkpoint triggered after the kill completes
    // with every split further on than the latest checkpoint before it (the time to resume).
    const resumed = await waitFor(async () => {
      const c = await committedSourcePositions(client!, store, CX_JOB);
      return c.checkpointId >= before.checkpointId + 2 && c.nextSequences.length === 4 && c.nextSequences.every((next, i) => next > (before.nextSequences[i] ?? 0)) ? c : undefined;
    }, { timeoutMs: 90_000, intervalMs: 100, what: 'a checkpoint with progress on every split, the node still down' }).catch(async (e: unknown) => {
      t.diagnostic(`committed before the kill: ${JSON.stringify(before)}; now: ${JSON.stringify(await committedSourcePositions(client!, store, CX_JOB))}`);
      for await (const c of jsm.consumers.list('indicators')) t.diagnostic(`consumer ${c.name} ${JSON.stringify(c.config.filter_subject ?? c.config.filter_subjects)} on ${c.cluster?.leader}: delivered ${JSON.stringify(c.delivered)} pending ${c.num_pending} waiting ${c.num_waiting}`);
      throw e;
    });
    const resumeMs = Date.now() - killedAt;
    assert.equal(nats.nodes[leader.i]!.process, undefined, 'the node is still down');
    t.diagnostic(`time to resume after a NATS-node loss: ${resumeMs} ms (checkpoint ${resumed.checkpointId}: every split read on from checkpoint ${before.checkpointId})`);

    // The node comes back on its store.
    await nats.start(leader.i);
    await producer.done;
    t.diagnostic(`producer retries: ${producer.retries()}`);
    const stored = await storedCxEvents(nc, events.length);
    const expected = cxExpectation(stored);
    // How far the stream's order is from the events' own: the triggers an expectation in the
    // events' order would have got wrong (a lost or an extra trigger, in earlier runs of this test).
    const naive = cxExpectation(events).triggers;
    const reordered = [...expected.triggers].filter((k) => !naive.has(k)).length + [...naive].filter((k) => !expected.triggers.has(k)).length;
    t.diagnostic(`events stored after a later event of theirs: ${stored.filter((e, i) => i > 0 && e.ts < stored[i - 1]!.ts).length}; triggers that differ from the events' own order: ${reordered}`);
    await assertCxExactlyOnce(client, nc, expected, 120_000, store).catch(async (e: unknown) => {
      const info = await jsm.streams.info('CX_TRIGGERS');
      t.diagnostic(`CX_TRIGGERS: ${JSON.stringify(info.state)} cluster ${JSON.stringify(info.cluster)}; read ${(await readStream(nc, 'CX_TRIGGERS')).length}`);
      throw e;
    });
    // The restarted node caught up: its replica of the source stream holds every event.
    const restarted = nats.nodes[leader.i]!.name;
    await waitFor(async () => {
      const info = await jsm.streams.info('indicators');
      const replica = info.cluster?.leader === restarted ? { current: true, lag: 0 } : info.cluster?.replicas?.find((r) => r.name === restarted);
      return info.state.messages === events.length && replica?.current === true && !replica.lag;
    }, { timeoutMs: 60_000, what: `${restarted} to catch up on the source stream` });
  } finally {
    // EDDY_TEST_DUMP=<dir>: keep every process's output for a post-mortem (as startCluster does).
    const dump = process.env.EDDY_TEST_DUMP;
    if (dump) {
      await mkdir(dump, { recursive: true });
      for (const p of [coordinator, ...workers]) if (p) await writeFile(join(dump, `nats-ha-${p.name.replace(/\W+/g, '-')}.log`), p.output());
      await writeFile(join(dump, 'nats-ha-servers.log'), nats.output());
    }
    client?.close();
    await nc.close();
    await coordinator?.stop();
    await Promise.all(workers.map((w) => w.stop()));
    await nats.stop();
    await rm(root, { recursive: true, force: true });
  }
});
