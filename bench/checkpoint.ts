// Checkpoint benchmarks (docs/ARCHITECTURE.md, "State" and "Checkpoints").
//
// 1. In-process, with the real StateBackend, CheckpointWriter and FileObjectStore: N keys of
//    customer-experience-like value state (~60-byte objects over 128 key groups) committed as the
//    base, then for 10 intervals a fraction of the keys changed, frozen, uploaded and committed.
//    Goal: duration and bytes follow the change, not the total. Baselines from the same run: a FULL
//    snapshot of the same state (every key group exported, encoded with encodeCheckpointObject and
//    put), and raw rocksdb-native batched puts of the same changed keys.
// 2. customer-experience on a real 1-worker cluster with a checkpoint every second against
//    checkpoints effectively off (one per hour).
//
//   node --import tsx bench/checkpoint.ts     (BENCH_RUNS, BENCH_QUICK=1 as for bench/run.ts)
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateBackend, encodeStateKey } from '../worker/state/state-backend.ts';
import { CheckpointWriter } from '../worker/checkpoint/checkpoint-writer.ts';
import { FileObjectStore } from '../core/object-store.ts';
import { encodeCheckpointObject } from '../core/checkpoint-format.ts';
import { objectKeys } from '../core/object-keys.ts';
import { encodeValue, packValueView } from '../worker/state/value-codec.ts';
import { keyGroupForKey, DEFAULT_MAX_PARALLELISM } from '../core/key-groups.ts';
import { RULES } from '../jobs/customer-experience/rules.ts';
import { QUICK, RUNS, cxThroughput, isMain, machineLine, mb, median, ms, pct, ratio, runMain, selected } from './lib.ts';

const JOB = 'customer-experience';
const STAGE = 'indicator-state';
const STATE = 'indicators';
const WORKER = 'bench-worker';
const KEY_GROUPS = DEFAULT_MAX_PARALLELISM;
const INTERVALS = Number(process.env.BENCH_CHECKPOINT_INTERVALS ?? 10);
/** Keys per base commit: bounds the overlay while loading 10 M keys. */
const LOAD_CHUNK = 500_000;
const RAW_BATCH = 1000;
const TYPES = Object.keys(RULES);

// rocksdb-native has no types; the slice used for the raw baseline (see worker/state/state-backend.ts).
interface RawWriteBatch { tryPut(key: Buffer, value: Buffer): void; flush(): Promise<void> }
interface RawDb { ready(): Promise<void>; write(o: { capacity: number; autoDestroy: boolean }): RawWriteBatch; close(): Promise<void> }
const RocksDB = createRequire(import.meta.url)('rocksdb-native') as new (path: string) => RawDb;

/** Deterministic PRNG (LCG, 31 bits). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff) / 0x80000000;
}

const entityId = (i: number): string => `cust-${String(i).padStart(8, '0')}`;

/** ~60 bytes as msgpack: the latest reading of one data point, as customer-experience keeps it. */
function indicator(i: number, version: number): { type: string; value: number; ts: number; colour: string } {
  const value = ((i * 7919 + version * 104_729) % 15_000) / 100;
  const type = TYPES[(i + version) % TYPES.length]!;
  return { type, value, ts: 1_700_000_000_000 + version * 1_000_000 + (i % 1_000_000), colour: value > 100 ? 'RED' : 'GREEN' };
}

/** `count` distinct indices in [0, n), in random order. */
function sample(n: number, count: number, rand: () => number): Uint32Array {
  const out = new Uint32Array(count);
  if (count * 3 > n) {
    // Dense: a partial Fisher–Yates shuffle.
    const all = new Uint32Array(n);
    for (let i = 0; i < n; i++) all[i] = i;
    for (let i = 0; i < count; i++) {
      const j = i + Math.floor(rand() * (n - i));
      const t = all[i]!;
      all[i] = all[j]!;
      all[j] = t;
      out[i] = all[i]!;
    }
    return out;
  }
  const seen = new Set<number>();
  for (let k = 0; k < count; ) {
    const i = Math.floor(rand() * n);
    if (seen.has(i)) continue;
    seen.add(i);
    out[k++] = i;
  }
  return out;
}

interface ChangeRun {
  fraction: number;
  changed: number;
  /** freeze + upload + commit, per interval. */
  totals: number[];
  freezes: number[];
  uploads: number[];
  commits: number[];
  bytes: number[];
  /** Raw rocksdb-native batched puts of the same changed keys, per interval. */
  raw: number[];
}

interface SizeRun {
  keys: number;
  loadMs: number;
  meanValueBytes: number;
  diskBytes: number;
  changes: ChangeRun[];
  /** Full snapshot: export from RocksDB + encode + put, all key groups. */
  fullMs: number;
  /** The encode + put part of fullMs. */
  fullEncodePutMs: number;
  fullBytes: number;
}

export async function checkpointRun(keys: number, fractions: number[], seed: number): Promise<SizeRun> {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-ckpt-'));
  const backend = await StateBackend.open({ path: join(dir, 'rocksdb') });
  const store = new FileObjectStore(join(dir, 'store'));
  const raw = new RocksDB(join(dir, 'raw'));
  await raw.ready();
  const writer = new CheckpointWriter(store, backend, JOB, WORKER);
  try {
    // Key group of every entity, computed once (murmur3 over the id, as the runtime does).
    const groups = new Uint8Array(keys);
    for (let i = 0; i < keys; i++) groups[i] = keyGroupForKey(entityId(i), KEY_GROUPS);

    // The base: every key once, committed in chunks (what RocksDB holds after checkpoint `id`).
    let id = 0;
    let valueBytes = 0;
    const t0 = performance.now();
    for (let start = 0; start < keys; start += LOAD_CHUNK) {
      for (let i = start; i < Math.min(keys, start + LOAD_CHUNK); i++) {
        const v = indicator(i, 0);
        if (i < 10_000) valueBytes += packValueView(v).length;
        backend.putValue(STAGE, groups[i]!, STATE, entityId(i), v);
      }
      backend.freeze(++id);
      await backend.commit(id);
    }
    const loadMs = performance.now() - t0;
    const meanValueBytes = valueBytes / Math.min(keys, 10_000);

    const rand = random(seed);
    const changes: ChangeRun[] = [];
    let version = 1;
    for (const fraction of fractions) {
      const changed = Math.round(keys * fraction);
      const run: ChangeRun = { fraction, changed, totals: [], freezes: [], uploads: [], commits: [], bytes: [], raw: [] };
      for (let interval = 0; interval < INTERVALS; interval++, version++) {
        const which = sample(keys, changed, rand);
        for (const i of which) backend.putValue(STAGE, groups[i]!, STATE, entityId(i), indicator(i, version));
        // The raw baseline's input, prepared outside its timing: the same keys and encoded values.
        const rawKeys: Buffer[] = new Array(changed);
        const rawValues: Buffer[] = new Array(changed);
        for (let k = 0; k < changed; k++) {
          const i = which[k]!;
          rawKeys[k] = encodeStateKey(STAGE, groups[i]!, STATE, entityId(i));
          rawValues[k] = encodeValue(indicator(i, version));
        }

        // One checkpoint as the worker runs it: freeze at the barrier, upload the delta, then
        // (once the coordinator declares it complete) commit it to RocksDB.
        const bytesBefore = writer.bytesUploaded;
        const c0 = performance.now();
        backend.freeze(++id);
        writer.frozen(id, []);
        const c1 = performance.now();
        await writer.upload(id);
        const c2 = performance.now();
        await backend.commit(id);
        writer.completed(id);
        const c3 = performance.now();
        run.freezes.push(c1 - c0);
        run.uploads.push(c2 - c1);
        run.commits.push(c3 - c2);
        run.totals.push(c3 - c0);
        run.bytes.push(writer.bytesUploaded - bytesBefore);

        const r0 = performance.now();
        for (let k = 0; k < changed; k += RAW_BATCH) {
          const end = Math.min(changed, k + RAW_BATCH);
          const batch = raw.write({ capacity: end - k, autoDestroy: true });
          for (let j = k; j < end; j++) batch.tryPut(rawKeys[j]!, rawValues[j]!);
          await batch.flush();
        }
        run.raw.push(performance.now() - r0);
      }
      changes.push(run);
    }

    // Baseline: a full snapshot of the same (now current) state, one object per key group.
    let fullBytes = 0;
    let fullEncodePutMs = 0;
    const f0 = performance.now();
    for (let kg = 0; kg < KEY_GROUPS; kg++) {
      const entries = await backend.exportKeyGroup(STAGE, kg);
      const e0 = performance.now();
      const bytes = encodeCheckpointObject(STAGE, [entries], { snapshot: true });
      await store.put(objectKeys.snapshot(JOB, STAGE, kg, id), bytes);
      fullEncodePutMs += performance.now() - e0;
      fullBytes += bytes.length;
    }
    const fullMs = performance.now() - f0;
    const diskBytes = await backend.diskBytes();
    return { keys, loadMs, meanValueBytes, diskBytes, changes, fullMs, fullEncodePutMs, fullBytes };
  } finally {
    await backend.close();
    await raw.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function reportSize(keys: number, runs: SizeRun[]): void {
  const first = runs[0]!;
  const fullMs = median(runs.map((r) => r.fullMs));
  const fullBytes = median(runs.map((r) => r.fullBytes));
  console.log(
    `${(keys / 1e6).toFixed(0)} M keys (${KEY_GROUPS} key groups, values ${first.meanValueBytes.toFixed(0)} B as msgpack; RocksDB ${mb(median(runs.map((r) => r.diskBytes)))}; ` +
      `load ${(median(runs.map((r) => r.loadMs)) / 1000).toFixed(1)} s); medians of ${runs.length} run(s):`,
  );
  console.log(
    `  baseline full snapshot (export ${KEY_GROUPS} key groups from RocksDB + encode + put): ${ms(fullMs)}, ${mb(fullBytes)} ` +
      `(encode + put alone ${ms(median(runs.map((r) => r.fullEncodePutMs)))})`,
  );
  for (let c = 0; c < first.changes.length; c++) {
    const of = runs.map((r) => r.changes[c]!);
    const p50 = median(of.map((r) => pct(r.totals, 50)));
    const p99 = median(of.map((r) => pct(r.totals, 99)));
    const bytes = median(of.map((r) => median(r.bytes)));
    const rawMs = median(of.map((r) => median(r.raw)));
    const changed = first.changes[c]!.changed;
    console.log(
      `  ${(first.changes[c]!.fraction * 100).toFixed(0)} % changed (${changed} keys) × ${INTERVALS} checkpoints: freeze+upload+commit p50 ${ms(p50)}, p99 ${ms(p99)} ` +
        `[freeze ${ms(median(of.map((r) => median(r.freezes))))}, upload ${ms(median(of.map((r) => median(r.uploads))))}, commit ${ms(median(of.map((r) => median(r.commits))))}]; ` +
        `${mb(bytes)} per checkpoint`,
    );
    console.log(
      `      vs full snapshot: time ${ratio(p50, fullMs)}, bytes ${ratio(bytes, fullBytes)} (changed fraction ${first.changes[c]!.fraction}); ` +
        `vs raw RocksDB batched put of the changed keys (${ms(rawMs)}, ${Math.round(changed / (rawMs / 1000))} keys/s): ${ratio(p50, rawMs)}×`,
    );
  }
}

/** Median over runs of the p50 checkpoint duration and of the bytes per checkpoint, for one change fraction. */
function typical(runs: SizeRun[], c: number): { ms: number; bytes: number } {
  return { ms: median(runs.map((r) => pct(r.changes[c]!.totals, 50))), bytes: median(runs.map((r) => median(r.changes[c]!.bytes))) };
}

export async function checkpointScaling(): Promise<void> {
  const fractions = [0.01, 0.1];
  const small: SizeRun[] = [];
  for (let r = 0; r < RUNS; r++) small.push(await checkpointRun(1_000_000, fractions, 1000 + r));
  reportSize(1_000_000, small);
  const [one, ten] = [typical(small, 0), typical(small, 1)];
  console.log(`  scaling with the change, 1 M keys, 10 % vs 1 % changed (10× the change): time ×${ratio(ten.ms, one.ms)}, bytes ×${ratio(ten.bytes, one.bytes)}`);
  if (QUICK) {
    console.log('  10 M keys: skipped (BENCH_QUICK)');
    return;
  }
  // 10 M keys take ~3 minutes per run on the 2-core box: one run, 1 % changes only (100 k keys,
  // the change of the 1 M-key run at 10 %: equal change, ten times the total).
  const large = [await checkpointRun(10_000_000, [0.01], 7)];
  reportSize(10_000_000, large);
  const big = typical(large, 0);
  console.log(
    `  scaling with the total, 100 k keys changed, 10 M vs 1 M keys (10× the total): time ×${ratio(big.ms, ten.ms)}, bytes ×${ratio(big.bytes, ten.bytes)}; ` +
      `full snapshot ×${ratio(large[0]!.fullMs, median(small.map((r) => r.fullMs)))} time, ×${ratio(large[0]!.fullBytes, median(small.map((r) => r.fullBytes)))} bytes`,
  );
}

export async function checkpointIntervalThroughput(): Promise<void> {
  const events = QUICK ? 100_000 : 200_000;
  const on: number[] = [];
  const off: number[] = [];
  const checkpoints: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    // Alternate the order so that a drift of the shared machine's load hits both equally.
    const pair = r % 2 === 0 ? [1000, 3_600_000] : [3_600_000, 1000];
    for (const interval of pair) {
      const run = await cxThroughput({ workers: 1, events, checkpointIntervalMs: interval });
      (interval === 1000 ? on : off).push(run.eventsPerSecond);
      if (interval === 1000) checkpoints.push(run.checkpoints);
      console.log(
        `  run ${r + 1}: checkpoint interval ${interval} ms: ${Math.round(run.eventsPerSecond)} events/s (checkpoints: ${run.checkpoints} completed, ${run.checkpointsFailed} failed` +
          `${run.lastCheckpointFailure ? `, last failure: ${run.lastCheckpointFailure}` : ''})` +
          `${run.restarts > 0 ? `; job restarts ${run.restarts}, last failure: ${run.lastFailure}` : ''}`,
      );
    }
  }
  const a = median(on);
  const b = median(off);
  console.log(
    `customer-experience, 1 worker, ${events} events: checkpoint every 1 s ${Math.round(a)} events/s (${median(checkpoints)} checkpoints) vs every hour (effectively off) ${Math.round(b)} events/s; ratio ${ratio(a, b)}`,
  );
}

export async function checkpointBenchmarks(): Promise<void> {
  if (selected('checkpoint-size')) {
    console.log('--- checkpoint: duration and bytes vs change rate (in-process StateBackend + CheckpointWriter + FileObjectStore)');
    await checkpointScaling();
  }
  if (selected('checkpoint-interval')) {
    console.log('--- checkpoint: throughput with checkpoints every second vs effectively off');
    await checkpointIntervalThroughput();
  }
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await checkpointBenchmarks();
  });
}
