// Feature reads through a standby coordinator (docs/ARCHITECTURE.md, "Standby coordinators" and
// "Queries"): with the leader alive, a standby answers Get, BatchGet and eddy.v2 GetFeatures
// itself, routing to the owning workers with the job directory the leader publishes, and sends
// nobody to the leader. While key groups move to a worker that joins, its reads are right or
// fail with a retryable status, never wrong. Its dashboard shows the cluster's jobs and names the
// leader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, CX_JOB, type Cluster, type CoordinatorHandle } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { FeatureClient } from '../../sdk/feature-client.ts';
import type { CheckpointsView, ClusterView, EntityLookup, JobDetail, JobSummary, KeyGroupsView } from '../../coordinator/dashboard/api.ts';

const grpcStatus = status as unknown as Record<number, string>;
const ENTITIES = 40;
const ids = Array.from({ length: ENTITIES }, (_, i) => `e${i}`);

const roleOf = async (c: CoordinatorHandle) => ((await (await fetch(`${c.httpUrl}/api/cluster`)).json()) as ClusterView).role;

/**
 * The coordinator standing by now, by its own word: the second one started, unless a loaded
 * machine let a lease lapse and the roles changed hands (the other then stands by).
 */
async function standingBy(cluster: Cluster): Promise<CoordinatorHandle> {
  return waitFor(
    async () => {
      for (const c of [cluster.standbys[0]!, cluster.coordinator]) if ((await roleOf(c)) === 'STANDBY') return c;
      return undefined;
    },
    { timeoutMs: 20_000, what: 'a coordinator standing by' },
  );
}

test('standby - a standby coordinator answers feature reads itself with the leader alive, right during a move', { timeout: 180_000 }, async (t) => {
  await using cluster = await startCluster({ workers: 1, standbyCoordinators: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-standby-reads-'));
  using leaderClient = new EddyClient({ address: cluster.addresses, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await leaderClient.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 15_000, what: 'a live worker' });
    await submitCx(leaderClient, join(dir, 'cache'));
    const events = cxEvents(4_000, ENTITIES, 11);
    const expected = cxExpectation(events);
    await publishSteadily(nc, events, 1_000).done;
    // Every event processed and checkpointed, as the leader answers.
    await waitFor(
      async () => {
        const values = await leaderClient.batchGet(CX_JOB, 'received', ids, 'committed');
        return values.every((v) => (v.found ? JSON.parse(v.valueJson) : 0) === (expected.received.get(v.entityId) ?? 0));
      },
      { timeoutMs: 60_000, what: 'every event committed, read through the leader' },
    );

    // Get, BatchGet and GetFeatures through the standby, answered by it.
    const standby = await standingBy(cluster);
    const other = standby === cluster.coordinator ? cluster.standbys[0]! : cluster.coordinator;
    using onStandby = new EddyClient({ address: standby.address, timeoutMs: 5_000 });
    using v2 = new FeatureClient({ address: standby.address, timeoutMs: 5_000 });
    for (const id of ids.slice(0, 5)) {
      const v = await onStandby.get(CX_JOB, 'indicators', id, 'latest');
      assert.ok(v.found, `${id} is found through the standby`);
      assert.deepEqual(JSON.parse(v.valueJson), expected.latest.get(id), `the indicators of ${id}, read through the standby`);
    }
    const batch = await onStandby.batchGet(CX_JOB, 'received', ids, 'committed');
    assert.deepEqual(
      batch.map((v) => (v.found ? JSON.parse(v.valueJson) : 0)),
      ids.map((id) => expected.received.get(id) ?? 0),
      'BatchGet through the standby: every committed count',
    );
    const rows = await v2.getFeatures(CX_JOB, ['indicators', 'received'], ids.slice(0, 10));
    for (const row of rows) {
      assert.deepEqual(row.indicators, expected.latest.get(row.entityId) ?? null, `GetFeatures indicators of ${row.entityId}`);
      assert.equal(row.received, expected.received.get(row.entityId) ?? null, `GetFeatures received of ${row.entityId}`);
    }
    assert.equal(onStandby.failovers, 0, 'no call was sent on to the leader');
    assert.equal(onStandby.address, standby.address, 'the client still talks to the standby');
    assert.equal(await roleOf(standby), 'STANDBY', 'the coordinator that answered still stands by');

    // A worker joins: key groups move while the standby keeps reading. Every answer is right;
    // a read that meets a key group in flight fails UNAVAILABLE (or runs out of time), nothing else.
    await cluster.addWorker();
    const wrong: string[] = [];
    const failed = new Map<string, number>();
    let right = 0;
    let rightWhenMoved: number | undefined;
    let sawMoving = false;
    await waitFor(
      async () => {
        try {
          const values = await onStandby.batchGet(CX_JOB, 'received', ids, 'committed', { timeoutMs: 2_000 });
          for (const v of values) {
            const want = expected.received.get(v.entityId) ?? 0;
            if ((v.found ? JSON.parse(v.valueJson) : 0) !== want) wrong.push(`${v.entityId}: ${v.valueJson} (want ${want})`);
          }
          right++;
        } catch (e) {
          const code = (e as { cause?: { code?: number }; code?: number }).cause?.code ?? (e as { code?: number }).code;
          const name = code === undefined ? `no status: ${(e as Error).message}` : (grpcStatus[code] ?? String(code));
          failed.set(name, (failed.get(name) ?? 0) + 1);
          if (name !== 'UNAVAILABLE' && name !== 'DEADLINE_EXCEEDED') wrong.push(`a read failed with ${name}: ${(e as Error).message}`);
        }
        const view = (await (await fetch(`${standby.httpUrl}/api/jobs/${CX_JOB}/key-groups`)).json()) as KeyGroupsView;
        if (view.moving.length > 0) sawMoving = true;
        if (rightWhenMoved === undefined && view.owners.filter((o) => o === 'worker-2').length === 64 && view.moving.length === 0) rightWhenMoved = right;
        return rightWhenMoved !== undefined && right >= rightWhenMoved + 3;
      },
      { timeoutMs: 90_000, what: 'half of the key groups on worker-2 in the standby\'s directory, and reads answered after it', intervalMs: 50 },
    );
    t.diagnostic(`reads through the standby during the move: ${right} right, failed ${JSON.stringify(Object.fromEntries(failed))}; the standby's map showed the move under way: ${sawMoving}`);
    assert.deepEqual(wrong, [], 'no read through the standby was wrong or failed with a status that is not retryable');
    assert.equal(onStandby.failovers, 0, 'still no call sent on to the leader');

    // The standby's dashboard: the cluster's jobs, and who leads.
    const cv = (await (await fetch(`${standby.httpUrl}/api/cluster`)).json()) as ClusterView;
    assert.equal(cv.role, 'STANDBY');
    assert.equal(cv.leader?.address, other.address);
    assert.equal(cv.leader?.dashboardUrl, `${other.httpUrl}/`);
    const jobs = (await (await fetch(`${standby.httpUrl}/api/jobs`)).json()) as JobSummary[];
    assert.deepEqual(jobs.map((j) => [j.id, j.state]), [[CX_JOB, 'RUNNING']], "the standby's dashboard lists the cluster's job");
    assert.deepEqual(jobs[0]!.features.map((f) => f.name).sort(), ['indicators', 'received'], 'with its features');
    assert.equal(jobs[0]!.counted, false, 'records and rates are left to the leader');
    const detail = (await (await fetch(`${standby.httpUrl}/api/jobs/${CX_JOB}`)).json()) as JobDetail;
    assert.deepEqual(detail.graph.nodes.filter((n) => n.kind === 'stage').map((n) => n.id).sort(), (await leaderClient.getJob(CX_JOB)).stages.map((s) => s.stageId).sort(), 'the graph, from the manifest');
    const checkpoints = (await (await fetch(`${standby.httpUrl}/api/jobs/${CX_JOB}/checkpoints`)).json()) as CheckpointsView;
    assert.equal(checkpoints.kept, false, 'the checkpoint history is left to the leader');
    const lookup = (await (await fetch(`${standby.httpUrl}/api/jobs/${CX_JOB}/features?entity=e3`)).json()) as EntityLookup;
    assert.equal(JSON.parse(lookup.features.find((f) => f.feature === 'received')!.committed.valueJson), expected.received.get('e3'), 'a lookup on the standby');
  } finally {
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  }
});
