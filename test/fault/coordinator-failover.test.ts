// Standby coordinators (docs/ARCHITECTURE.md, "Standby coordinators"): the leader holds a lease
// in NATS KV; a standby takes over when it runs out and resumes every job from its latest
// checkpoint. Killed with SIGKILL under load, the leader is replaced within seconds and the job
// stays exactly once; paused with SIGSTOP past its lease and resumed, the old leader commits
// nothing more and stands by, and the results are still exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, CX_JOB, clusterStore, type CoordinatorHandle } from '../kit/index.ts';
import { status } from '@grpc/grpc-js';
import { EddyClient } from '../../cli/client.ts';

const grpcStatus = status as unknown as Record<number, string>;

/**
 * Reads the committed `received` count of a few entities in a loop through a client given every
 * coordinator's address, until stopped: each read succeeds or fails with a retryable status within
 * its deadline. Committed state only moves forward (a takeover restores the latest completed
 * checkpoint), so a value below one read before, or above the final count, would be wrong.
 */
function queryLoop(addresses: string, expected: Map<string, number>): { answered(): number; stop(): Promise<{ ok: number; failed: Map<string, number>; wrong: string[]; failovers: number }> } {
  const client = new EddyClient({ address: addresses, timeoutMs: 2_000 });
  const ids = [...expected.keys()].slice(0, 50);
  const seen = new Map<string, number>();
  const failed = new Map<string, number>();
  const wrong: string[] = [];
  let ok = 0;
  let stopped = false;
  const run = (async () => {
    for (let i = 0; !stopped; i++) {
      const id = ids[i % ids.length]!;
      const started = Date.now();
      try {
        const v = await client.get(CX_JOB, 'received', id, 'committed');
        ok++;
        const count = v.found ? (JSON.parse(v.valueJson) as number) : 0;
        if (count < (seen.get(id) ?? 0) || count > expected.get(id)!) wrong.push(`${id}: ${count} after ${seen.get(id) ?? 0}, final ${expected.get(id)}`);
        seen.set(id, count);
      } catch (e) {
        const code = (e as { cause?: { code?: number } }).cause?.code;
        const name = code === undefined ? 'no status' : (grpcStatus[code] ?? String(code));
        failed.set(name, (failed.get(name) ?? 0) + 1);
        if (Date.now() - started > 2_000 + 500) wrong.push(`a read of ${id} took ${Date.now() - started} ms`);
        if (name !== 'UNAVAILABLE' && name !== 'DEADLINE_EXCEEDED') wrong.push(`a read of ${id} failed with ${name}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    answered: () => ok,
    stop: async () => {
      stopped = true;
      await run;
      client.close();
      return { ok, failed, wrong, failovers: client.failovers };
    },
  };
}

/** Checkpoints the coordinator logged as completed so far. */
function completions(c: CoordinatorHandle): number {
  return c.output().split('\n').filter((l) => l.includes('"msg":"checkpoint completed"')).length;
}

test('coordinator - a standby takes over from a leader killed with SIGKILL under load, and the job stays exactly once', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster({ workers: 2, standbyCoordinators: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-failover-'));
  const leader = new EddyClient({ address: cluster.coordinator.address, timeoutMs: 10_000 });
  const standby = new EddyClient({ address: cluster.standbys[0]!.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(30_000, 1_000, 21);
  let producer: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await leader.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    // A standby refuses job calls naming the leader, and the client follows.
    const onStandby = new EddyClient({ address: cluster.standbys[0]!.address, timeoutMs: 10_000 });
    await onStandby.listJobs();
    assert.equal(onStandby.address, cluster.coordinator.address, 'a call to a standby is redirected to the leader');
    onStandby.close();
    await submitCx(leader, join(dir, 'cache'));
    producer = publishSteadily(nc, events, 1_000);
    await waitFor(async () => Number((await leader.getJob(CX_JOB)).checkpoints!.latestId) >= 2, { timeoutMs: 60_000, what: 'two completed checkpoints' });
    const before = await leader.getJob(CX_JOB);
    const expected = cxExpectation(events);
    const queries = queryLoop(cluster.addresses, expected.received);

    const killedAt = Date.now();
    cluster.coordinator.kill('SIGKILL');
    // Taken over: the same job, a new epoch, checkpointing again under the standby.
    await waitFor(async () => {
      const j = await standby.getJob(CX_JOB);
      return j.state === 'RUNNING' && Number(j.epoch) > Number(before.epoch) && completions(cluster.standbys[0]!) > 0;
    }, { timeoutMs: 30_000, what: 'the standby to take the job over and complete a checkpoint', intervalMs: 10 });
    const takeoverMs = Date.now() - killedAt;
    t.diagnostic(`takeover: ${takeoverMs} ms from SIGKILL to a checkpoint completed by the standby`);
    assert.match(cluster.standbys[0]!.output(), /"msg":"coordinator leading"/);
    // 3 s is the goal on an idle machine (docs/BENCHMARKS.md); this bound only catches a takeover
    // that waits for something it should not (a loaded 2-core machine runs this beside others).
    assert.ok(takeoverMs < 15_000, `takeover took ${takeoverMs} ms`);
    // Reads go on under the new leader for a while, then their tally.
    const answered = queries.answered();
    await waitFor(() => queries.answered() >= answered + 20, { timeoutMs: 20_000, what: 'reads answered by the new leader' });
    const q = await queries.stop();
    t.diagnostic(`queries during the takeover: ${q.ok} answered, failed ${JSON.stringify(Object.fromEntries(q.failed))}, ${q.failovers} failovers`);
    assert.deepEqual(q.wrong, [], 'no read answered wrong or past its deadline, or failed with a status that is not retryable');
    assert.ok(q.ok > 0, 'reads were answered');

    await producer.done;
    await assertCxExactlyOnce(standby, nc, expected, 120_000, clusterStore(cluster));
  } finally {
    producer?.stop();
    leader.close();
    standby.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('coordinator - a leader paused with SIGSTOP past its lease commits nothing more once resumed and stands by; results stay exact', { timeout: 180_000 }, async () => {
  // A longer lease than the default: on a machine loaded enough to starve a process for 1.5 s the
  // leader would otherwise change before the pause this test is about. Short client deadlines: a
  // call sent to the paused leader (a standby names it until it takes over) holds until then.
  // Checkpoints under each leader are what is counted, idle or not: a checkpoint every interval.
  const cluster = await startCluster({ workers: 2, standbyCoordinators: 1, leaderLeaseMs: 3_000, skipIdleCheckpoints: false });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-fencing-'));
  const old = cluster.coordinator;
  const successor = cluster.standbys[0]!;
  const leader = new EddyClient({ address: old.address, timeoutMs: 10_000 });
  const standby = new EddyClient({ address: successor.address, timeoutMs: 3_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(30_000, 1_000, 23);
  let producer: ReturnType<typeof publishSteadily> | undefined;
  let paused = false;
  try {
    await waitFor(async () => (await leader.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    await submitCx(leader, join(dir, 'cache'));
    producer = publishSteadily(nc, events, 1_000);
    await waitFor(async () => Number((await leader.getJob(CX_JOB)).checkpoints!.latestId) >= 2, { timeoutMs: 60_000, what: 'two completed checkpoints' });
    const before = await leader.getJob(CX_JOB);

    old.kill('SIGSTOP');
    paused = true;
    await waitFor(async () => {
      const j = await standby.getJob(CX_JOB);
      return j.state === 'RUNNING' && Number(j.epoch) > Number(before.epoch) && completions(successor) >= 2;
    }, { timeoutMs: 60_000, what: 'the standby to take over and complete two checkpoints' });
    // Everything the old leader wrote before the pause has been read by now.
    const completedByOld = completions(old);
    old.kill('SIGCONT');
    paused = false;
    await old.waitForLine(/"msg":"coordinator standing by"/, 20_000);
    // The old leader woke up with its checkpoint timers due: none of them may commit.
    const after = completions(successor);
    await waitFor(() => completions(successor) >= after + 2, { timeoutMs: 20_000, what: 'two more checkpoints under the new leader' });
    assert.equal(completions(old), completedByOld, 'the deposed leader completed no checkpoint after it woke up');
    assert.equal(old.exitStatus(), undefined, 'the deposed leader stands by, still running');
    // The deposed leader refuses job calls, naming its successor; the client follows.
    await leader.getJob(CX_JOB);
    assert.equal(leader.address, successor.address, 'a call to the deposed leader is redirected to its successor');

    await producer.done;
    await assertCxExactlyOnce(standby, nc, cxExpectation(events), 120_000, clusterStore(cluster));
  } finally {
    if (paused) old.kill('SIGCONT');
    producer?.stop();
    leader.close();
    standby.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('coordinator - a job whose create reaches the job store after a standby took over (the leader paused between its lease check and the create) is taken over and runs exactly once', { timeout: 180_000 }, async (t) => {
  // EDDY_TEST_HOLD_JOB_CREATE_MS holds a submitted job's create after its lease check (fault
  // injection, coordinator/job-persistence.ts): the test pauses the leader with SIGSTOP there, so
  // the create lands once a standby has claimed the jobs, the worst moment for a takeover.
  const cluster = await startCluster({ workers: 2, standbyCoordinators: 1, leaderLeaseMs: 3_000, env: { EDDY_TEST_HOLD_JOB_CREATE_MS: '6000' } });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-late-create-'));
  const old = cluster.coordinator;
  const successor = cluster.standbys[0]!;
  const leader = new EddyClient({ address: old.address, timeoutMs: 10_000 });
  const standby = new EddyClient({ address: successor.address, timeoutMs: 3_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(6_000, 500, 27);
  let producer: ReturnType<typeof publishSteadily> | undefined;
  let paused = false;
  try {
    await waitFor(async () => (await leader.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const submitted = submitCx(leader, join(dir, 'cache')).then(() => 'accepted', (e: Error) => `refused: ${e.message}`);
    await old.waitForLine(/"msg":"job create held after its lease check/, 60_000);
    old.kill('SIGSTOP');
    paused = true;
    await successor.waitForLine(/"msg":"coordinator leading"/, 30_000);
    old.kill('SIGCONT');
    paused = false;
    // The create lands now, after the takeover's claim: the new leader must see it and run it.
    await waitFor(async () => {
      const j = await standby.getJob(CX_JOB);
      return j.state === 'RUNNING' && completions(successor) >= 1;
    }, { timeoutMs: 60_000, what: 'the new leader to run the job the deposed leader created after the takeover' });
    assert.match(successor.output(), /"msg":"job created by another coordinator after this one took over; taking it over"/);
    await old.waitForLine(/"msg":"coordinator standing by"/, 20_000);
    t.diagnostic(`the submit to the deposed leader: ${await submitted}`);

    producer = publishSteadily(nc, events, 1_000);
    await producer.done;
    // Not asserted: that the deposed leader completes no checkpoint. On a loaded machine the lead
    // may legitimately come back to it later (a run at load 50 saw it); the SIGSTOP test is the
    // one about fencing commits.
    await assertCxExactlyOnce(standby, nc, cxExpectation(events), 120_000, clusterStore(cluster));
  } finally {
    if (paused) old.kill('SIGCONT');
    producer?.stop();
    leader.close();
    standby.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
