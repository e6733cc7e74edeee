// A worker's deploy of a job's state (worker/job-deploy.ts, deployState), against real RocksDB and a
// file:// object store: a worker that joins a running job, with no key groups yet, reads no
// checkpoint (the one its deploy names may already be collected); one that restores key groups
// fails on a missing checkpoint, naming it. The worker's state memory options reach the backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileObjectStore } from '../../core/object-store.ts';
import { silentLogger } from '../../core/logger.ts';
import { MANIFEST_FORMAT_VERSION, type JobManifest } from '../../core/manifest.ts';
import type { DeployTasks } from '../../core/control.ts';
import type { WorkerId } from '../../core/ids.ts';
import { deployState, statePathOf } from '../../worker/job-deploy.ts';
import { KeyedContext } from '../../worker/task/keyed-context.ts';
import { valueState } from '../../sdk/index.ts';
import { compileWorkerOptions } from '../../worker/options.ts';

const manifest: JobManifest = {
  formatVersion: MANIFEST_FORMAT_VERSION,
  name: 'counts',
  maxParallelism: 8,
  errorPolicy: 'dead-letter',
  sources: [{ stream: 'IN', partitions: 1, partitionKey: 'id', format: 'json' }],
  stages: [
    { id: 'source', kind: 'source', source: 0, operators: [{ kind: 'keyBy', name: 'byId', to: { stage: 'count', input: 0 } }], sinks: [], states: [], features: [] },
    { id: 'count', kind: 'keyed', inputs: ['keyed'], operators: [{ kind: 'process', name: 'count' }], sinks: [], states: [{ name: 'n', kind: 'value' }], features: [] },
  ],
} as unknown as JobManifest;

/** A deploy of job `counts` at checkpoint 11, whose _metadata is not in the store (collected). */
function deployAt11(keyGroups: Array<{ start: number; end: number }>): DeployTasks {
  return { jobId: 'counts', epoch: 3, keyGroups, restore: { metadataKey: 'jobs/counts/checkpoints/11/_metadata', checkpointId: 11 } } as unknown as DeployTasks;
}

test('deploy - a worker joining with no key groups reads no checkpoint; one restoring key groups fails on a missing one, naming it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-job-deploy-'));
  try {
    const store = new FileObjectStore(join(dir, 'store'));
    const options = compileWorkerOptions({ natsServers: 'nats://127.0.0.1:1', workerId: 'w-1' as WorkerId, dataDir: join(dir, 'data'), storeUrl: `file://${join(dir, 'store')}`, logger: silentLogger });
    // Joining: nothing assigned, nothing read; RocksDB stands at the checkpoint the deploy names.
    const joined = await deployState(store, options, silentLogger, deployAt11([]), manifest, undefined, performance.now());
    try {
      assert.equal(joined.committedCheckpointId, 11);
    } finally {
      await joined.close();
    }
    // Restoring key groups from it: the missing _metadata fails the deploy and names the object.
    await assert.rejects(deployState(store, options, silentLogger, deployAt11([{ start: 0, end: 3 }]), manifest, undefined, performance.now()), /checkpoints\/11\/_metadata/);
    // The failed deploy left no RocksDB open: the next deploy on this worker opens it.
    const again = await deployState(store, options, silentLogger, deployAt11([]), manifest, undefined, performance.now());
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('deploy - the worker\'s state memory options reach the job\'s backend: live entries, read cache, RocksDB memtable size', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-job-deploy-'));
  try {
    const store = new FileObjectStore(join(dir, 'store'));
    const options = compileWorkerOptions({
      natsServers: 'nats://127.0.0.1:1',
      workerId: 'w-1' as WorkerId,
      dataDir: join(dir, 'data'),
      storeUrl: `file://${join(dir, 'store')}`,
      logger: silentLogger,
      liveEntries: 10,
      readCacheEntries: 0,
      rocksdbWriteBufferMb: 8,
    });
    const backend = await deployState(store, options, silentLogger, deployAt11([]), manifest, undefined, performance.now());
    try {
      const n = valueState<number>('n');
      const keyed = (key: string): KeyedContext => new KeyedContext('count', backend, new Map([['n', 'value']]), key, 1, () => undefined, {});
      for (let i = 0; i < 100; i++) keyed(`k${i}`).state(n).update(i);
      backend.freeze(12);
      await backend.commit(12);
      for (let i = 0; i < 100; i++) assert.equal(await keyed(`k${i}`).state(n).value(), i);
      assert.ok(backend.liveEntries <= 11, `${backend.liveEntries} live entries kept, 10 asked for`);
      // No read cache: a committed value read twice is read from RocksDB twice.
      const before = backend.storeStats.readBatches;
      assert.equal(await backend.getValue('count', 1, 'n', 'k5', 'committed'), 5);
      assert.equal(await backend.getValue('count', 1, 'n', 'k5', 'committed'), 5);
      assert.equal(backend.storeStats.readBatches - before, 2);
      // RocksDB writes the options it runs with into its directory.
      const path = statePathOf(options, 'counts');
      const file = (await readdir(path)).find((f) => f.startsWith('OPTIONS-'));
      assert.ok(file !== undefined, 'RocksDB wrote its OPTIONS file');
      assert.match(await readFile(join(path, file), 'utf8'), /write_buffer_size=8388608\b/);
    } finally {
      await backend.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
