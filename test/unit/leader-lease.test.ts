// The leader lease among coordinators (coordinator/leader-lease.ts) and the fenced job store
// (coordinator/job-store.ts), against a real nats-server: one of two leads; when it stops renewing,
// the other takes over after the lease in a higher term; a released lease is taken at once; and
// once a new leader has claimed the jobs, the old one's writes fail; a lone leader whose renewals
// were held up past its lease holds nothing meanwhile and leads on in the same term once one gets
// through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { silentLogger } from '../../core/logger.ts';
import { FencedError } from '../../core/errors.ts';
import { LAPSE_GRACE_LEASES, LeaderLease } from '../../coordinator/leader-lease.ts';
import { JobStore, type StoredJob } from '../../coordinator/job-store.ts';
import { startNatsServer, waitFor } from '../kit/index.ts';

const LEASE_MS = 600;

function job(jobId: string, epoch: number): StoredJob {
  return {
    jobId,
    manifestJson: '{}',
    bundleSha256: 'ab'.repeat(32),
    bundleKey: `jobs/${jobId}/bundles/${'ab'.repeat(32)}.js`,
    state: 'RUNNING',
    submittedAtUnixMs: 1,
    epoch,
    latestCheckpoint: null,
    retainedCheckpoints: [],
    savepoints: [],
    lastCheckpointId: 0,
    restarts: 0,
    lastFailure: null,
    publishedCheckpointId: 0,
  };
}

function lease(store: JobStore, id: string, events: string[]): LeaderLease {
  return new LeaderLease({
    kv: store.kv,
    coordinatorId: id,
    address: `${id}:7400`,
    leaseMs: LEASE_MS,
    logger: silentLogger,
    onElected: async (term) => void events.push(`${id} elected ${term}`),
    onDeposed: (reason) => void events.push(`${id} deposed: ${reason}`),
  });
}

test('leader lease - one of two leads; a silent leader is replaced after its lease, in a higher term; a released lease is taken at once', async () => {
  await using nats = await startNatsServer();
  const [nc1, nc2] = [await connect({ servers: nats.url }), await connect({ servers: nats.url })];
  const events: string[] = [];
  const a = lease(await JobStore.open({ nc: nc1, logger: silentLogger }), 'a', events);
  const b = lease(await JobStore.open({ nc: nc2, logger: silentLogger }), 'b', events);
  try {
    await a.start();
    await b.start();
    assert.equal(a.role, 'LEADER');
    assert.equal(b.role, 'STANDBY');
    assert.equal(a.term, 1);
    assert.ok(a.holds());
    assert.equal(b.leader()?.address, 'a:7400', 'the standby knows where the leader is');

    // a stops renewing (its connection is gone, as if killed): b leads after the lease, not before.
    const silentAt = performance.now();
    await nc1.close();
    await waitFor(() => b.role === 'LEADER', { timeoutMs: 10 * LEASE_MS, what: 'b to take over', intervalMs: 10 });
    const tookMs = performance.now() - silentAt;
    assert.ok(tookMs >= LEASE_MS / 2, `b took over after ${Math.round(tookMs)} ms, before a's lease could have run out`);
    assert.equal(b.term, 2, 'the takeover raised the leader epoch');
    assert.ok(events.includes('b elected 2'));
    // a's lease is over on its own clock too: it no longer holds at once, and stands by once its
    // late renewals have failed for LAPSE_GRACE_LEASES more leases.
    assert.ok(!a.holds(), 'a holds nothing once its lease is over');
    await waitFor(() => a.role === 'STANDBY', { timeoutMs: (LAPSE_GRACE_LEASES + 6) * LEASE_MS, what: 'a to stand by' });
    assert.ok(!a.holds());
    await a.close();

    // A clean stop releases the lease: a third coordinator takes it at once, in term 3.
    const nc3 = await connect({ servers: nats.url });
    try {
      const c = lease(await JobStore.open({ nc: nc3, logger: silentLogger }), 'c', events);
      await c.start();
      assert.equal(c.role, 'STANDBY');
      const releasedAt = performance.now();
      await b.close();
      await waitFor(() => c.role === 'LEADER', { timeoutMs: 10 * LEASE_MS, what: 'c to take over the released lease', intervalMs: 10 });
      assert.ok(performance.now() - releasedAt < LEASE_MS + 500, 'a released lease is taken without waiting it out');
      assert.equal(c.term, 3);
      await c.close();
    } finally {
      await nc3.close();
    }
  } finally {
    await a.close();
    await b.close();
    await nc2.close();
  }
});

test('leader lease - a lone leader whose renewals are held up past its lease holds nothing meanwhile, then leads on in the same term without being deposed', async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const events: string[] = [];
  const a = lease(await JobStore.open({ nc, logger: silentLogger }), 'a', events);
  try {
    await a.start();
    assert.equal(a.role, 'LEADER');
    // nats-server paused for two leases past the lease's end: the renewal in flight is answered
    // only after the lease it would have extended is over (a renewal that succeeds late, as on a
    // loaded machine). Before the grace, a was deposed right then, and its jobs let go.
    nats.kill('SIGSTOP');
    try {
      await waitFor(() => !a.holds(0), { timeoutMs: 10 * LEASE_MS, what: "a's lease to run out", intervalMs: 10 });
      const expiredAt = performance.now();
      assert.equal(a.holds(), false, 'a lapsed leader holds nothing: no command, no commit');
      // The fault's length, not a hope for an outcome.
      await waitFor(() => performance.now() - expiredAt >= 2 * LEASE_MS, { timeoutMs: 10 * LEASE_MS, what: 'two leases of silence', intervalMs: 10 });
      assert.equal(a.holds(), false);
    } finally {
      nats.kill('SIGCONT');
    }
    // The late renewal gets through: nobody took the key over, so a leads on in term 1.
    await waitFor(() => a.holds(), { timeoutMs: 10 * LEASE_MS, what: 'a late renewal to get through' });
    assert.equal(a.role, 'LEADER');
    assert.equal(a.term, 1, 'the same term: no takeover happened');
    assert.deepEqual(events, ['a elected 1'], 'never deposed, never elected again (its jobs were not let go)');
  } finally {
    await a.close();
    await nc.close();
  }
});

test('job store - once a new leader has claimed the jobs, a write of the deposed leader fails with FencedError', async () => {
  await using nats = await startNatsServer();
  const [nc1, nc2] = [await connect({ servers: nats.url }), await connect({ servers: nats.url })];
  try {
    const old = await JobStore.open({ nc: nc1, logger: silentLogger });
    await old.put(job('clicks', 1));
    await old.put(job('clicks', 2));
    const successor = await JobStore.open({ nc: nc2, logger: silentLogger });
    assert.deepEqual((await successor.claim()).map((j) => j.epoch), [2], 'the claim reads the jobs');
    await assert.rejects(old.put(job('clicks', 3)), (e: unknown) => e instanceof FencedError, 'the deposed leader is fenced off');
    assert.equal((await successor.get('clicks'))?.epoch, 2, 'what the new leader claimed stands');
    await successor.put(job('clicks', 4));
    assert.equal((await successor.get('clicks'))?.epoch, 4, 'the new leader writes on');
  } finally {
    await nc1.close();
    await nc2.close();
  }
});
