// Rescaling a running job (docs/ARCHITECTURE.md, "Moves"): a real cluster (test kit: nats-server, a
// coordinator, worker processes, file:// store) runs customer-experience; padded events
// (bench/recovery.ts's trick: a long `ts` string stands in for a large reading) build a large
// state, then events arrive at a steady rate and a second worker joins.
//  - pause of a moving key group: the new owner's "move done" log line (pausedMs: from its cut at
//    the move's barrier to its activation, i.e. the checkpoint completing and the key group's
//    state loaded from it);
//  - join → balanced: from starting the second worker to the coordinator's assignment being
//    balanced (64/64 key groups);
//  - throughput dip: the slowest 500 ms of keyed-stage records/s while the moves run, against the
//    median rate over the 5 s before the join (the baseline of the same run).
//
//   node --import tsx bench/rescale.ts     (BENCH_RUNS, BENCH_QUICK=1 as for bench/run.ts)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor, publishSteadily } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { keyGroupsOf } from '../core/key-groups.ts';
import { RULES } from '../jobs/customer-experience/rules.ts';
import { paddedReading, CX_JOB, QUICK, RUNS, isMain, keyedRecordsIn, machineLine, mb, median, prepublish, runMain, submitCx, waitForWorkers, type Indicator } from './lib.ts';

const ENTITIES = QUICK ? 40_000 : 80_000;
/** After the state is built, events arrive at this steady rate (below one worker's capacity). */
const RATE_PER_SECOND = 4_000;
const PAD = 1152;
const TYPES = Object.keys(RULES);

const event = (i: number): Indicator => ({ entityId: `e${String(i % ENTITIES).padStart(7, '0')}`, type: TYPES[i % TYPES.length]!, value: (i * 7919) % 150, ts: i < ENTITIES ? paddedReading(i, PAD) : i });
/** Steady input after the padded events: entities as before, small readings. */
const steady = (n: number): Array<{ entityId: string; type: string; value: number; ts: number }> =>
  Array.from({ length: n }, (_, k) => {
    const i = ENTITIES + k;
    return { entityId: `e${String(i % ENTITIES).padStart(7, '0')}`, type: TYPES[i % TYPES.length]!, value: (i * 7919) % 150, ts: i };
  });

interface RescaleRun {
  /** Slowest 500 ms of the keyed stage during the moves vs the median before the join, records/s. */
  /** Bytes the new owner read from the checkpoint for the key groups it took over. */
  stateBytes: number;
  movedKeyGroups: number;
  movesPausedMs: number[];
  moves: number;
  joinToBalancedMs: number;
  baselinePerSecond: number;
  duringPerSecond: number;
}

async function rescaleRun(): Promise<RescaleRun> {
  const cluster = await startCluster({ workers: 1, workerTimeoutMs: 10_000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-bench-rescale-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 30_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitForWorkers(client, 1);
    await prepublish(cluster.nats.url, ENTITIES, event);
    await submitCx(client, join(dir, 'cache'));
    await waitFor(async () => (await keyedRecordsIn(client)) >= ENTITIES, { timeoutMs: 600_000, what: 'the state built', intervalMs: 200 });
    const latest = Number((await client.getJob(CX_JOB)).checkpoints?.latestId ?? 0);
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints?.latestId ?? 0) > latest + 1, { timeoutMs: 120_000, what: 'checkpoints of the state', intervalMs: 100 });
    // Steady input; records/s of the keyed stage sampled every 500 ms, before and during the moves.
    const producer = publishSteadily(nc, steady(RATE_PER_SECOND * 120), RATE_PER_SECOND / 10);
    const samples: Array<{ atMs: number; records: number }> = [];
    const sample = async () => samples.push({ atMs: performance.now(), records: await keyedRecordsIn(client) });
    const sampler = setInterval(() => void sample(), 500);
    try {
      await new Promise((r) => setTimeout(r, 5000)); // the steady-state window before the join, not a wait for an outcome
      const joinAt = performance.now();
      const joined = await cluster.addWorker('worker-2');
      await waitFor(
        async () => {
          const counts = (await client.listWorkers()).map((w) => [...keyGroupsOf(w.assignments.find((a) => a.jobId === CX_JOB)?.keyGroups.map((r) => ({ start: r.start, end: r.end })) ?? [])].length);
          return counts.length === 2 && counts.every((n) => n === 64);
        },
        { timeoutMs: 300_000, what: 'a balanced assignment', intervalMs: 20 },
      );
      const joinToBalancedMs = performance.now() - joinAt;
      // The last move is balanced in the assignment at its prepare: wait for it to be done.
      await waitFor(() => joined.output().split('\n').filter((l) => l.includes('"msg":"move done"')).length >= Math.ceil(64 / 32), { timeoutMs: 120_000, what: 'the moves to finish' });
      const movedAt = performance.now();
      const rate = (from: number, to: number) => {
        const window = samples.filter((s) => s.atMs >= from && s.atMs <= to);
        const rates: number[] = [];
        for (let k = 1; k < window.length; k++) rates.push(((window[k]!.records - window[k - 1]!.records) * 1000) / (window[k]!.atMs - window[k - 1]!.atMs));
        return rates;
      };
      const before = rate(joinAt - 5000, joinAt);
      const during = rate(joinAt, movedAt);
      const baselinePerSecond = median(before);
      const duringPerSecond = during.length > 0 ? Math.min(...during) : NaN;
      const done = joined
        .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"move done"'))
      .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as { pausedMs?: number; bytesRead?: number; loadedKeyGroups?: number });
      return { stateBytes: done.reduce((n, d) => n + (d.bytesRead ?? 0), 0), movedKeyGroups: done.reduce((n, d) => n + (d.loadedKeyGroups ?? 0), 0), movesPausedMs: done.map((d) => d.pausedMs ?? NaN).filter((x) => !Number.isNaN(x)), moves: done.length, joinToBalancedMs, baselinePerSecond, duringPerSecond };
    } finally {
      clearInterval(sampler);
      producer.stop();
    }
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function rescaleBenchmarks(): Promise<void> {
  console.log(`--- rescale: customer-experience, ${ENTITIES} entities with ~1.2 KB of state each, then ${RATE_PER_SECOND} events/s; a second worker joins (32 key groups per move)`);
  const runs: RescaleRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await rescaleRun();
    runs.push(r);
    console.log(
      `run ${i + 1}: ${r.movedKeyGroups} key groups moved with ${mb(r.stateBytes)} of state (≈${mb(r.stateBytes / r.movedKeyGroups)} per key group); ${r.moves} moves, paused ${r.movesPausedMs.map((x) => `${x} ms`).join(', ')}; join → balanced ${Math.round(r.joinToBalancedMs)} ms; ` +
        `slowest 500 ms during the moves ${Math.round(r.duringPerSecond)} records/s vs ${Math.round(r.baselinePerSecond)} before (ratio ${(r.duringPerSecond / r.baselinePerSecond).toFixed(2)})`,
    );
  }
  const paused = runs.flatMap((r) => r.movesPausedMs);
  console.log(
    `median of ${RUNS}: moving key group paused p50 ${median(paused)} ms, max ${Math.max(...paused)} ms (${mb(median(runs.map((r) => r.stateBytes / r.movedKeyGroups)))} per key group); ` +
      `join → balanced ${Math.round(median(runs.map((r) => r.joinToBalancedMs)))} ms; slowest 500 ms during the moves / steady rate before: ${median(runs.map((r) => r.duringPerSecond / r.baselinePerSecond)).toFixed(2)}`,
  );
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await rescaleBenchmarks();
  });
}
