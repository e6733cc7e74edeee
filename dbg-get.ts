import { startCluster, waitFor, submitCx, CX_JOB, cxEvents, publishSteadily } from './test/kit/index.ts';
import { EddyClient } from './cli/client.ts';
import { connect } from '@nats-io/transport-node';
import { codecs } from './core/control.ts';
const cluster = await startCluster({ workers: 2 });
const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
const nc = await connect({ servers: cluster.nats.url });
try {
  await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two' });
  await submitCx(client, '/tmp/dbg-cache');
  await publishSteadily(nc, cxEvents(20_000, 1_000, 3), 5_000).done;
  await waitFor(async () => Number((await client.getJob(CX_JOB)).stages[1]!.recordsIn) >= 20_000, { timeoutMs: 60_000, what: 'all' });
  for (const view of ['latest', 'committed'] as const) {
    const ts: number[] = [];
    for (let i = 0; i < 300; i++) { const t0 = performance.now(); await client.get(CX_JOB, 'indicators', `e${i % 1000}`, view); ts.push(performance.now() - t0); }
    ts.sort((a, b) => a - b);
    console.log(view, 'grpc p50', ts[150]!.toFixed(2), 'p99', ts[297]!.toFixed(2));
    const ns: number[] = [];
    for (let i = 0; i < 300; i++) {
      const id = `e${i % 1000}`;
      const { keyGroupForKey } = await import('./core/key-groups.ts');
      const t0 = performance.now();
      const r = await nc.request(`eddy.q.${CX_JOB}.${keyGroupForKey(id, 128)}`, codecs.queryRequest.encode({ feature: 'indicators', entityIds: [id], view: view === 'latest' ? 0 : 1, epoch: 0, asOfUnixMs: 0, hasAsOf: false }), { timeout: 2000 });
      ns.push(performance.now() - t0);
      if (i === 0) console.log(codecs.queryReply.decode(r.data).error);
    }
    ns.sort((a, b) => a - b);
    console.log(view, 'nats p50', ns[150]!.toFixed(2), 'p99', ns[297]!.toFixed(2));
  }
} finally {
  await nc.close(); client.close(); await cluster.stop();
}
