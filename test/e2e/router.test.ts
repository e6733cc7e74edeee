// The router end to end with real processes (nats-server, a coordinator, two workers, then a
// replacement), built from jobs/router/routes.json with no user code: orders fanned out to
// several subjects through filters and projections, a route added on the control stream mid-run,
// malformed orders and a malformed route to the dead-letter subject, a worker SIGKILLed while
// orders flow. The output per subject is compared exactly with what this file computes from the
// routes restated as plain functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { checkpointsOrIdle, startCluster, waitFor, readStream, REPO_ROOT, type ChildHandle, type StoredMessage } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { keyGroupForKey, partitionForKey } from '../../core/key-groups.ts';
import { generateOrders, type Order } from '../../jobs/router/generate.ts';

const JOB = 'router';

/** JSON with object keys sorted: outputs compare by content, not by field order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

// routes.json, restated.
const rentals = (o: Order) => (o.price > 5 && o.type === 'Rental' ? { id: o.id, price: o.price, city: o.customer.address.city } : undefined);
const goldEu = (o: Order) => (o.customer.tier === 'gold' && ['FR', 'DE', 'GB'].includes(o.customer.address.country) ? { id: o.id, type: o.type, customer: o.customer.id, firstSku: o.items[0]!.sku } : undefined);
// The route added at run time.
const refundsFr = (o: Order) => (o.type === 'Refund' && o.customer.address.country === 'FR' ? { order: o.id, amount: { value: o.price }, tier: o.customer.tier } : undefined);
const ADDED_ROUTE = {
  id: 'refunds-fr',
  filter: 'type == "Refund" and customer.address.country == "FR"',
  project: { order: 'id', 'amount.value': 'price', tier: 'customer.tier' },
  to: ['refunds.fr'],
};

/** Subject → sorted canonical outputs. */
function expectedOutputs(orders: readonly Order[], withAdded: boolean, into = new Map<string, string[]>()): Map<string, string[]> {
  const add = (subject: string, v: unknown) => into.set(`routed.${subject}`, [...(into.get(`routed.${subject}`) ?? []), canonical(v)]);
  for (const o of orders) {
    const r = rentals(o);
    if (r) for (const s of ['rentals', 'audit']) add(s, r);
    const g = goldEu(o);
    if (g) for (const s of ['gold.eu', 'audit']) add(s, g);
    const f = withAdded ? refundsFr(o) : undefined;
    if (f) add('refunds.fr', f);
  }
  return into;
}

function bySubject(messages: readonly StoredMessage[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of messages) out.set(m.subject, [...(out.get(m.subject) ?? []), canonical(JSON.parse(m.data))]);
  return out;
}

const show = (m: Map<string, string[]>) => [...m].sort(([a], [b]) => a.localeCompare(b)).map(([s, v]) => `${s}: ${v.length}`).join(', ');
const same = (a: Map<string, string[]>, b: Map<string, string[]>) =>
  a.size === b.size && [...a].every(([s, v]) => JSON.stringify([...v].sort()) === JSON.stringify([...(b.get(s) ?? [])].sort()));

test('router - filter, projection and fan-out from JSON config; a route added mid-run; exact output across a killed worker', { timeout: 300_000 }, async () => {
  // 4 s: a loaded machine (2 cores shared) must not be mistaken for dead workers.
  const cluster = await startCluster({ workers: 2, workerTimeoutMs: 4000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-router-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'jobs/router/job.ts'), join(dir, 'cache'));
    const maxParallelism = bundle.manifest.maxParallelism;
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob(JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
    const js = jetstream(nc);
    const publishOrders = async (orders: readonly Order[]) => {
      for (const o of orders) await js.publish(`orders.${partitionForKey(o.id, 4)}`, JSON.stringify(o));
    };
    const routed = async () => bySubject(await readStream(nc, 'ROUTED'));
    const outputReaches = async (expected: Map<string, string[]>, what: string) => {
      let last = new Map<string, string[]>();
      try {
        await waitFor(async () => {
          last = await routed();
          return same(last, expected);
        }, { timeoutMs: 90_000, what });
      } catch (e) {
        const j = await client.getJob(JOB);
        throw new Error(`${(e as Error).message}\nexpected ${show(expected)}\ngot      ${show(last)}\njob ${j.state} restarts ${j.restarts} ${j.lastFailure?.message ?? ''}`, { cause: e });
      }
    };

    // Phase A: the configured routes; malformed orders among them.
    const a = generateOrders({ events: 400, seed: 5 });
    await publishOrders(a);
    await js.publish('orders.0', '{"id": "o-x", "type": "Rent');
    await js.publish('orders.1', JSON.stringify(['o-y', 3]));
    await js.publish('orders.2', JSON.stringify({ type: 'Rental', price: 9 }));
    const afterA = expectedOutputs(a, false);
    assert.ok(['routed.rentals', 'routed.gold.eu', 'routed.audit'].every((s) => (afterA.get(s)?.length ?? 0) > 10), 'the sample exercises every route');
    await outputReaches(afterA, 'phase A outputs');

    // A route arrives on the control stream (and a malformed one, dead-lettered). It is in force
    // in a key group once that key group processed it, which is not ordered with the orders
    // stream; so wait until every key group has taken it in (the stage counts a broadcast record
    // once per key group), then probe each key group with an order only the added route matches:
    // each is processed after the route in its key group, and routed.
    const routeIn = async () => Number((await client.getJob(JOB)).stages.find((s) => s.stageId === 'route')?.recordsIn ?? 0);
    const routeInBefore = await routeIn();
    await js.publish('routes.0', JSON.stringify({ action: 'put', route: { id: 'bad', filter: 'price >', to: ['x'] } }));
    await js.publish('routes.0', JSON.stringify({ action: 'put', route: ADDED_ROUTE }));
    await waitFor(async () => (await routeIn()) >= routeInBefore + maxParallelism, { timeoutMs: 60_000, what: 'the added route in every key group' });
    const routedProbes: Order[] = [];
    const covered = new Set<number>();
    for (let n = 0; covered.size < maxParallelism; n++) {
      const id = `probe-${n}`;
      const kg = keyGroupForKey(id, maxParallelism);
      if (covered.has(kg)) continue;
      covered.add(kg);
      routedProbes.push({ id, type: 'Refund', price: 1, channel: 'web', customer: { id: 'u-probe', tier: 'basic', address: { city: 'Paris', country: 'FR' } }, items: [{ sku: 'sku-0', qty: 1 }], ts: 0 });
    }
    await publishOrders(routedProbes);
    const afterProbes = expectedOutputs(routedProbes, true, expectedOutputs(a, false));
    await outputReaches(afterProbes, 'the probes on the added route');

    // Phase B: orders flow through all three routes; a worker is killed halfway.
    const b = generateOrders({ events: 400, seed: 6, firstId: 1000 });
    const before = await client.getJob(JOB);
    await publishOrders(b.slice(0, 200));
    // Two checkpoints, or the job idle with everything in its latest one: state to recover from.
    await checkpointsOrIdle(client, JOB, { timeoutMs: 60_000 });
    const running = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((x) => x.jobId === JOB));
    const handles = new Map<string, ChildHandle>(cluster.workers.map((w) => [w.name.replace(/^worker /, ''), w]));
    handles.get(running[0]!.workerId)!.kill('SIGKILL');
    await cluster.addWorker('replacement-1');
    await waitFor(async () => (await client.getJob(JOB)).restarts > before.restarts, { timeoutMs: 30_000, what: 'the job to restart' });
    await publishOrders(b.slice(200));
    const final = expectedOutputs(b, true, expectedOutputs(routedProbes, true, expectedOutputs(a, false)));
    assert.ok((final.get('routed.refunds.fr')?.length ?? 0) > routedProbes.length + 10, 'phase B exercises the added route');
    await outputReaches(final, 'every output once');

    // Dead letters: the three malformed orders and the malformed route, each with its reason.
    const dead = await waitFor(async () => {
      const d = await readStream(nc, 'EDDY_DLQ', `eddy.dlq.${JOB}`);
      return d.length >= 4 ? d : undefined;
    }, { timeoutMs: 30_000, what: '4 dead letters' });
    const reasons = dead.map((m) => (JSON.parse(m.data) as { reason: string }).reason);
    assert.equal(reasons.length, 4, reasons.join(' | '));
    const all = reasons.join(' | ');
    assert.match(all, /invalid JSON/);
    assert.match(all, /must be a JSON object, got an array/);
    assert.match(all, /missing key/);
    assert.match(all, /route command: filter "price >" does not compile/);
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
