// Throughput on a three-node NATS cluster with every stream and the KV bucket replicated three
// times (R3) against once (R1), in the same run (docs/BENCHMARKS.md, "Standby coordinators and a
// NATS cluster (issue 18)"). Per run and replica count: a fresh three-node cluster, the
// customer-experience source stream created with that many replicas and filled by the bulk
// publisher (events/s into the stream), then a coordinator (--nats-replicas) and two workers
// process it (events/s from submit until the keyed stage has every event), with the CPU seconds
// of the Eddy processes and of the nats-servers over that time, per event.
//
//   node --import tsx bench/nats-replicas.ts        (BENCH_RUNS runs, 3 by default; BENCH_QUICK=1: fewer events)
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startCoordinator, startWorker, waitFor, type EddyProcess, type CoordinatorHandle } from '../test/kit/index.ts';
import { startNatsCluster } from '../test/kit/nats-cluster.ts';
import { EddyClient } from '../cli/client.ts';
import { ensureSourceStream } from '../core/nats.ts';
import { partitionForKey } from '../core/key-groups.ts';
import { BulkPublisher } from '../core/jetstream-publisher.ts';
import { CX_PARTITIONS, QUICK, RUNS, cpuSeconds, cxEvent, isMain, keyedRecordsIn, machineLine, median, runMain, submitCx, waitForWorkers } from './lib.ts';
import os from 'node:os';

const EVENTS = QUICK ? 50_000 : 200_000;
const WORKERS = 2;

interface ReplicaRun {
  publishPerSecond: number;
  jobPerSecond: number;
  /** CPU of the coordinator and workers per event, in µs. */
  eddyCpuUsPerEvent: number;
  /** CPU of the three nats-servers per event while the job ran, in µs. */
  natsCpuUsPerEvent: number;
  loadAverage: number;
}

async function once(replicas: number): Promise<ReplicaRun> {
  const nats = await startNatsCluster(3);
  const root = await mkdtemp(join(tmpdir(), 'eddy-bench-replicas-'));
  const storeDir = join(root, 'store');
  await mkdir(storeDir);
  let coordinator: CoordinatorHandle | undefined;
  const workers: EddyProcess[] = [];
  let client: EddyClient | undefined;
  const nc = await connect({ servers: nats.url.split(',') });
  try {
    await ensureSourceStream(nc, { stream: 'indicators', partitions: CX_PARTITIONS, partitionKey: 'entityId' }, replicas);
    const publisher = new BulkPublisher(nc, { window: 4000 });
    const encoder = new TextEncoder();
    const p0 = performance.now();
    for (let i = 0; i < EVENTS; i++) {
      const e = cxEvent(i);
      await publisher.publish(`indicators.${partitionForKey(e.entityId, CX_PARTITIONS)}`, encoder.encode(JSON.stringify(e)));
    }
    await publisher.flush();
    publisher.close();
    const publishPerSecond = EVENTS / ((performance.now() - p0) / 1000);

    coordinator = await startCoordinator({ natsUrl: nats.url, storeDir, natsReplicas: replicas });
    for (let w = 1; w <= WORKERS; w++) {
      const id = `worker-${w}`;
      await mkdir(join(root, id));
      workers.push(await startWorker({ natsUrl: nats.url, workerId: id, dataDir: join(root, id), storeDir }));
    }
    client = new EddyClient({ address: coordinator.address, timeoutMs: 10_000 });
    await waitForWorkers(client, WORKERS);
    const eddyPids = [coordinator.pid, ...workers.map((w) => w.pid)];
    const natsPids = nats.nodes.map((n) => n.process!.pid);
    const cpu = async (pids: number[]) => (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0);
    const [eddy0, nats0] = [await cpu(eddyPids), await cpu(natsPids)];
    const t0 = performance.now();
    await submitCx(client, join(root, 'cache'));
    await waitFor(async () => (await keyedRecordsIn(client!)) >= EVENTS, { timeoutMs: 600_000, intervalMs: 50, what: 'all events processed' });
    const seconds = (performance.now() - t0) / 1000;
    const [eddy1, nats1] = [await cpu(eddyPids), await cpu(natsPids)];
    return {
      publishPerSecond,
      jobPerSecond: EVENTS / seconds,
      eddyCpuUsPerEvent: ((eddy1 - eddy0) / EVENTS) * 1e6,
      natsCpuUsPerEvent: ((nats1 - nats0) / EVENTS) * 1e6,
      loadAverage: os.loadavg()[0]!,
    };
  } finally {
    client?.close();
    await nc.close();
    await coordinator?.stop();
    await Promise.all(workers.map((w) => w.stop()));
    await nats.stop();
    await rm(root, { recursive: true, force: true });
  }
}

export async function natsReplicasBench(): Promise<void> {
  console.log(`## NATS replicas: customer-experience on a three-node cluster, R1 against R3 (${EVENTS} events, ${WORKERS} workers, ${RUNS} runs, medians)`);
  console.log(machineLine());
  const runs = new Map<number, ReplicaRun[]>([[1, []], [3, []]]);
  // Alternated, so that a change in the machine's load falls on both.
  for (let r = 0; r < RUNS; r++) {
    for (const replicas of [1, 3]) {
      const run = await once(replicas);
      runs.get(replicas)!.push(run);
      console.log(`run ${r + 1} R${replicas}: publish ${Math.round(run.publishPerSecond)}/s, job ${Math.round(run.jobPerSecond)}/s, Eddy CPU ${run.eddyCpuUsPerEvent.toFixed(1)} µs/event, NATS CPU ${run.natsCpuUsPerEvent.toFixed(1)} µs/event, load ${run.loadAverage.toFixed(1)}`);
    }
  }
  console.log('| replicas | publish (events/s) | job (events/s) | Eddy CPU (µs/event) | nats-servers CPU (µs/event) | load average |');
  console.log('|---|---|---|---|---|---|');
  for (const [replicas, rs] of runs) {
    const m = (f: (r: ReplicaRun) => number) => median(rs.map(f));
    console.log(`| R${replicas} | ${Math.round(m((r) => r.publishPerSecond))} | ${Math.round(m((r) => r.jobPerSecond))} | ${m((r) => r.eddyCpuUsPerEvent).toFixed(1)} | ${m((r) => r.natsCpuUsPerEvent).toFixed(1)} | ${m((r) => r.loadAverage).toFixed(1)} |`);
  }
}

if (isMain(import.meta.url)) runMain(natsReplicasBench);
