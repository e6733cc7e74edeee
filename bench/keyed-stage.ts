// customer-experience's keyed stage in process (issue 15): its records through the worker's own
// KeyedRecords (pooled contexts, atomic records, feature event times) over a real StateBackend
// (RocksDB), a checkpoint every CHECKPOINT_RECORDS records (freeze, the delta encoded and written to a
// file:// object store as the worker's CheckpointWriter does, commit), in batches of one
// key group as the shuffle delivers them. No NATS, no other process: what the keyed stage itself
// costs per record, steadier than the whole worker on a shared machine. The baseline, measured in
// the same run: the same logic on decoded objects in a Map (the floor issue 15 names).
//
// 10,000 entities fit the state caches; 99,999 (~800 k live entries) do not: a working set larger
// than the cache.
//
//   node --import tsx bench/keyed-stage.ts [records] [entities]   (default 200000 records, 10000 and 99999 entities; BENCH_RUNS, BENCH_CHECKPOINT_RECORDS)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyGroupForKey } from '../core/key-groups.ts';
import { encodeCheckpointObject } from '../core/checkpoint-format.ts';
import { FileObjectStore } from '../core/object-store.ts';
import type { Record } from '../core/record-batch.ts';
import type { StageSpec } from '../core/manifest.ts';
import type { JobId, StageId } from '../core/ids.ts';
import { mapState, valueState, type StateDescriptor } from '../sdk/index.ts';
import { StateBackend } from '../worker/state/state-backend.ts';
import { featureStates } from '../worker/state/index.ts';
import { KeyedRecords, type ProcessFn } from '../worker/task/keyed-records.ts';
import type { KeyedContext, KeyedServices } from '../worker/task/keyed-context.ts';
import type { KeyedTime } from '../worker/task/keyed-time.ts';
import type { StageOutput } from '../worker/task/stage-output.ts';
import type { DeadLetters } from '../worker/task/dead-letters.ts';
import { ErrorPolicy } from '../worker/task/error-policy.ts';
import { StageCounters } from '../worker/task/stage-counters.ts';
import { generateIndicators } from '../jobs/customer-experience/generate.ts';
import { colourOf, type Colour, type Indicator, type IndicatorValue } from '../jobs/customer-experience/rules.ts';
import { RUNS, isMain, machineLine, median, runMain, threadCpuSeconds } from './lib.ts';

const STAGE = 'indicator-state';
const MAX_PARALLELISM = 128;
/** Records per batch: what a shuffle batch carried in bench/profile.ts's runs (30–50). */
const BATCH_RECORDS = 45;
/** ~1 s of records at the rates measured: checkpoints every second (BENCH_CHECKPOINT_RECORDS: other intervals, to see what checkpoints cost). */
const CHECKPOINT_RECORDS = Number(process.env.BENCH_CHECKPOINT_RECORDS ?? 30_000);

// The job's states and function (jobs/customer-experience/job.ts), the history side output included.
const latest = mapState<IndicatorValue>('latest');
const colours = mapState<Colour>('colour');
const received = valueState<number>('received');
const DESCRIPTORS: StateDescriptor[] = [latest, colours, received];

const processIndicator: ProcessFn = async (value, ctx: KeyedContext) => {
  const e = value as Indicator;
  const colour = colourOf(e);
  ctx.state(latest).put(e.type, { value: e.value, ts: e.ts, colour });
  ctx.output('history', { entityId: e.entityId, type: e.type, value: e.value, ts: e.ts, colour });
  const count = ctx.state(received);
  count.update(((await count.value()) ?? 0) + 1);
  const colourState = ctx.state(colours);
  const previous = (await colourState.get(e.type)) ?? 'GREEN';
  if (previous !== colour) colourState.put(e.type, colour);
  if (previous === 'GREEN' && colour === 'RED') ctx.emit({ entityId: e.entityId, type: e.type, value: e.value, ts: e.ts });
};

/** The records as the shuffle delivers them: batches of one key group, BATCH_RECORDS at most. */
function batches(records: number, entities: number): Array<{ keyGroup: number; records: Record[] }> {
  const open = new Map<number, Record[]>();
  const out: Array<{ keyGroup: number; records: Record[] }> = [];
  for (const [i, line] of generateIndicators({ events: records, entities }).entries()) {
    const value = JSON.parse(line) as Indicator;
    const keyGroup = keyGroupForKey(value.entityId, MAX_PARALLELISM);
    let batch = open.get(keyGroup);
    if (batch === undefined) open.set(keyGroup, (batch = []));
    batch.push({ key: value.entityId, timestamp: value.ts, value, origin: i });
    if (batch.length === BATCH_RECORDS) {
      out.push({ keyGroup, records: batch });
      open.delete(keyGroup);
    }
  }
  for (const [keyGroup, rest] of open) out.push({ keyGroup, records: rest });
  return out;
}

/** CPU µs of this process's main thread so far (its thread id is the process id). */
async function mainThreadCpuUs(): Promise<number> {
  return (await threadCpuSeconds(process.pid)).get(process.pid)!.seconds * 1e6;
}

interface StageCost {
  /** CPU µs per record, every thread of the process (GC helpers, RocksDB's threads). */
  processUs: number;
  /** CPU µs per record of the main thread: the stage's own code, less disturbed by background work. */
  mainUs: number;
  /** Entries written to RocksDB per record (puts and deletes of completed checkpoints). */
  writtenPerRecord: number;
}

/** CPU per record of the keyed stage, checkpoints included. */
async function keyedStage(input: Array<{ keyGroup: number; records: Record[] }>, total: number): Promise<StageCost> {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-keyed-stage-'));
  const backend = await StateBackend.open({ path: join(dir, 'db') });
  try {
    const spec = { features: [{ name: 'indicators', state: 'latest' }, { name: 'received', state: 'received' }], states: DESCRIPTORS.map((d) => ({ name: d.name, kind: d.kind })) } as unknown as StageSpec;
    const counters = new StageCounters(STAGE);
    let emitted = 0;
    // One services object for every key group: the pools only need it to stay the same.
    const services: KeyedServices = { features: featureStates(spec), clock: Date.now, emitSide: () => void emitted++ };
    const time = { services: () => services } as unknown as KeyedTime;
    const output = { atomically: (run: () => void) => run(), setOrigin: () => undefined, emit: () => void emitted++ } as unknown as StageOutput;
    const deadLetters = { publish: () => undefined } as unknown as DeadLetters;
    const records = new KeyedRecords({
      stageId: STAGE as StageId,
      stageIndex: 0,
      backend,
      output,
      counters,
      errorPolicy: new ErrorPolicy({ policy: 'dead-letter', jobId: 'bench' as JobId, stageId: STAGE, deadLetters, counters }),
      time,
      declared: new Map(DESCRIPTORS.map((d) => [d.name, d.kind])),
      broadcastStates: new Set(),
      inputFns: [processIndicator],
      inputOf: () => ({ index: 0, kind: 'keyed' }),
    });
    const store = new FileObjectStore(join(dir, 'checkpoints'));
    /** A checkpoint as the worker takes one: freeze, upload the delta (checkpoint-writer.ts), commit. */
    const checkpointOnce = async (id: number): Promise<void> => {
      backend.freeze(id);
      for (const { stage, groups } of backend.frozenColumns(id)) if (groups.length > 0) await store.put(`delta/${stage}/${id}`, encodeCheckpointObject(stage, groups));
      await backend.commit(id);
    };
    let checkpoint = 0;
    let sinceCheckpoint = 0;
    const t0 = process.cpuUsage();
    const m0 = await mainThreadCpuUs();
    for (const batch of input) {
      await records.processBatch({ sender: 'split0@e1', keyGroup: batch.keyGroup } as never, batch.records);
      sinceCheckpoint += batch.records.length;
      if (sinceCheckpoint >= CHECKPOINT_RECORDS) {
        sinceCheckpoint = 0;
        await checkpointOnce(++checkpoint);
      }
    }
    await checkpointOnce(++checkpoint);
    const used = process.cpuUsage(t0);
    const main = (await mainThreadCpuUs()) - m0;
    if (emitted < total) throw new Error(`only ${emitted} outputs for ${total} records`);
    return { processUs: (used.user + used.system) / total, mainUs: main / total, writtenPerRecord: backend.storeStats.writtenEntries / total };
  } finally {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The baseline: the same logic on decoded per-key objects in a Map, no checkpoints. */
async function plainMap(input: Array<{ keyGroup: number; records: Record[] }>, total: number): Promise<number> {
  const state = new Map<string, { latest: Map<string, IndicatorValue>; colours: Map<string, Colour>; received: number; eventTime: number }>();
  let triggers = 0;
  const t0 = process.cpuUsage();
  for (const batch of input) {
    for (const r of batch.records) {
      const e = r.value as Indicator;
      let s = state.get(r.key);
      if (s === undefined) state.set(r.key, (s = { latest: new Map(), colours: new Map(), received: 0, eventTime: 0 }));
      const colour = colourOf(e);
      s.latest.set(e.type, { value: e.value, ts: e.ts, colour });
      s.received++;
      s.eventTime = r.timestamp;
      const previous = s.colours.get(e.type) ?? 'GREEN';
      if (previous !== colour) s.colours.set(e.type, colour);
      if (previous === 'GREEN' && colour === 'RED') triggers++;
    }
    await undefined;
  }
  const used = process.cpuUsage(t0);
  if (state.size === 0 || triggers === 0) throw new Error('the baseline did nothing');
  return (used.user + used.system) / total;
}

export async function keyedStageBenchmark(total: number, entities: number): Promise<{ stageUs: number; mainUs: number; mapUs: number; writtenPerRecord: number }> {
  const input = batches(total, entities);
  const stage: StageCost[] = [];
  const map: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    stage.push(await keyedStage(input, total));
    map.push(await plainMap(input, total));
  }
  return { stageUs: median(stage.map((s) => s.processUs)), mainUs: median(stage.map((s) => s.mainUs)), mapUs: median(map), writtenPerRecord: median(stage.map((s) => s.writtenPerRecord)) };
}

/** bench/run.ts's `keyed` group: both sizes (or the ones given). */
export async function keyedStageBenchmarks(total = 200_000, sizes: readonly number[] = [10_000, 99_999]): Promise<void> {
  console.log(`--- keyed: customer-experience's keyed stage in process, ${total} records, ${BATCH_RECORDS} a batch, a checkpoint every ${CHECKPOINT_RECORDS}; baseline: the same logic on objects in a Map`);
  for (const entities of sizes) {
    const { stageUs, mainUs, mapUs, writtenPerRecord } = await keyedStageBenchmark(total, entities);
    console.log(`  ${entities} entities: ${stageUs.toFixed(2)} µs of CPU per record (main thread ${mainUs.toFixed(2)} µs); on objects in a Map ${mapUs.toFixed(2)} µs; ratio ${(stageUs / mapUs).toFixed(1)}; ${writtenPerRecord.toFixed(2)} RocksDB writes per record (medians of ${RUNS})`);
  }
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await keyedStageBenchmarks(Number(process.argv[2] ?? 200_000), process.argv[3] === undefined ? undefined : [Number(process.argv[3])]);
  });
}
