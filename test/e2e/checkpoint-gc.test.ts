// Checkpoints stay bounded while a job runs for ever: a key group whose delta chain grows past
// maxDeltaChain is re-materialized as a base snapshot, and what no retained checkpoint (or
// savepoint) references is deleted — never an object a retained checkpoint still names, and never
// what a checkpoint in flight uploaded. A worker killed afterwards restores from those bases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startCluster, waitFor, cxEvents, cxExpectation, submitCx, assertCxExactlyOnce, CX_JOB, type ChildHandle, type Indicator } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { BulkPublisher } from '../../core/jetstream-publisher.ts';
import { partitionForKey } from '../../core/key-groups.ts';
import { decodeCheckpointIndex, decodeMetadata, type CheckpointMetadata, type ObjectRef } from '../../core/checkpoint-format.ts';
import { unreferencedKeys } from '../../coordinator/checkpoint-gc.ts';
import type { CompletedCheckpoint } from '../../coordinator/checkpoint-coordinator.ts';

const MAX_DELTA_CHAIN = 2;
const STATE_PREFIX = `jobs/${CX_JOB}/state/`;
const CHECKPOINTS_PREFIX = `jobs/${CX_JOB}/checkpoints/`;

// ---------------------------------------------------------------------------------------------
// Which keys the collector may delete, on hand-made metadata.

const ref = (key: string): ObjectRef => ({ key, offset: 0, length: 1, crc32: 0 });

function checkpoint(id: number, stages: CheckpointMetadata['stages'], outputs: string[] = []): CompletedCheckpoint {
  const metadata: CheckpointMetadata = {
    formatVersion: 1, jobId: 'j', checkpointId: id, epoch: 1, bundleSha256: '0'.repeat(64), createdAtUnixMs: 0,
    savepoint: false, maxParallelism: 128, sources: {}, stages, outputs,
  };
  return { id, metadataKey: `jobs/j/checkpoints/${id}/_metadata`, metadata, completedAtUnixMs: 0, durationMs: 0, bytes: 0 };
}

test('checkpoint gc - deletes only objects older than the oldest retained checkpoint that nothing retained references, _metadata first, output once published', () => {
  const d = (worker: string, id: number) => `jobs/j/state/s/${worker}-${id}.delta`;
  const snap = (worker: string, id: number) => `jobs/j/state/s/${worker}-${id}.snap`;
  const retained = [
    // Delta w1-3 is shared by key groups 1 and 2; key group 2 was re-materialized at 5.
    checkpoint(6, { s: { '1': { base: null, deltas: [ref(d('w1', 3)), ref(d('w1', 6))] }, '2': { base: ref(snap('w1', 5)), deltas: [] } } }, ['jobs/j/checkpoints/4/output-w1.ndjson']),
    checkpoint(7, { s: { '1': { base: null, deltas: [ref(d('w1', 3)), ref(d('w1', 6))] }, '2': { base: ref(snap('w1', 5)), deltas: [ref(d('w1', 7))] } } }),
  ];
  const savepoint = checkpoint(2, { s: { '3': { base: ref(snap('w2', 1)), deltas: [ref(d('w2', 2))] } } });
  const keys = [
    d('w1', 1), d('w1', 3), d('w1', 4), snap('w1', 5), d('w1', 6), d('w1', 7),
    snap('w2', 1), d('w2', 2), snap('w2', 4),
    // Uploaded for checkpoint 8, in flight: in no _metadata yet.
    d('w1', 8), snap('w1', 8), 'jobs/j/checkpoints/8/output-w1.ndjson',
    'jobs/j/checkpoints/2/_metadata', 'jobs/j/checkpoints/4/_metadata', 'jobs/j/checkpoints/4/output-w1.ndjson', 'jobs/j/checkpoints/5/output-w2.ndjson',
    'jobs/j/checkpoints/5/_metadata', 'jobs/j/checkpoints/6/_metadata', 'jobs/j/checkpoints/7/_metadata',
    'jobs/j/state/s/not-a-checkpoint-object.txt',
  ];
  assert.deepEqual(unreferencedKeys(keys, { checkpoints: retained, savepoints: [savepoint] }), [
    'jobs/j/checkpoints/4/_metadata', 'jobs/j/checkpoints/5/_metadata',
    d('w1', 1), d('w1', 4), snap('w2', 4), 'jobs/j/checkpoints/5/output-w2.ndjson',
  ]);
  assert.deepEqual(
    new Set(unreferencedKeys(keys, { checkpoints: retained, savepoints: [] })),
    new Set(['jobs/j/checkpoints/2/_metadata', 'jobs/j/checkpoints/4/_metadata', 'jobs/j/checkpoints/5/_metadata', d('w1', 1), d('w1', 4), snap('w2', 1), d('w2', 2), snap('w2', 4), 'jobs/j/checkpoints/5/output-w2.ndjson']),
    'without the savepoint its objects go too',
  );
  assert.deepEqual(
    unreferencedKeys(keys, { checkpoints: retained, savepoints: [savepoint], unpublishedOutputs: ['jobs/j/checkpoints/5/output-w2.ndjson'] }),
    ['jobs/j/checkpoints/4/_metadata', 'jobs/j/checkpoints/5/_metadata', d('w1', 1), d('w1', 4), snap('w2', 4)],
    'output of checkpoint 5, not published yet, is kept although 5 is no longer retained',
  );
  assert.deepEqual(unreferencedKeys(keys, { checkpoints: [], savepoints: [] }), [], 'nothing is collected without a retained checkpoint');
});

// ---------------------------------------------------------------------------------------------
// The store, read directly (the cluster's store is a directory).

async function listKeys(root: string, prefix: string): Promise<string[]> {
  const dir = join(root, ...prefix.split('/'));
  const names = await readdir(dir, { recursive: true }).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
  const keys: string[] = [];
  for (const name of names) {
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info?.isFile() === true && !name.endsWith('.tmp')) keys.push(relative(root, join(dir, name)).split(sep).join('/'));
  }
  return keys.sort();
}

const exists = (root: string, key: string) => stat(join(root, ...key.split('/'))).then(() => true, () => false);

/** Every _metadata still in the store, decoded (one deleted while listing is skipped). */
async function metadataInStore(root: string): Promise<Array<{ key: string; metadata: CheckpointMetadata }>> {
  const out = [];
  for (const key of (await listKeys(root, CHECKPOINTS_PREFIX)).filter((k) => k.endsWith('/_metadata'))) {
    const bytes = await readFile(join(root, ...key.split('/'))).catch(() => undefined);
    if (bytes !== undefined) out.push({ key, metadata: decodeMetadata(bytes, key) });
  }
  return out.sort((a, b) => a.metadata.checkpointId - b.metadata.checkpointId);
}

/**
 * metadataInStore, read again while it finds none: with a checkpoint every 200 ms and 3 retained,
 * every _metadata listed can be collected before it is read on a loaded machine (seen at load 25).
 */
async function someMetadataInStore(root: string): Promise<Array<{ key: string; metadata: CheckpointMetadata }>> {
  const all = await waitFor(async () => {
    const found = await metadataInStore(root);
    return found.length > 0 ? found : undefined;
  }, { timeoutMs: 10_000, what: 'a _metadata in the store' }).catch(() => []);
  assert.ok(all.length > 0, 'at least one _metadata is in the store');
  return all;
}

function keysNamedBy(metadata: CheckpointMetadata): string[] {
  const keys = new Set(metadata.outputs ?? []);
  for (const keyGroups of Object.values(metadata.stages)) {
    for (const chain of Object.values(keyGroups)) {
      if (chain.base) keys.add(chain.base.key);
      for (const delta of chain.deltas) keys.add(delta.key);
    }
  }
  return [...keys];
}

/**
 * Every object named by a _metadata exists. A _metadata is deleted before the objects only it
 * named, so an object found missing counts only if its _metadata is still there afterwards.
 */
async function assertReferencedObjectsExist(root: string): Promise<number> {
  const all = await someMetadataInStore(root);
  for (const { key, metadata } of all) {
    const missing = [];
    for (const named of keysNamedBy(metadata)) if (!(await exists(root, named))) missing.push(named);
    if (missing.length > 0 && (await exists(root, key))) assert.fail(`${key} names ${missing.length} missing objects, e.g. ${missing.slice(0, 3).join(', ')}`);
  }
  return all.length;
}

/**
 * Publishes `perTick` events every 100 ms until stop(), which resolves how many were published
 * (all acknowledged by the stream): publishing spans every phase of the test, however long the
 * checkpoints take on a slow machine. It stays at most `ahead` events ahead of what the job has
 * read (`consumed`, polled every tick): on a loaded machine a job that falls behind a fixed rate
 * spends the test on a growing backlog (at load 20-50 it used up 500,000 events, 175 s of CPU,
 * or failed to complete 25 checkpoints in 90 s), while the checkpoints only need every key group
 * to change between two of them.
 */
function publishUntilStopped(nc: NatsConnection, events: readonly Indicator[], perTick: number, ahead: number, consumed: () => Promise<number>): { exhausted(): boolean; stop(): Promise<number> } {
  const publisher = new BulkPublisher(nc);
  const encoder = new TextEncoder();
  let sent = 0;
  let read = 0;
  let asking = false;
  let failure: unknown;
  const timer = setInterval(() => {
    if (!asking) {
      asking = true;
      consumed().then((n) => (read = n), () => undefined).finally(() => (asking = false));
    }
    try {
      for (const end = Math.min(sent + perTick, events.length, read + ahead); sent < end; sent++) {
        const e = events[sent]!;
        publisher.publishNow(`indicators.${partitionForKey(e.entityId, 4)}`, encoder.encode(JSON.stringify(e)));
      }
    } catch (e) {
      failure ??= e;
      clearInterval(timer);
    }
  }, 100);
  let stopping: Promise<number> | undefined;
  const stop = async (): Promise<number> => {
    clearInterval(timer);
    try {
      if (failure !== undefined) throw failure;
      await publisher.flush();
    } finally {
      publisher.close();
    }
    return sent;
  };
  return { exhausted: () => sent === events.length, stop: () => (stopping ??= stop()) };
}

// ---------------------------------------------------------------------------------------------

test('checkpoint - long delta chains are re-materialized, unreferenced objects are deleted, and a killed worker restores from the bases', { timeout: 300_000 }, async (t) => {
  const started = Date.now();
  const step = (what: string) => t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
  // Checkpoints are counted and their objects measured: one every interval, idle or not.
  const cluster = await startCluster({ workers: 2, workerTimeoutMs: 2000, checkpointIntervalMs: 200, maxDeltaChain: MAX_DELTA_CHAIN, skipIdleCheckpoints: false });
  const root = cluster.storeDir;
  const dir = await mkdtemp(join(tmpdir(), 'eddy-gc-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  // 5,000 events a second over 2,000 entities: every key group changes at every checkpoint.
  // Enough for 100 s; the test stops publishing once the worker's key groups are restored.
  // At most 10,000 events ahead of the job: 2 s of input at that rate.
  const events = cxEvents(500_000, 2_000, 11);
  let producer: ReturnType<typeof publishUntilStopped> | undefined;
  const latestId = async () => Number((await client.getJob(CX_JOB)).checkpoints!.latestId);
  const stateObjects = async () => (await listKeys(root, STATE_PREFIX)).length;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    await submitCx(client, join(dir, 'cache'));
    producer = publishUntilStopped(nc, events, 500, 10_000, async () => Number((await client.getJob(CX_JOB)).stages[0]!.recordsIn));

    // Warm-up: 128 key groups, 8 re-materialized per checkpoint: after ~20 checkpoints every
    // chain has been rebased once and the number of objects stops growing.
    const warm = await waitFor(async () => {
      const id = await latestId();
      return id >= 25 ? id : undefined;
    }, { timeoutMs: 90_000, what: '25 completed checkpoints' });
    step(`checkpoint ${warm} completed`);
    await assertReferencedObjectsExist(root);
    const before = { id: warm, objects: await stateObjects() };

    const span = 30;
    await waitFor(async () => (await latestId()) >= before.id + span, { timeoutMs: 90_000, what: `${span} more completed checkpoints` });
    const after = { id: await latestId(), objects: await stateObjects() };
    step(`checkpoint ${after.id} completed`);
    assert.ok(!producer.exhausted(), 'events were published all along the measured checkpoints');
    t.diagnostic(`state objects: ${before.objects} at checkpoint ${before.id}, ${after.objects} at checkpoint ${after.id}`);
    // Without collection every checkpoint adds a delta object per worker (and snapshots): 2 × span
    // more. With it the count levels off near (128 / 8 + maxDeltaChain + retained) per worker.
    assert.ok(after.objects - before.objects < span, `state objects stay bounded: ${before.objects} at checkpoint ${before.id}, ${after.objects} at checkpoint ${after.id}`);
    assert.ok(after.objects <= 120, `${after.objects} state objects at checkpoint ${after.id}`);
    assert.ok((await listKeys(root, CHECKPOINTS_PREFIX)).length <= 40, 'old _metadata and output objects are deleted');
    await assertReferencedObjectsExist(root);

    const retained = await someMetadataInStore(root);
    const rebased = retained.flatMap(({ metadata }) =>
      Object.values(metadata.stages).flatMap((keyGroups) => Object.values(keyGroups).filter((c) => c.base !== null && c.deltas.length <= MAX_DELTA_CHAIN + 1)),
    );
    assert.ok(rebased.length > 0, 'some key group restores from a base snapshot followed by a short chain');
    const base = rebased[0]!.base!;
    assert.match(base.key, /\.snap$/);
    const header = await readFile(join(root, ...base.key.split('/')));
    assert.equal(decodeCheckpointIndex(header, base.key).snapshot, true, 'a base is written with the snapshot flag');
    const latest = retained[retained.length - 1]!.metadata;
    const chains = Object.values(latest.stages).flatMap((keyGroups) => Object.values(keyGroups));
    assert.ok(chains.length > 0 && chains.every((c) => c.base !== null), `every chain of checkpoint ${latest.checkpointId} starts from a base, so the restore below reads bases`);

    // A worker dies while events flow; its key groups restore elsewhere from bases and deltas.
    const job = await client.getJob(CX_JOB);
    const running = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((a) => a.jobId === CX_JOB));
    const victim = running[0]!.workerId;
    const handles = new Map<string, ChildHandle>(cluster.workers.map((w) => [w.name.replace(/^worker /, ''), w]));
    handles.get(victim)!.kill('SIGKILL');
    await cluster.addWorker('replacement-1');
    await waitFor(async () => (await client.getJob(CX_JOB)).restarts > job.restarts, { timeoutMs: 30_000, what: 'the job to restart after the kill' });
    step(`restarted after the kill at checkpoint ${job.checkpoints!.latestId}`);
    await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return j.state === 'RUNNING' && Number(j.checkpoints!.latestId) > Number(job.checkpoints!.latestId) + 3;
    }, { timeoutMs: 60_000, what: 'checkpoints to complete after the recovery' });
    step(`checkpoint ${await latestId()} completed after the recovery`);

    assert.ok(!producer.exhausted(), 'events were published all along the recovery');
    const published = await producer.stop();
    step(`${published} events published`);
    await assertCxExactlyOnce(client, nc, cxExpectation(events.slice(0, published)));
    step('exactly once');
    await assertReferencedObjectsExist(root);
    const final = await stateObjects();
    t.diagnostic(`state objects: ${final} at checkpoint ${await latestId()}, after the recovery`);
    assert.ok(final <= 120, `${final} state objects after the recovery`);
  } finally {
    await producer?.stop().catch(() => undefined);
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
