// The coordinator's state in NATS KV (coordinator/job-store.ts), against a real nats-server:
// what one coordinator writes, the next one reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { silentLogger } from '../../core/logger.ts';
import { JobAlreadyStoredError, JobStore, JobStoreCorruptError, type StoredJob } from '../../coordinator/job-store.ts';
import { startNatsServer, waitFor } from '../kit/index.ts';
import { FencedError } from '../../core/errors.ts';

function storedJob(jobId: string, overrides: Partial<StoredJob> = {}): StoredJob {
  const checkpoint = (id: number) => ({ id, metadataKey: `jobs/${jobId}/checkpoints/${id}/_metadata`, completedAtUnixMs: 1_700_000_000_000 + id });
  return {
    jobId,
    manifestJson: JSON.stringify({ name: jobId }),
    bundleSha256: 'ab'.repeat(32),
    bundleKey: `jobs/${jobId}/bundles/${'ab'.repeat(32)}.js`,
    state: 'RUNNING',
    submittedAtUnixMs: 1_700_000_000_000,
    epoch: 3,
    latestCheckpoint: checkpoint(7),
    retainedCheckpoints: [checkpoint(6), checkpoint(7)],
    savepoints: [checkpoint(5)],
    lastCheckpointId: 8,
    restarts: 1,
    lastFailure: { message: 'boom', stageId: 'count', keyGroup: 12, workerId: 'worker-1', stack: 'Error: boom\n    at f', atUnixMs: 1_700_000_000_500 },
    publishedCheckpointId: 7,
    ...overrides,
  };
}

/** A pino logger whose lines the test can read. */
function capturingLogger(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return {
    logger: pino({ level: 'info' }, sink),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function withNats(fn: (url: string, nc: NatsConnection) => Promise<void>): Promise<void> {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    await fn(nats.url, nc);
  } finally {
    await nc.close();
  }
}

test('job store - put, get, list and delete round trip', async () => {
  await withNats(async (_url, nc) => {
    const store = await JobStore.open({ nc, logger: silentLogger });
    assert.equal(store.bucket, 'eddy-cluster');
    assert.deepEqual(await store.list(), []);
    assert.equal(await store.get('clicks'), undefined);

    const clicks = storedJob('clicks');
    const alerts = storedJob('alerts', { state: 'SUBMITTED', latestCheckpoint: null, retainedCheckpoints: [], savepoints: [], lastFailure: null });
    await store.put(clicks);
    await store.put(alerts);
    assert.deepEqual(await store.get('clicks'), clicks);
    assert.deepEqual(await store.list(), [alerts, clicks], 'in key order');

    const restarted = { ...clicks, state: 'RESTARTING' as const, restarts: 2, epoch: 4 };
    await store.put(restarted);
    assert.deepEqual(await store.get('clicks'), restarted, 'a put replaces the job');

    await store.delete('clicks');
    assert.equal(await store.get('clicks'), undefined);
    assert.deepEqual(await store.list(), [alerts]);
    await store.delete('clicks'); // idempotent
    await store.put(clicks);
    assert.deepEqual(await store.get('clicks'), clicks, 'a deleted job can be stored again');

    await assert.rejects(store.get('bad id'), /job id "bad id" is not a valid id/);
  });
});

test('job store - a restarted coordinator on a new connection reads the state the last one left', async () => {
  await withNats(async (url, nc) => {
    const first = await JobStore.open({ nc, bucket: 'eddy-restart', logger: silentLogger });
    const job = storedJob('sessions');
    await first.put(job);
    await first.put(storedJob('gone'));
    await first.delete('gone');
    const epoch = await first.nextEpoch();
    await nc.close();

    const nc2 = await connect({ servers: url });
    try {
      const second = await JobStore.open({ nc: nc2, bucket: 'eddy-restart', logger: silentLogger });
      assert.deepEqual(await second.list(), [job]);
      assert.deepEqual(await second.get('sessions'), job);
      assert.equal(await second.nextEpoch(), epoch + 1, 'the epoch continues');
      const status = await (await new Kvm(nc2).open('eddy-restart')).status();
      assert.equal(status.history, 1);
      assert.equal(status.storage, 'file');
    } finally {
      await nc2.close();
    }
  });
});

test('job store - nextEpoch is strictly increasing under 20 concurrent callers on two connections', async () => {
  await withNats(async (url, nc) => {
    const nc2 = await connect({ servers: url });
    try {
      const stores = [await JobStore.open({ nc, logger: silentLogger }), await JobStore.open({ nc: nc2, logger: silentLogger })];
      // Each caller takes three epochs in a row; its own must increase too.
      const perCaller = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const store = stores[i % 2]!;
          const mine: number[] = [];
          for (let k = 0; k < 3; k++) mine.push(await store.nextEpoch());
          return mine;
        }),
      );
      for (const mine of perCaller) assert.ok(mine[0]! < mine[1]! && mine[1]! < mine[2]!, `a caller's epochs ${mine.join(', ')} increase`);
      const all = perCaller.flat().sort((a, b) => a - b);
      assert.deepEqual(all, Array.from({ length: 60 }, (_, i) => i + 1), 'no duplicates, no gaps');
      assert.equal(await stores[1]!.nextEpoch(), 61);
    } finally {
      await nc2.close();
    }
  });
});

test('job store - a corrupt value is reported naming its key, and list() still returns the other jobs', async () => {
  await withNats(async (_url, nc) => {
    const { logger, lines } = capturingLogger();
    const store = await JobStore.open({ nc, logger });
    const good = storedJob('good');
    await store.put(good);
    const kv = await new Kvm(nc).open('eddy-cluster');
    await kv.put('jobs.x', '{"jobId": "x", truncated');
    await kv.put('jobs.y', JSON.stringify({ ...storedJob('y'), state: 'DANCING' }));

    assert.deepEqual(await store.list(), [good]);
    const errors = lines().filter((l) => l.level === 50);
    assert.deepEqual(errors.map((l) => l.key).sort(), ['jobs.x', 'jobs.y']);
    for (const l of errors) assert.equal(l.msg, 'job store entry is corrupt; left out of the job list');

    await assert.rejects(store.get('x'), (e: unknown) => {
      assert.ok(e instanceof JobStoreCorruptError);
      assert.equal(e.key, 'jobs.x');
      assert.equal(e.code, 'DATA_LOSS');
      assert.match(e.message, /^job store entry jobs\.x is corrupt: not JSON/);
      return true;
    });
    await assert.rejects(store.get('y'), /job store entry jobs\.y is corrupt: state "DANCING" is not one of SUBMITTED/);

    await kv.put('epoch', 'eleven');
    await assert.rejects(store.nextEpoch(), /job store entry epoch is corrupt/);
  });
});

test('job store - a create another coordinator made after a claim is seen by the job-key watch and claimed; the creator is then fenced, and a second create is refused as already stored', async () => {
  await withNats(async (url, nc) => {
    const other = await connect({ servers: url });
    try {
      const leader = await JobStore.open({ nc, logger: silentLogger });
      const deposed = await JobStore.open({ nc: other, logger: silentLogger });
      const written: string[] = [];
      const stop = await leader.watchJobs((jobId) => written.push(jobId));
      assert.deepEqual(await leader.claim(), [], 'nothing to claim yet');
      // The deposed leader's create lands after the claim listed the keys.
      const late = storedJob('late', { state: 'SUBMITTED', latestCheckpoint: null, retainedCheckpoints: [] });
      await deposed.put(late);
      await waitFor(() => written.includes('late'), { timeoutMs: 10_000, what: 'the watch to report the create' });
      assert.equal(leader.knows('late'), false);
      assert.deepEqual(await leader.claimOne('late'), late);
      assert.equal(leader.knows('late'), true);
      await assert.rejects(deposed.put({ ...late, state: 'DEPLOYING' }), FencedError, 'the creator writes nothing over the claim');
      const third = await JobStore.open({ nc, logger: silentLogger });
      await assert.rejects(third.put(late), JobAlreadyStoredError, 'a create of a stored job is refused, not taken for fencing');
      assert.equal(await leader.claimOne('missing'), undefined);
      stop();
    } finally {
      await other.close();
    }
  });
});
