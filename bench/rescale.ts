// Rescaling a running job (issue "Elastic workers"): a real cluster (test kit: nats-server, a
// coordinator, worker processes, file:// store) runs customer-experience over a backlog of padded
// events (bench/recovery.ts's trick: a long `ts` string stands in for a large reading), so that
// the state is large; then a second worker joins while the backlog is still being processed.
//  - pause of a moving key group: the new owner's "move done" log line (pausedMs: from its cut at
//    the move's barrier to its activation, i.e. loading the key group's state from the checkpoint);
//  - join → balanced: from starting the second worker to the coordinator's assignment being
//    balanced (64/64 key groups);
//  - throughput dip: keyed-stage records/s while the moves run, against the 1-worker rate over
//    the seconds before the join (the baseline of the same run).
//
//   node --import tsx bench/rescale.ts     (BENCH_RUNS, BENCH_QUICK=1 as for bench/run.ts)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, waitFor } from '../test/kit/index.ts';
import { EddyClient } from '../cli/client.ts';
import { keyGroupsOf } from '../core/key-groups.ts';
import { RULES } from '../jobs/customer-experience/rules.ts';
import { CX_JOB, QUICK, RUNS, isMain, keyedRecordsIn, machineLine, mb, median, prepublish, runMain, submitCx, waitForWorkers, type Indicator } from './lib.ts';

const ENTITIES = QUICK ? 40_000 : 80_000;
/**
 * The first ENTITIES events are padded (they build the state the moves carry); the rest are
 * small events for the same entities, still in the backlog when the worker joins, so that the
 * job runs flat out before, during and after the rebalance.
 */
const EVENTS = ENTITIES + (QUICK ? 300_000 : 500_000);
const PAD = 1152;
const TYPES = Object.keys(RULES);

function pad(i: number): string {
  let s = (i * 2654435761) >>> 0;
  let out = '';
  while (out.length < PAD) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out += s.toString(16).padStart(8, '0');
  }
  return out.slice(0, PAD);
}
const event = (i: number): Indicator => ({ entityId: `e${String(i % ENTITIES).padStart(7, '0')}`, type: TYPES[i % TYPES.length]!, value: (i * 7919) % 150, ts: i < ENTITIES ? pad(i) : i });

interface RescaleRun {
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
  try {
    await waitForWorkers(client, 1);
    await prepublish(cluster.nats.url, EVENTS, event);
    await submitCx(client, join(dir, 'cache'));
    // The padded events through and a checkpoint of them, then the 1-worker rate over a few seconds.
    await waitFor(async () => (await keyedRecordsIn(client)) >= ENTITIES * 1.2, { timeoutMs: 600_000, what: 'the state built', intervalMs: 200 });
    const latest = Number((await client.getJob(CX_JOB)).checkpoints?.latestId ?? 0);
    await waitFor(async () => Number((await client.getJob(CX_JOB)).checkpoints?.latestId ?? 0) > latest, { timeoutMs: 120_000, what: 'a checkpoint of the state', intervalMs: 100 });
    const r0 = await keyedRecordsIn(client);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 3000)); // a measuring window, not a wait for an outcome
    const baselinePerSecond = ((await keyedRecordsIn(client)) - r0) / ((performance.now() - t0) / 1000);

    const joinAt = performance.now();
    const r1 = await keyedRecordsIn(client);
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
    const processed = (await keyedRecordsIn(client)) - r1;
    if (r1 + processed >= EVENTS) throw new Error('the backlog ran out during the rebalance: raise EVENTS');
    const duringPerSecond = processed / ((performance.now() - joinAt) / 1000);
    const done = joined
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"move done"'))
      .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as { pausedMs?: number; bytesRead?: number; loadedKeyGroups?: number });
    return { stateBytes: done.reduce((n, d) => n + (d.bytesRead ?? 0), 0), movedKeyGroups: done.reduce((n, d) => n + (d.loadedKeyGroups ?? 0), 0), movesPausedMs: done.map((d) => d.pausedMs ?? NaN).filter((x) => !Number.isNaN(x)), moves: done.length, joinToBalancedMs, baselinePerSecond, duringPerSecond };
  } finally {
    client.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function rescaleBenchmarks(): Promise<void> {
  console.log(`--- rescale: customer-experience, 1 → 2 workers while a backlog of ${EVENTS} events (${ENTITIES} of them padded to ~1.2 KB of state each) is processed (32 key groups per move)`);
  const runs: RescaleRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await rescaleRun();
    runs.push(r);
    console.log(
      `run ${i + 1}: ${r.movedKeyGroups} key groups moved with ${mb(r.stateBytes)} of state (≈${mb(r.stateBytes / r.movedKeyGroups)} per key group); ${r.moves} moves, paused ${r.movesPausedMs.map((x) => `${x} ms`).join(', ')}; join → balanced ${Math.round(r.joinToBalancedMs)} ms; ` +
        `${Math.round(r.duringPerSecond)} records/s during the rebalance vs ${Math.round(r.baselinePerSecond)} before (ratio ${(r.duringPerSecond / r.baselinePerSecond).toFixed(2)})`,
    );
  }
  const paused = runs.flatMap((r) => r.movesPausedMs);
  console.log(
    `median of ${RUNS}: moving key group paused p50 ${median(paused)} ms, max ${Math.max(...paused)} ms (${mb(median(runs.map((r) => r.stateBytes / r.movedKeyGroups)))} per key group); ` +
      `join → balanced ${Math.round(median(runs.map((r) => r.joinToBalancedMs)))} ms; throughput during the rebalance / before: ${median(runs.map((r) => r.duringPerSecond / r.baselinePerSecond)).toFixed(2)}`,
  );
}

if (isMain(import.meta.url)) {
  runMain(async () => {
    console.log(machineLine());
    await rescaleBenchmarks();
  });
}
