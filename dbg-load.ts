import { startCluster, waitFor, submitCx, CX_JOB, cxEvents, publishSteadily } from './test/kit/index.ts';
import { EddyClient } from './cli/client.ts';
import { connect } from '@nats-io/transport-node';
const cluster = await startCluster({ workers: 2 });
const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
const nc = await connect({ servers: cluster.nats.url });
try {
  await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two' });
  await submitCx(client, '/tmp/dbg-cache');
  const t0 = Date.now();
  await publishSteadily(nc, cxEvents(100_000, 1_000, 3), 1_000).done;
  console.log('published', Date.now() - t0);
  await waitFor(async () => Number((await client.getJob(CX_JOB)).stages[1]!.recordsIn) >= 100_000, { timeoutMs: 60_000, what: 'all' });
  console.log('processed', Date.now() - t0, JSON.stringify((await client.getJob(CX_JOB)).checkpoints), (await client.getJob(CX_JOB)).restarts);
} finally {
  for (const p of [cluster.coordinator, ...cluster.workers]) console.log(`--- ${p.name}\n${p.output().split('\n').filter((l) => l.includes('"level":4') || l.includes('"level":5') || l.includes('lag')).slice(-8).join('\n').slice(0, 3000)}`);
  await nc.close(); client.close(); await cluster.stop();
}
