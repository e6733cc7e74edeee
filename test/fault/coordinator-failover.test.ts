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
import { EddyClient } from '../../cli/client.ts';

/** Checkpoints the coordinator logged as completed so far. */
function completions(c: CoordinatorHandle): number {
  return c.output().split('\n').filter((l) => l.includes('"msg":"checkpoint completed"')).length;
}

test('coordinator - a standby takes over from a leader killed with SIGKILL under load, and the job stays exactly once', { timeout: 180_000 }, async () => {
  const cluster = await startCluster({ workers: 2, standbyCoordinators: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-failover-'));
  const leader = new EddyClient({ address: cluster.coordinator.address, timeoutMs: 10_000 });
  const standby = new EddyClient({ address: cluster.standbys[0]!.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(30_000, 1_000, 21);
  let producer: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await leader.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    await assert.rejects(standby.listJobs(), /stands by; the leader is at/, 'a standby refuses job calls, naming the leader');
    await submitCx(leader, join(dir, 'cache'));
    producer = publishSteadily(nc, events, 1_000);
    await waitFor(async () => Number((await leader.getJob(CX_JOB)).checkpoints!.latestId) >= 2, { timeoutMs: 30_000, what: 'two completed checkpoints' });
    const before = await leader.getJob(CX_JOB);

    const killedAt = Date.now();
    cluster.coordinator.kill('SIGKILL');
    // Taken over: the same job, a new epoch, checkpointing again under the standby.
    await waitFor(async () => {
      const j = await standby.getJob(CX_JOB);
      return j.state === 'RUNNING' && Number(j.epoch) > Number(before.epoch) && completions(cluster.standbys[0]!) > 0;
    }, { timeoutMs: 30_000, what: 'the standby to take the job over and complete a checkpoint', intervalMs: 10 });
    const takeoverMs = Date.now() - killedAt;
    test.diagnostic(`takeover: ${takeoverMs} ms from SIGKILL to a checkpoint completed by the standby`);
    assert.match(cluster.standbys[0]!.output(), /"msg":"coordinator leading"/);
    // 3 s is the goal on an idle machine (docs/BENCHMARKS.md); this bound only catches a takeover
    // that waits for something it should not (a loaded 2-core machine runs this beside others).
    assert.ok(takeoverMs < 15_000, `takeover took ${takeoverMs} ms`);

    await producer.done;
    await assertCxExactlyOnce(standby, nc, cxExpectation(events), 120_000, clusterStore(cluster));
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
  const cluster = await startCluster({ workers: 2, standbyCoordinators: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-fencing-'));
  const old = cluster.coordinator;
  const successor = cluster.standbys[0]!;
  const leader = new EddyClient({ address: old.address, timeoutMs: 10_000 });
  const standby = new EddyClient({ address: successor.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(30_000, 1_000, 23);
  let producer: ReturnType<typeof publishSteadily> | undefined;
  let paused = false;
  try {
    await waitFor(async () => (await leader.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    await submitCx(leader, join(dir, 'cache'));
    producer = publishSteadily(nc, events, 1_000);
    await waitFor(async () => Number((await leader.getJob(CX_JOB)).checkpoints!.latestId) >= 2, { timeoutMs: 30_000, what: 'two completed checkpoints' });
    const before = await leader.getJob(CX_JOB);

    old.kill('SIGSTOP');
    paused = true;
    await waitFor(async () => {
      const j = await standby.getJob(CX_JOB);
      return j.state === 'RUNNING' && Number(j.epoch) > Number(before.epoch) && completions(successor) >= 2;
    }, { timeoutMs: 30_000, what: 'the standby to take over and complete two checkpoints' });
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
    await assert.rejects(leader.getJob(CX_JOB), /stands by/, 'the deposed leader refuses job calls');

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
