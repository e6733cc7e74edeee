// FeatureService end to end: a coordinator and a worker process, the customer-experience job, and
// answers checked against an expectation computed here. Checkpoints come only when the test asks
// (a savepoint) so that what COMMITTED may show is known exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startCluster, waitFor, runCli, cxEvents, cxExpectation, submitCx, publishSteadily, CX_JOB, type Indicator } from '../kit/index.ts';
import { EddyClient, type FeatureValue } from '../../cli/client.ts';
import { codecs } from '../../core/control.ts';
import { decodeRpcStatus } from '../../core/proto.ts';
import { subjects } from '../../core/subjects.ts';
import { keyGroupForKey } from '../../core/key-groups.ts';

const ENTITIES = 40;
const ids = Array.from({ length: ENTITIES }, (_, i) => `e${i}`);

/** The indicators feature of every entity after the events, with the event time of its last update. */
function model(events: readonly Indicator[]) {
  const expected = cxExpectation(events);
  const lastTs = new Map<string, number>();
  for (const e of events) lastTs.set(e.entityId, e.ts);
  return { latest: expected.latest, received: expected.received, lastTs };
}

/** The indicators value current at time t: the events with ts <= t (ts is the event time). */
function asOf(events: readonly Indicator[], entityId: string, t: number) {
  const upTo = events.filter((e) => e.entityId === entityId && e.ts <= t);
  return upTo.length === 0 ? undefined : { value: model(upTo).latest.get(entityId), eventTime: upTo[upTo.length - 1]!.ts };
}

function matches(values: readonly FeatureValue[], m: ReturnType<typeof model>): boolean {
  return values.every((v) => (m.latest.has(v.entityId) ? v.found && isDeepStrictEqual(JSON.parse(v.valueJson), m.latest.get(v.entityId)) : !v.found));
}

function grpcError(e: unknown): grpc.ServiceError {
  const cause = (e as { cause?: unknown }).cause ?? e;
  assert.ok(typeof (cause as grpc.ServiceError).code === 'number', `a gRPC error, got ${String(e)}`);
  return cause as grpc.ServiceError;
}

test('feature service - Get/BatchGet views, event time, checkpoint, as-of at version boundaries, UNAVAILABLE with RetryInfo, short deadlines', { timeout: 150_000 }, async () => {
  // No periodic checkpoint during the test; a long worker timeout, and no probe of a silent worker
  // before it (the probe finds a killed one within seconds), keep the job RUNNING after the kill.
  await using cluster = await startCluster({ workers: 1, checkpointIntervalMs: 3_600_000, workerTimeoutMs: 120_000, coordinatorArgs: ['--worker-probe-ms', '120000'] });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-features-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: cluster.nats.url });
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 15_000, what: 'a live worker' });
    await submitCx(client, join(dir, 'cache'), 'test/fixtures/cx-history.ts');
    await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job running' });
    // The coordinator takes its first checkpoint at once; with the long interval it is the last
    // until the test asks. Wait for it so that no periodic checkpoint lands among the records.
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints!.latestId) >= 1, { timeoutMs: 30_000, what: 'the first checkpoint' });
    const initial = Number((await client.getJob(CX_JOB)).checkpoints!.latestId);
    const all = cxEvents(4_000, ENTITIES, 21);
    const [first, second] = [all.slice(0, 2_000), all.slice(2_000)];

    // 1. LATEST shows what was processed; COMMITTED shows nothing: no checkpoint has completed.
    await publishSteadily(nc, first, 1_000).done;
    const m1 = model(first);
    await waitFor(async () => matches(await client.batchGet(CX_JOB, 'indicators', ids, 'latest'), m1), { timeoutMs: 30_000, what: 'LATEST to show the first half' });
    const latest1 = await client.batchGet(CX_JOB, 'indicators', [...ids, 'nobody'], 'latest');
    for (const v of latest1.slice(0, ENTITIES)) {
      assert.equal(Number(v.eventTimeUnixMs), m1.lastTs.get(v.entityId), `event time of ${v.entityId}`);
      assert.equal(v.hasEventTime, true);
      assert.equal(v.uncommitted, true, 'LATEST says it includes changes after the last completed checkpoint');
      assert.equal(Number(v.checkpointId), initial);
    }
    assert.deepEqual([latest1[ENTITIES]!.entityId, latest1[ENTITIES]!.found, latest1[ENTITIES]!.valueJson], ['nobody', false, ''], 'no such entity');
    for (const v of await client.batchGet(CX_JOB, 'indicators', ids, 'committed')) {
      assert.equal(v.found, false, `COMMITTED shows nothing of an uncompleted checkpoint (${v.entityId})`);
      assert.equal(Number(v.checkpointId), initial);
    }
    const one = await client.get(CX_JOB, 'received', 'e3', 'latest');
    assert.equal(JSON.parse(one.valueJson), m1.received.get('e3'));

    // Short deadlines: a call is tried within its deadline and succeeds or fails with
    // DEADLINE_EXCEEDED; UNAVAILABLE is for moves and recoveries only (a Get takes ~2 ms).
    const codes = new Map<string, number>();
    for (const timeoutMs of [5, 10, 20, 40, 80]) {
      for (let i = 0; i < 8; i++) {
        const code = await client.get(CX_JOB, 'indicators', ids[i]!, 'latest', { timeoutMs }).then(
          () => 'OK',
          (e: unknown) => grpc.status[grpcError(e).code]!,
        );
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }
    assert.equal(codes.get('UNAVAILABLE'), undefined, `no UNAVAILABLE for a short deadline: ${JSON.stringify([...codes])}`);
    assert.ok((codes.get('OK') ?? 0) > 0, `short deadlines answered: ${JSON.stringify([...codes])}`);
    assert.deepEqual([...codes.keys()].filter((c) => c !== 'OK' && c !== 'DEADLINE_EXCEEDED'), [], JSON.stringify([...codes]));

    // 2. A checkpoint completes (a savepoint): COMMITTED now holds exactly the first half.
    const savepoint = await client.savepoint(CX_JOB, false);
    const checkpoint = Number(savepoint.checkpointId);
    assert.ok(checkpoint > 0);
    await waitFor(async () => (await client.batchGet(CX_JOB, 'indicators', ids, 'committed')).every((v) => Number(v.checkpointId) >= checkpoint), { timeoutMs: 15_000, what: 'the worker to commit the savepoint' });
    const committed1 = await client.batchGet(CX_JOB, 'indicators', ids, 'committed');
    assert.ok(matches(committed1, m1), 'COMMITTED equals the first half');
    for (const v of committed1) assert.equal(Number(v.eventTimeUnixMs), m1.lastTs.get(v.entityId));
    for (const v of await client.batchGet(CX_JOB, 'indicators', ids, 'latest')) assert.equal(v.uncommitted, false, `nothing newer than the checkpoint for ${v.entityId}`);

    // 3. More events: LATEST moves on, COMMITTED stays at the checkpoint.
    await publishSteadily(nc, second, 1_000).done;
    const m2 = model(all);
    await waitFor(async () => matches(await client.batchGet(CX_JOB, 'indicators', ids, 'latest'), m2), { timeoutMs: 30_000, what: 'LATEST to show everything' });
    const committed2 = await client.batchGet(CX_JOB, 'indicators', ids, 'committed');
    assert.ok(matches(committed2, m1), 'COMMITTED still equals the first half');
    for (const v of committed2) assert.equal(Number(v.checkpointId), checkpoint);

    // 4. As-of at version boundaries: just before, at and after each event time of one entity,
    //    and a sweep over all entities; both views where the checkpoint decides.
    const probe = 'e7';
    const times = all.filter((e) => e.entityId === probe).flatMap((e) => [e.ts - 1, e.ts, e.ts + 1]);
    for (const t of times) {
      const v = await client.get(CX_JOB, 'indicators', probe, 'latest', { asOfUnixMs: t });
      const expected = asOf(all, probe, t);
      assert.equal(v.found, expected !== undefined, `${probe} found as of ${t}`);
      if (expected) {
        assert.deepEqual(JSON.parse(v.valueJson), expected.value, `${probe} as of ${t}`);
        assert.equal(Number(v.eventTimeUnixMs), expected.eventTime, `version time of ${probe} as of ${t}`);
      }
    }
    for (const t of [0, 500, 1_999, 2_000, 2_500, 3_999]) {
      const values = await client.batchGet(CX_JOB, 'indicators', ids, 'latest', { asOfUnixMs: t });
      for (const v of values) assert.deepEqual(v.found ? JSON.parse(v.valueJson) : undefined, asOf(all, v.entityId, t)?.value, `${v.entityId} as of ${t}`);
      const committed = await client.batchGet(CX_JOB, 'indicators', ids, 'committed', { asOfUnixMs: t });
      for (const v of committed) assert.deepEqual(v.found ? JSON.parse(v.valueJson) : undefined, asOf(first, v.entityId, t)?.value, `${v.entityId} committed as of ${t}`);
    }
    // A feature without history refuses as-of rather than answer with the current value.
    await assert.rejects(client.get(CX_JOB, 'received', probe, 'latest', { asOfUnixMs: 10 }), (e) => grpcError(e).code === grpc.status.FAILED_PRECONDITION);

    // The CLI: --as-of with an epoch-ms time, JSON out.
    const cli = await runCli(['--addr', cluster.address, 'query', CX_JOB, 'indicators', probe, '--as-of', String(times[4]), '--json'], { timeoutMs: 30_000 });
    assert.equal(cli.code, 0, cli.stderr);
    const printed = JSON.parse(cli.stdout.trim()) as { value: unknown; eventTimeUnixMs: number };
    assert.deepEqual(printed.value, asOf(all, probe, times[4]!)?.value);

    // 5. A key group whose responder says UNAVAILABLE (moving): retried, then gRPC UNAVAILABLE
    //    with retry-after-ms, never data. Stop the only worker first so the fake is the only responder.
    const kg = keyGroupForKey(probe, 128);
    const worker = cluster.workers[0]!;
    // The fake speaks as the owner at the job's epoch: the router accepts no one else's reply.
    const ownerEpoch = Number((await client.getJob(CX_JOB)).epoch);
    worker.kill('SIGKILL');
    await worker.exited;
    let asked = 0;
    const fake = nc.subscribe(subjects.query(CX_JOB as never, kg), {
      callback: (_err, msg) => {
        asked++;
        msg.respond(codecs.queryReply.encode({ values: [], error: 'UNAVAILABLE:key group moving (test)', checkpointId: 0, workerId: 'worker-1', epoch: ownerEpoch }));
      },
    });
    // The fake's subscription is on the server before the Get: a request the server still routes
    // to the killed worker's subscription alone (its close not yet handled) goes unanswered until
    // the deadline, and the Get fails with DEADLINE_EXCEEDED (seen once under make test's load).
    await nc.flush();
    const started = performance.now();
    const unavailable = await client.get(CX_JOB, 'indicators', probe, 'latest', { timeoutMs: 1_000 }).then(
      () => assert.fail('an unavailable key group must not answer with data'),
      (e: unknown) => grpcError(e),
    );
    const elapsed = performance.now() - started;
    assert.equal(unavailable.code, grpc.status.UNAVAILABLE, unavailable.message);
    assert.match(unavailable.details, /moving \(test\)/);
    assert.ok(Number(unavailable.metadata.get('retry-after-ms')[0]) > 0, 'a retry hint');
    // The standard rich error: google.rpc.Status with RetryInfo and ErrorInfo.
    const statusDetails = decodeRpcStatus(unavailable.metadata.get('grpc-status-details-bin')[0] as Buffer);
    assert.equal(statusDetails.code, grpc.status.UNAVAILABLE);
    assert.ok(statusDetails.details.some((d) => d.type === 'RetryInfo' && d.retryDelayMs > 0), JSON.stringify(statusDetails));
    assert.ok(statusDetails.details.some((d) => d.type === 'ErrorInfo' && d.domain === 'eddy.dev'), JSON.stringify(statusDetails));
    assert.ok(asked >= 3, `the router retried within the deadline (${asked} asks)`);
    assert.ok(elapsed < 1_000 + 500, `the deadline is honoured (${Math.round(elapsed)} ms)`);
    fake.unsubscribe();

    // 5b. A responder that says "moving" once and then falls silent: the router was told why the key
    //     group is unavailable, so it says so while the caller still listens, not DEADLINE_EXCEEDED.
    let told = 0;
    const onceThenSilent = nc.subscribe(subjects.query(CX_JOB as never, kg), {
      callback: (_err, msg) => {
        if (told++ === 0) msg.respond(codecs.queryReply.encode({ values: [], error: 'UNAVAILABLE:key group moving (test, then silent)', checkpointId: 0, workerId: 'worker-1', epoch: ownerEpoch }));
      },
    });
    await nc.flush();
    const lapsed = await client.get(CX_JOB, 'indicators', probe, 'latest', { timeoutMs: 1_000 }).then(
      () => assert.fail('an unavailable key group must not answer with data'),
      (e: unknown) => grpcError(e),
    );
    assert.equal(lapsed.code, grpc.status.UNAVAILABLE, lapsed.message);
    assert.match(lapsed.details, /moving \(test, then silent\)/);
    assert.ok(told >= 2, `the router asked again after the first answer (${told} asks)`);
    onceThenSilent.unsubscribe();

    // 6. No responder at all: the same, within the deadline; and a responder that never answers.
    const start2 = performance.now();
    const none = await client.batchGet(CX_JOB, 'indicators', ids, 'committed', { timeoutMs: 800 }).then(
      () => assert.fail('no responder must not answer with data'),
      (e: unknown) => grpcError(e),
    );
    assert.equal(none.code, grpc.status.UNAVAILABLE);
    const noneMs = performance.now() - start2;
    assert.ok(noneMs < 800 + 500, `the deadline is honoured without a responder (${Math.round(noneMs)} ms)`);
    const silent = nc.subscribe(subjects.query(CX_JOB as never, kg), { callback: () => {} });
    const start3 = performance.now();
    const timedOut = await client.get(CX_JOB, 'indicators', probe, 'latest', { timeoutMs: 600 }).then(
      () => assert.fail('a silent responder must not produce data'),
      (e: unknown) => grpcError(e),
    );
    // Nobody says the key group is moving: the deadline simply passes.
    assert.equal(timedOut.code, grpc.status.DEADLINE_EXCEEDED, timedOut.message);
    const silentMs = performance.now() - start3;
    assert.ok(silentMs < 600 + 500, `the deadline is honoured with a silent responder (${Math.round(silentMs)} ms)`);
    silent.unsubscribe();
  } catch (e) {
    for (const p of [cluster.coordinator, ...cluster.workers]) console.error(`--- ${p.name}\n${p.output().split('\n').slice(-40).join('\n')}`);
    throw e;
  } finally {
    await nc?.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('feature service - WatchFeatures streams current values, then every change, and survives a recovery on a new worker', { timeout: 150_000 }, async () => {
  await using cluster = await startCluster({ workers: 1, checkpointIntervalMs: 500, workerTimeoutMs: 2_000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-watch-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  let nc: NatsConnection | undefined;
  let watch: ReturnType<EddyClient['watch']> | undefined;
  try {
    nc = await connect({ servers: cluster.nats.url });
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 15_000, what: 'a live worker' });
    await submitCx(client, join(dir, 'cache'), 'test/fixtures/cx-history.ts');
    await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job running' });
    const watched = ['e0', 'e1', 'e2', 'e3', 'e4'];
    const all = cxEvents(2_000, watched.length, 5);
    const [first, second] = [all.slice(0, 1_000), all.slice(1_000)];
    const changes: Array<{ entityId: string; initial: boolean; found: boolean; value: unknown; eventTime: number | undefined }> = [];
    watch = client.watch(CX_JOB, 'indicators', [...watched, 'nobody'], (c) => {
      const v = c.value!;
      changes.push({ entityId: v.entityId, initial: c.initial, found: v.found, value: v.found ? JSON.parse(v.valueJson) : undefined, eventTime: v.hasEventTime ? Number(v.eventTimeUnixMs) : undefined });
    });
    watch.done.catch(() => {});
    // Current values first: nothing yet, and "nobody" is a watched entity like any other.
    await waitFor(() => changes.length >= watched.length + 1, { timeoutMs: 15_000, what: 'the initial values' });
    assert.ok(changes.slice(0, watched.length + 1).every((c) => c.initial && !c.found), 'initial values: none of them exists yet');

    // Every change is the value after some prefix of that entity's events (its event time says
    // which), in order since the entity's latest current value (a registration with a new owner
    // after a recovery starts from the restored state), and the last one is the final value.
    const check = (events: readonly Indicator[]) => {
      const last = new Map<string, number>();
      for (const c of changes) {
        if (c.initial) last.delete(c.entityId);
        if (!c.found) continue;
        const expected = asOf(events, c.entityId, c.eventTime!);
        assert.deepEqual(c.value, expected?.value, `${c.entityId} as streamed at ${c.eventTime}`);
        if (!c.initial) assert.ok(c.eventTime! >= (last.get(c.entityId) ?? -1), `changes of ${c.entityId} arrive in order`);
        last.set(c.entityId, c.eventTime!);
      }
    };
    const finalSeen = (events: readonly Indicator[]) => {
      const m = model(events);
      return watched.every((id) => {
        const mine = changes.filter((c) => c.entityId === id);
        return isDeepStrictEqual(mine[mine.length - 1]?.value, m.latest.get(id));
      });
    };
    await publishSteadily(nc, first, 500).done;
    await waitFor(() => finalSeen(first), { timeoutMs: 30_000, what: 'the watch to show the first half' });
    check(first);
    const beforeRecovery = changes.length;
    assert.ok(changes.filter((c) => !c.initial).length >= watched.length, 'changes were streamed, not only initial values');

    // The only worker dies once a checkpoint holds some of the first half; a replacement takes the
    // job over at a new epoch from it. The watch registers with it (it sends the restored values)
    // and goes on: nothing after the recovery is missed. (CI once saw the kill land before any
    // checkpoint had completed: the replacement replayed everything from the start.)
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints?.latestId ?? 0) >= 1, { timeoutMs: 60_000, what: 'a completed checkpoint' });
    const restartsBefore = (await client.getJob(CX_JOB)).restarts;
    cluster.workers[0]!.kill('SIGKILL');
    await cluster.addWorker('replacement');
    await waitFor(async () => {
      const job = await client.getJob(CX_JOB);
      return job.state === 'RUNNING' && job.restarts > restartsBefore;
    }, { timeoutMs: 60_000, what: 'the job to recover on the replacement' });
    await publishSteadily(nc, second, 500).done;
    await waitFor(() => finalSeen(all), { timeoutMs: 60_000, what: 'the watch to show everything after the recovery' });
    assert.ok(changes.slice(beforeRecovery).some((c) => c.initial), 'the new owner sent current values on registration');
    check(all);

    // Ending the watch ends the owners' work: the stream is cancelled cleanly.
    watch.stop();
    await watch.done;
  } catch (e) {
    for (const p of [cluster.coordinator, ...cluster.workers]) console.error(`--- ${p.name}\n${p.output().split('\n').slice(-30).join('\n')}`);
    throw e;
  } finally {
    watch?.stop();
    await nc?.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('feature service - WatchFeatures on entities whose key groups moved to a joining worker: current values, then every change', { timeout: 150_000 }, async () => {
  await using cluster = await startCluster({ workers: 1, checkpointIntervalMs: 500 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-watch-move-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  let nc: NatsConnection | undefined;
  let watch: ReturnType<EddyClient['watch']> | undefined;
  try {
    nc = await connect({ servers: cluster.nats.url });
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 30_000, what: 'a live worker' });
    await submitCx(client, join(dir, 'cache'), 'test/fixtures/cx-history.ts');
    await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job running' });
    const all = cxEvents(2_000, ENTITIES, 7);
    const [first, second] = [all.slice(0, 1_000), all.slice(1_000)];
    await publishSteadily(nc, first, 500).done;
    await waitFor(async () => matches(await client.batchGet(CX_JOB, 'indicators', ids, 'latest'), model(first)), { timeoutMs: 30_000, what: 'the first half in the state' });

    // A second worker joins: key groups move to it (a move at a checkpoint, state loaded there).
    await cluster.addWorker('worker-2');
    const moved = await waitFor(async () => {
      const w = (await client.listWorkers()).find((x) => x.workerId === 'worker-2' && x.state === 'ALIVE');
      const kgs = new Set((w?.assignments.find((a) => a.jobId === CX_JOB)?.keyGroups ?? []).flatMap((r) => Array.from({ length: r.end - r.start + 1 }, (_, i) => r.start + i)));
      const job = await client.getJob(CX_JOB);
      return kgs.size > 0 && job.state === 'RUNNING' ? kgs : undefined;
    }, { timeoutMs: 60_000, what: 'key groups moved to worker-2' });
    const watched = ids.filter((id) => moved.has(keyGroupForKey(id, 128))).slice(0, 5);
    assert.ok(watched.length > 0, 'some entities live in the moved key groups');

    const changes: Array<{ entityId: string; initial: boolean; found: boolean; value: unknown }> = [];
    watch = client.watch(CX_JOB, 'indicators', watched, (c) => {
      const v = c.value!;
      changes.push({ entityId: v.entityId, initial: c.initial, found: v.found, value: v.found ? JSON.parse(v.valueJson) : undefined });
    });
    watch.done.catch(() => {});
    // The new owner answers the registration with the current values (loaded in the move).
    const firstModel = model(first);
    await waitFor(() => watched.every((id) => changes.some((c) => c.entityId === id && c.initial)), { timeoutMs: 30_000, what: 'the initial values from the new owner' });
    for (const id of watched) {
      const initial = changes.filter((c) => c.entityId === id && c.initial).at(-1)!;
      assert.deepEqual(initial.value, firstModel.latest.get(id), `${id}'s current value after the move`);
    }
    // Then every change it makes.
    await publishSteadily(nc, second, 500).done;
    const allModel = model(all);
    await waitFor(() => watched.every((id) => isDeepStrictEqual(changes.filter((c) => c.entityId === id).at(-1)?.value, allModel.latest.get(id))), { timeoutMs: 60_000, what: 'the watch to show the final values' });
    watch.stop();
    await watch.done;
  } catch (e) {
    for (const p of [cluster.coordinator, ...cluster.workers]) console.error(`--- ${p.name}\n${p.output().split('\n').slice(-30).join('\n')}`);
    throw e;
  } finally {
    watch?.stop();
    await nc?.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
