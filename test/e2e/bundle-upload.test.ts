// Bundle uploads streamed and bounded (coordinator/bundle-upload.ts; issue 12), against a real
// coordinator process: four 48 MB uploads at once keep its peak resident memory well below the
// uploads' size (they are hashed and written to a staged file chunk by chunk, at most two at a
// time, the others refused UNAVAILABLE), and a bundle over the cap is refused at once with a
// clear error. Every upload here declares a wrong digest, so none becomes a job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { startCluster } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';

const MB = 1024 * 1024;

/** Peak resident memory of a process (VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

test('bundle uploads - four parallel 48 MB uploads stay out of the coordinator\'s memory; one over the cap is refused at once', { timeout: 120_000 }, async (t) => {
  const cluster = await startCluster({ workers: 0 });
  const client = new EddyClient({ address: cluster.address, timeoutMs: 60_000 });
  try {
    const manifestJson = JSON.stringify({ name: 'upload-probe' });
    const code = randomBytes(48 * MB);
    const before = await peakRss(cluster.coordinator.pid);
    const started = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => client.submitJob({ manifestJson, bundleSha256: '0'.repeat(64), code, timeoutMs: 60_000 })));
    const seconds = (performance.now() - started) / 1000;
    const after = await peakRss(cluster.coordinator.pid);
    const messages = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'accepted'));
    for (const m of messages) assert.match(m, /bundle sha256 mismatch: .* the 50331648 bytes received hash to [0-9a-f]{64}|bundle uploads are in progress/);
    assert.ok(messages.filter((m) => /sha256 mismatch/.test(m)).length >= 2, messages.join('\n'));
    const growthMb = Math.max(0, after - before) / MB;
    t.diagnostic(`4 × 48 MB uploads in ${seconds.toFixed(1)} s: coordinator peak RSS ${(before / MB).toFixed(0)} → ${(after / MB).toFixed(0)} MB (+${growthMb.toFixed(0)} MB); ${messages.filter((m) => /in progress/.test(m)).length} refused while two ran`);
    assert.ok(growthMb < 80, `the coordinator's peak RSS grew by ${growthMb.toFixed(0)} MB for 4 × 48 MB of uploads`);

    // Over the cap: refused on the declared size, before the bytes are read.
    const big = Buffer.alloc(65 * MB);
    await assert.rejects(client.submitJob({ manifestJson, bundleSha256: '0'.repeat(64), code: big, timeoutMs: 60_000 }), /bundle of 68157440 bytes refused: the largest accepted is 67108864 bytes/);
  } finally {
    client.close();
    await cluster.stop();
  }
});
