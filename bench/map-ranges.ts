// Bounded range reads of keyed map state (worker/state/merged-reads.ts), in process over a real
// StateBackend: what a timer that reads a window of a key's map costs, as an event-time join does
// in every timer it fires. From the map cache (a map of at most SMALL_MAP_ENTRIES is read whole
// into it by a state handle's second range read) against the baseline measured in the same run: a
// RocksDB iterator per read, which is how every bounded range was read before and how a map too
// large to cache still is.
//
//   node --import tsx bench/map-ranges.ts [reads] [entries per map]   (default 20000 reads, maps of 200 entries; BENCH_RUNS)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateBackend } from '../worker/state/state-backend.ts';
import { RUNS, isMain, machineLine, median, runMain } from './lib.ts';

const STAGE = 'join';
const KEYS = 50;
/** Map keys as the join test's (hex event time | id): a 3 s window of a key's map is ~30 entries. */
const at = (ts: number): string => ts.toString(16).padStart(14, '0');
const T0 = 1_700_000_000_000;

interface RangeCost {
  wallUs: number;
  cpuUs: number;
}

async function ranges(backend: StateBackend, reads: number, entries: number, cacheSmall: boolean): Promise<RangeCost> {
  let found = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let r = 0; r < reads; r++) {
    const key = `user-${r % KEYS}`;
    const from = T0 + (r % entries) * 100;
    found += (await backend.mapRangeBytes(STAGE, r % 32, 'seen', key, { from: at(from), to: at(from + 3_000), cacheSmall })).length;
  }
  const cpu = process.cpuUsage(c0);
  if (found === 0) throw new Error('the range reads found nothing');
  return { wallUs: ((performance.now() - t0) * 1000) / reads, cpuUs: (cpu.user + cpu.system) / reads };
}

export async function mapRangeBenchmarks(reads = 20_000, entries = 200): Promise<void> {
  console.log(`--- map ranges: ${reads} bounded range reads (~30 entries each) of ${KEYS} keys' maps of ${entries} committed entries, in process; baseline: a RocksDB iterator per read`);
  const cached: RangeCost[] = [];
  const iterated: RangeCost[] = [];
  for (let run = 0; run < RUNS; run++) {
    const dir = await mkdtemp(join(tmpdir(), 'eddy-map-ranges-'));
    const backend = await StateBackend.open({ path: join(dir, 'db') });
    try {
      for (let k = 0; k < KEYS; k++) for (let i = 0; i < entries; i++) backend.putMapEntry(STAGE, k % 32, 'seen', `user-${k}`, `${at(T0 + i * 100)}|${i}`, i);
      backend.freeze(1);
      await backend.commit(1);
      // The iterator first: the cached run would leave the maps in the map cache.
      iterated.push(await ranges(backend, reads, entries, false));
      cached.push(await ranges(backend, reads, entries, true));
    } finally {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  const c = { wall: median(cached.map((x) => x.wallUs)), cpu: median(cached.map((x) => x.cpuUs)) };
  const i = { wall: median(iterated.map((x) => x.wallUs)), cpu: median(iterated.map((x) => x.cpuUs)) };
  console.log(`  from the map cache: ${c.wall.toFixed(1)} µs a read (${c.cpu.toFixed(1)} µs of CPU, all threads); a RocksDB iterator: ${i.wall.toFixed(1)} µs (${i.cpu.toFixed(1)} µs of CPU); ratio ${(i.cpu / c.cpu).toFixed(1)} (medians of ${RUNS})`);
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await mapRangeBenchmarks(Number(process.argv[2] ?? 20_000), Number(process.argv[3] ?? 200));
  });
}
