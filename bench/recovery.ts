// Recovery time on a real cluster (test kit: nats-server, a coordinator and 2 worker processes,
// file:// object store). customer-experience builds ~100 MB of keyed state over many entities;
// once a checkpoint has completed after the last record, one worker is killed with SIGKILL and
//  (a) the time from the kill to the coordinator's job state RUNNING again (restarts incremented),
//  (b) the time from the kill to the first record processed by the new owner: a probe event for an
//      entity in a key group of the killed worker, published right after the kill, counted in the
//      `received` feature (latest view).
// The worker is killed right after a checkpoint completes, and the probe is read by the killed
// worker's source split, so nothing the probe does reaches the dead worker. Two variants:
//  - default: checkpoints every second. The next checkpoint's barriers go to every key group,
//    and the survivor's barrier to a key group of the dead worker finds no subscriber: a task
//    failure, reported at once (the fast path), so detection takes up to one checkpoint interval.
//  - heartbeat: checkpoints every 10 s, so no barrier is sent before the coordinator's heartbeat
//    time-out (workerTimeoutMs, default 3000 ms, heartbeats every 500 ms) declares the worker dead.
//
//   node --import tsx bench/recovery.ts     (BENCH_RUNS, BENCH_QUICK=1 as for bench/run.ts)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, type ChildHandle } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { keyGroupForKey, partitionForKey } from '../core/key-groups.ts';
import { RULES } from '../jobs/customer-experience/rules.ts';
import { paddedReading, CX_JOB, CX_PARTITIONS, QUICK, RUNS, directoryBytes, isMain, keyedRecordsIn, machineLine, mb, median, prepublish, runMain, submitCx, waitForWorkers, type Indicator } from './lib.ts';

const WORKERS = 2;
/** One event per entity; each entity's state is its `latest` map entry (with the padded reading), its count, maybe a colour. */
const ENTITIES = QUICK ? 24_000 : 80_000;
/**
 * The job stores a reading's `ts` verbatim in the entity's `latest` map: a 1152-character string
 * there stands in for a larger reading, so ~100 MB of state takes 80 k events (with 60-byte
 * readings it would take ~1.3 M, minutes per run on this machine).
 */
const PAD = 1152;
const TYPES = Object.keys(RULES);
const POLL_MS = 10;

const entity = (i: number): string => `e${String(i).padStart(7, '0')}`;
const event = (i: number): Indicator => ({ entityId: entity(i), type: TYPES[i % TYPES.length]!, value: (i * 7919) % 150, ts: paddedReading(i, PAD) });

interface Variant {
  name: 'default' | 'heartbeat';
  /** Passed to the coordinator; undefined: its default (1000 ms). */
  checkpointIntervalMs?: number;
}
const VARIANTS: Variant[] = [{ name: 'default' }, { name: 'heartbeat', checkpointIntervalMs: 10_000 }];

interface RecoveryRun {
  variant: Variant;
  stateStoreBytes: number;
  rocksBytes: number[];
  buildSeconds: number;
  publishSeconds: number;
  /** The coordinator's "worker dead" log line: silentMs (heartbeat time-out) or reason (no responders). */
  dead: { silentMs?: number; reason?: string } | undefined;
  /** Kill → job state RUNNING again. */
  runningMs: number;
  /** Kill → the coordinator has noticed (restarts incremented). */
  detectedMs: number;
  /** Kill → probe counted by the new owner. */
  probeMs: number;
  /** The first "job restarting" of the coordinator after the kill: its offset from the kill and the failure it names. */
  restarting: { atMs: number; failure: string } | undefined;
  restore: { restoredKeyGroups?: number; bytesRead?: number; ms?: number } | undefined;
}

async function recoveryRun(variant: Variant): Promise<RecoveryRun> {
  const cluster = await startCluster({ workers: WORKERS, ...(variant.checkpointIntervalMs !== undefined && { checkpointIntervalMs: variant.checkpointIntervalMs }) });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-rec-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  // Polls during the recovery: short time-outs, so that a call stuck on the dead owner does not hide the moment it is back.
  const poller = new EddyClient({ address: cluster.address, timeoutMs: 1000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitForWorkers(client, WORKERS);
    const b0 = performance.now();
    await prepublish(cluster.nats.url, ENTITIES, event);
    const publishSeconds = (performance.now() - b0) / 1000;
    await submitCx(client, join(dir, 'cache'));
    await waitFor(async () => (await keyedRecordsIn(client)) >= ENTITIES, { timeoutMs: 600_000, what: 'state built', intervalMs: 100 });
    // A checkpoint that started after the last record and completed: the state to recover.
    const latest = Number((await client.getJob(CX_JOB)).checkpoints?.latestId ?? 0);
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints?.latestId ?? 0) >= latest + 2, { timeoutMs: 60_000, what: 'a checkpoint after the last record' });
    const buildSeconds = (performance.now() - b0) / 1000;

    const workers = (await client.listWorkers()).filter((w) => w.state === 'ALIVE');
    const victimInfo = workers.find((w) => w.workerId === 'worker-2')!;
    const survivorInfo = workers.find((w) => w.workerId !== 'worker-2')!;
    const assignment = (w: typeof victimInfo) => w.assignments.find((a) => a.jobId === CX_JOB)!;
    const victimGroups = assignment(victimInfo).keyGroups;
    const splits = new Set(assignment(victimInfo).sourceSplits);
    let probe: string | undefined;
    for (let i = 0; i < ENTITIES && probe === undefined; i++) {
      const id = entity(i);
      const kg = keyGroupForKey(id);
      if (victimGroups.some((r) => kg >= r.start && kg <= r.end) && splits.has(partitionForKey(id, CX_PARTITIONS))) probe = id;
    }
    if (probe === undefined) throw new Error(`no entity in worker-2's key groups read by split ${[...splits].join(',')}`);
    const count = async (): Promise<number> => {
      const [v] = await poller.batchGet(CX_JOB, 'received', [probe!], 'latest');
      return v?.found ? (JSON.parse(v.valueJson) as number) : 0;
    };
    const before = await count();

    const stateStoreBytes = await directoryBytes(join(cluster.storeDir, 'jobs', CX_JOB, 'state'));
    // A worker keeps its RocksDB under <--data>/<workerId>/jobs/<job>/state.
    const rocksBytes = await Promise.all(workers.map((w) => directoryBytes(join(cluster.dataDir, w.workerId, w.workerId, 'jobs', CX_JOB, 'state'))));
    const job0 = await client.getJob(CX_JOB);

    const publisher = new BulkPublisher(nc);
    const payload = new TextEncoder().encode(JSON.stringify({ entityId: probe, type: TYPES[0], value: 1, ts: 1 }));
    const victim: ChildHandle = cluster.workers.find((w) => w.name === 'worker worker-2')!;
    // Kill right after a checkpoint completes: the longest time before the next barrier.
    const completed = Number((await client.getJob(CX_JOB)).checkpoints?.completed ?? 0);
    await waitFor(async () => Number((await poller.getJob(CX_JOB)).checkpoints?.completed ?? 0) > completed, { timeoutMs: 60_000, what: 'a checkpoint to complete', intervalMs: POLL_MS });
    const killedAt = Date.now();
    const t0 = performance.now();
    victim.kill('SIGKILL');
    publisher.publishNow(`indicators.${partitionForKey(probe, CX_PARTITIONS)}`, payload);
    const flushed = publisher.flush();

    let detectedMs = NaN;
    let runningMs = NaN;
    const running = (async () => {
      for (;;) {
        const job = await poller.getJob(CX_JOB).catch(() => undefined);
        const now = performance.now() - t0;
        if (job && job.restarts > job0.restarts) {
          if (Number.isNaN(detectedMs)) detectedMs = now;
          if (job.state === 'RUNNING') return (runningMs = now), job;
        }
        if (job?.state === 'FAILED') throw new Error(`job failed: ${job.lastFailure?.message}`);
        if (now > 120_000) throw new Error('the job did not run again within 120 s of the kill');
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    })();
    const probed = (async () => {
      for (;;) {
        if ((await count().catch(() => before)) > before) return performance.now() - t0;
        if (performance.now() - t0 > 120_000) throw new Error('the probe was not processed within 120 s of the kill');
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    })();
    const [, probeMs] = await Promise.all([running, probed, flushed]);
    publisher.close();
    // The survivor's log says how many key groups it read from the object store, and how long that took.
    const survivor = cluster.workers.find((w) => w.name === `worker ${survivorInfo.workerId}`);
    const deployed = survivor
      ?.output()
      .split('\n')
      .filter((l) => l.includes('"msg":"job deployed"'))
      .pop();
    const restore = deployed ? (JSON.parse(deployed.slice(deployed.indexOf('{'))) as RecoveryRun['restore']) : undefined;
    const logged = (msg: string) =>
      cluster.coordinator
        .output()
        .split('\n')
        .filter((l) => l.includes(`"msg":"${msg}"`))
        .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as { time: number; reason?: string; silentMs?: number; failure?: string })
        .filter((l) => l.time >= killedAt);
    const dead = logged('worker dead')[0];
    const firstRestart = logged('job restarting')[0];
    const restarting = firstRestart && { atMs: firstRestart.time - killedAt, failure: firstRestart.failure ?? '' };
    return {
      variant,
      stateStoreBytes,
      rocksBytes,
      buildSeconds,
      publishSeconds,
      dead,
      runningMs,
      detectedMs,
      probeMs,
      restarting,
      restore,
    };
  } finally {
    client.close();
    poller.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function describe(r: RecoveryRun): string {
  const dead = r.dead ? (r.dead.reason ?? `silent ${r.dead.silentMs} ms`) : 'not logged';
  return `first "job restarting" at +${r.restarting?.atMs ?? '?'} ms: "${r.restarting?.failure ?? '?'}"; "worker dead": ${dead}`;
}

function report(variant: Variant, runs: RecoveryRun[]): void {
  const r0 = runs[0]!;
  const s = (f: (r: RecoveryRun) => number) => Math.round(median(runs.map(f)));
  console.log(
    `recovery, ${variant.name} (checkpoint interval ${variant.checkpointIntervalMs ?? 1000} ms, workerTimeoutMs 3000 default): ${WORKERS} workers, ${ENTITIES} entities; ` +
      `state: object store ${mb(median(runs.map((r) => r.stateStoreBytes)))}, RocksDB ${r0.rocksBytes.map(mb).join(' + ')}; medians of ${runs.length} run(s):`,
  );
  console.log(
    `  SIGKILL → detected ${s((r) => r.detectedMs)} ms → job RUNNING ${s((r) => r.runningMs)} ms; → first record processed by the new owner ${s((r) => r.probeMs)} ms ` +
      `(survivor read ${r0.restore?.restoredKeyGroups ?? '?'} key groups, ${mb(median(runs.map((r) => r.restore?.bytesRead ?? 0)))}, deploy ${s((r) => r.restore?.ms ?? NaN)} ms); ` +
      `RUNNING/probe per run: ${runs.map((r) => `${Math.round(r.runningMs)}/${Math.round(r.probeMs)}`).join(', ')} ms`,
  );
}

export async function recoveryBenchmarks(): Promise<void> {
  console.log(`--- recovery: SIGKILL of one of ${WORKERS} workers holding ~${QUICK ? 30 : 100} MB of state (object store)`);
  for (const variant of VARIANTS) {
    const runs: RecoveryRun[] = [];
    for (let r = 0; r < RUNS; r++) {
      const run = await recoveryRun(variant);
      runs.push(run);
      console.log(
        `  run ${r + 1} (${variant.name}): state built in ${run.buildSeconds.toFixed(1)} s (published in ${run.publishSeconds.toFixed(1)} s); ` +
          `detected ${Math.round(run.detectedMs)} ms, RUNNING ${Math.round(run.runningMs)} ms, probe ${Math.round(run.probeMs)} ms; ${describe(run)}`,
      );
    }
    report(variant, runs);
  }
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await recoveryBenchmarks();
  });
}
