// Savepoints: take one, stop the job, submit a changed bundle from it, and the state carries
// over; a bundle whose keyed stage lost its id is refused unless its state may be dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, runCli, cxEvents, cxExpectation, publishSteadily, assertCxExactlyOnce, CX_JOB, REPO_ROOT } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';

test('savepoint - savepoint, stop, submit a changed bundle from it: state carries over, exactly once', { timeout: 180_000 }, async () => {
  await using cluster = await startCluster({ workers: 2 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-savepoint-'));
  using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const events = cxEvents(40_000, 500, 13);
  const [first, second] = [events.slice(0, 20_000), events.slice(20_000)];
  const cli = (...args: string[]) => runCli(['--addr', cluster.address, ...args], { timeoutMs: 90_000 });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const v1 = await buildBundle(join(REPO_ROOT, 'jobs/customer-experience/job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(v1.manifest), bundleSha256: v1.sha256, code: v1.code, timeoutMs: 30_000 });
    await publishSteadily(nc, first, 5_000).done;
    await waitFor(async () => Number((await client.getJob(CX_JOB)).stages[1]!.recordsIn) >= first.length, { timeoutMs: 60_000, what: 'the first half processed' });

    const stopped = await cli('stop', CX_JOB, '--savepoint');
    assert.equal(stopped.code, 0, stopped.stderr);
    const path = stopped.stdout.trim();
    assert.match(path, /^jobs\/customer-experience\/savepoints\/\d+\/_metadata$/);
    assert.equal((await client.getJob(CX_JOB)).state, 'CANCELLED');

    // A bundle whose keyed stage has another id: its state would be lost, so it is refused…
    const renamed = await cli('submit', join(REPO_ROOT, 'test/fixtures/cx-renamed.ts'), '--from-savepoint', path);
    assert.equal(renamed.code, 1);
    assert.match(renamed.stderr, /indicator-state.*allow-non-restored-state/);
    assert.equal(renamed.stderr.trim().split('\n').length, 1, 'one line, no stack');

    // …while version 2, whose stage keeps its id, starts from the savepoint.
    const v2 = await cli('submit', join(REPO_ROOT, 'test/fixtures/cx-v2.ts'), '--from-savepoint', path);
    assert.equal(v2.code, 0, v2.stderr);
    const job = await client.getJob(CX_JOB);
    assert.equal(job.state, 'RUNNING');
    assert.notEqual(job.bundleSha256, v1.sha256, 'a changed bundle');
    await publishSteadily(nc, second, 5_000).done;
    // Counts over both halves: the first half's state came through the savepoint, and the
    // source resumed where the savepoint left it (nothing read twice).
    await assertCxExactlyOnce(client, nc, cxExpectation(events));

    // With --allow-non-restored-state the renamed stage starts, and the unmapped state is dropped.
    await client.cancelJob(CX_JOB);
    const dropped = await cli('submit', join(REPO_ROOT, 'test/fixtures/cx-renamed.ts'), '--from-savepoint', path, '--allow-non-restored-state');
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.equal((await client.getJob(CX_JOB)).state, 'RUNNING');
    // The sources resume at the savepoint, so the renamed stage counts the second half only: its
    // count would include the first half had it kept the old stage's state. (Reading "not found"
    // right after the start raced with the processing of the second half.)
    const probe = first[0]!.entityId;
    const inSecond = second.filter((e) => e.entityId === probe).length;
    const counted = await waitFor(async () => {
      const [entity] = await client.batchGet(CX_JOB, 'received', [probe], 'latest');
      return entity?.found === true && JSON.parse(entity.valueJson) === inSecond ? entity : undefined;
    }, { timeoutMs: 60_000, what: `${probe} to count its ${inSecond} records of the second half` });
    assert.equal(JSON.parse(counted.valueJson), inSecond, 'the renamed stage starts without the old stage state');
  } finally {
    await nc.close();
    await rm(dir, { recursive: true, force: true });
  }
});
