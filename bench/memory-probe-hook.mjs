// Preloaded with NODE_OPTIONS="--import <this file>" by bench/state-memory.ts: samples the
// process's memory every EDDY_MEMORY_PROBE_INTERVAL_MS (default 100) and keeps
// $EDDY_MEMORY_PROBE_DIR/<pid>.json up to date with the current and peak heapUsed and RSS. With
// EDDY_MEMORY_PROBE_GC_MS it also forces a full GC that often and records the heap left after it
// (the live heap: what the process holds, without the garbage not yet collected).
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const dir = process.env.EDDY_MEMORY_PROBE_DIR;
if (dir) {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  const intervalMs = Number(process.env.EDDY_MEMORY_PROBE_INTERVAL_MS ?? 100);
  const gcEveryMs = Number(process.env.EDDY_MEMORY_PROBE_GC_MS ?? 0);
  const file = join(dir, `${process.pid}.json`);
  const probe = { pid: process.pid, samples: 0, heapUsed: 0, rss: 0, peakHeapUsed: 0, peakRss: 0, liveHeapUsed: 0, peakLiveHeapUsed: 0, gcs: 0, lastGcAtMs: 0 };
  let lastGc = Date.now();
  setInterval(() => {
    const m = process.memoryUsage();
    probe.samples++;
    probe.heapUsed = m.heapUsed;
    probe.rss = m.rss;
    probe.peakHeapUsed = Math.max(probe.peakHeapUsed, m.heapUsed);
    probe.peakRss = Math.max(probe.peakRss, m.rss);
    if (gcEveryMs > 0 && Date.now() - lastGc >= gcEveryMs) {
      gc();
      lastGc = Date.now();
      probe.liveHeapUsed = process.memoryUsage().heapUsed;
      probe.peakLiveHeapUsed = Math.max(probe.peakLiveHeapUsed, probe.liveHeapUsed);
      probe.gcs++;
      probe.lastGcAtMs = lastGc;
    }
    // Written aside and renamed: a reader never sees half a file.
    writeFileSync(`${file}.tmp`, JSON.stringify(probe));
    renameSync(`${file}.tmp`, file);
  }, intervalMs).unref();
}
