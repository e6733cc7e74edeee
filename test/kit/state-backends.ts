// Real RocksDB state backends in a temporary directory for state, timer and window tests.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateBackend } from '../../worker/state/state-backend.ts';
import type { StateBackendOptions } from '../../worker/state/state-backend-options.ts';

/** Opens `count` backends (with `options` beside their path), runs `run` with them, then closes them and removes their directory. */
export async function withBackends(count: number, run: (backends: StateBackend[]) => Promise<void>, options: Omit<StateBackendOptions, 'path'> = {}): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-backends-'));
  const backends: StateBackend[] = [];
  try {
    for (let i = 0; i < count; i++) backends.push(await StateBackend.open({ ...options, path: join(dir, `db-${i}`) }));
    await run(backends);
  } finally {
    for (const b of backends) await b.close();
    await rm(dir, { recursive: true, force: true });
  }
}
