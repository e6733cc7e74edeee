// What a deploy (DeployTasks) does before a job runtime exists: fetch and check the job's bundle,
// and bring this worker's key groups to the checkpoint the deploy restores (or to empty state).
// A redeploy (a recovery, a new epoch) reuses the previous runtime's RocksDB: survivors keep
// their key groups' committed state and read only new key groups from the object store
// (docs/ARCHITECTURE.md, "State" step 5).
import fs from 'node:fs/promises';
import path from 'node:path';
import { loadBundle, sha256Hex } from '../core/bundle.ts';
import { keyGroupsOf } from '../core/key-groups.ts';
import { InvalidArgumentError } from '../core/errors.ts';
import type { JobManifest } from '../core/manifest.ts';
import type { DeployTasks } from '../core/control.ts';
import type { ObjectStore } from '../core/object-store.ts';
import type { Logger } from '../core/logger.ts';
import type { JobPlan } from '../sdk/plan.ts';
import { StateBackend } from './state/index.ts';
import { readMetadata, restoreKeyGroups } from './checkpoint/index.ts';
import type { CompiledWorkerOptions } from './options.ts';

/** Where a job's RocksDB lives on a worker: <dataDir>/<workerId>/jobs/<jobId>/state. */
export function statePathOf(options: CompiledWorkerOptions, jobId: string): string {
  return path.join(options.dataDir, options.workerId, 'jobs', jobId, 'state');
}

/**
 * The job's plan from its bundle: read from this worker's cache or the object store, its sha256
 * checked against the deploy's, and its manifest against the one submitted.
 */
export async function loadJobPlan(store: ObjectStore, options: CompiledWorkerOptions, deploy: DeployTasks, manifest: JobManifest): Promise<JobPlan> {
  const workerDir = path.join(options.dataDir, options.workerId);
  const cacheDir = path.join(workerDir, 'bundles');
  const cached = path.join(cacheDir, `${deploy.bundleSha256}.mjs`);
  let code: Uint8Array;
  try {
    code = await fs.readFile(cached);
  } catch {
    code = await store.get(deploy.bundleKey);
  }
  const actual = sha256Hex(code);
  if (actual !== deploy.bundleSha256) throw new InvalidArgumentError(`bundle ${deploy.bundleKey} has sha256 ${actual}, expected ${deploy.bundleSha256}`);
  const job = await loadBundle(code, actual, cacheDir);
  const plan = job.plan();
  if (JSON.stringify(plan.manifest) !== JSON.stringify(manifest)) {
    throw new InvalidArgumentError(`bundle ${actual} does not produce the submitted manifest of job ${manifest.name}`);
  }
  return plan;
}

/** The previous runtime of the job on this worker, as a redeploy reuses it. */
export interface PreviousRuntime {
  readonly manifest: JobManifest;
  readonly backend: StateBackend;
  /** Key groups whose state its RocksDB holds (a deploy that drops one takes it out, so a failed deploy leaves it true). */
  readonly stateKeyGroups: Set<number>;
  stop(options?: { closeBackend?: boolean }): Promise<void>;
}

/**
 * The state backend of the deployed job, its key groups at the checkpoint `deploy.restore` names
 * (or empty): `previous`'s RocksDB rolled back to it when there is one, else a new RocksDB.
 */
export async function deployState(store: ObjectStore, options: CompiledWorkerOptions, logger: Logger, deploy: DeployTasks, manifest: JobManifest, previous: PreviousRuntime | undefined, started: number): Promise<StateBackend> {
  const target = deploy.restore?.metadataKey ? deploy.restore.checkpointId : 0;
  const keyGroups = [...keyGroupsOf(deploy.keyGroups)];
  // A worker joining a running job gets no key groups (a move follows) and reads nothing: checkpoints
  // go on meanwhile, and the checkpoint its deploy names may be collected before it reads it (a scale
  // step failed on "checkpoints/11/_metadata not found" and recovered the job).
  const metadata = deploy.restore?.metadataKey && keyGroups.length > 0 ? await readMetadata(store, deploy.restore.metadataKey) : null;
  const stages = manifest.stages.filter((s) => s.kind === 'keyed').map((s) => s.id);

  let backend: StateBackend;
  let toLoad: number[];
  if (previous && previous.manifest.name === manifest.name) {
    await previous.stop({ closeBackend: false });
    backend = previous.backend;
    // Bring RocksDB to the target: the checkpoint may have completed after this worker last
    // heard (its delta is still frozen in memory), then drop everything newer.
    if (target > backend.committedCheckpointId && target <= backend.frozenCheckpointId) await backend.commit(target);
    backend.rollback();
    // Only key groups whose state RocksDB holds (not one still loading after a move) are kept.
    const kept = new Set(backend.committedCheckpointId === target || (target === 0 && backend.committedCheckpointId <= 0) ? previous.stateKeyGroups : []);
    toLoad = keyGroups.filter((kg) => !kept.has(kg));
    const mine = new Set(keyGroups);
    for (const kg of [...previous.stateKeyGroups]) {
      if (mine.has(kg)) continue;
      previous.stateKeyGroups.delete(kg);
      for (const stage of stages) await backend.dropKeyGroup(stage, kg);
    }
  } else {
    await previous?.stop();
    const statePath = statePathOf(options, deploy.jobId);
    await fs.rm(statePath, { recursive: true, force: true });
    backend = await StateBackend.open({ path: statePath, liveEntries: options.liveEntries, readCacheEntries: options.readCacheEntries, writeBufferMb: options.rocksdbWriteBufferMb });
    toLoad = keyGroups;
  }
  let bytesRead: number;
  try {
    ({ bytesRead } = await restoreKeyGroups(store, backend, metadata, stages, toLoad));
    if (target > backend.committedCheckpointId) {
      backend.freeze(target);
      await backend.commit(target);
    }
  } catch (e) {
    // A backend opened here is closed (it holds the job's RocksDB lock for the process); the
    // previous runtime's stays with it, for the next deploy to take over.
    if (backend !== previous?.backend) await backend.close().catch(() => undefined);
    throw e;
  }
  logger.info(
    { jobId: deploy.jobId, epoch: deploy.epoch, checkpoint: target, keyGroups: keyGroups.length, restoredKeyGroups: toLoad.length, bytesRead, ms: Math.round(performance.now() - started) },
    'job deployed',
  );
  return backend;
}
