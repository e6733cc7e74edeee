// A job graph end to end with real processes (nats-server, a coordinator, two workers): three
// sources (two unioned), a connect of two keyed streams sharing state per key, a broadcast rule
// that changes while the job runs (applied to existing keys with forEachKey), a side output
// processed as a stream, a branch to a sink of its own, a worker SIGKILLed mid-run and one
// joining (key groups and splits move to it while the job runs). Every
// output and the final state are compared record for record with an expectation computed here
// from the inputs; the exactly-once sinks must hold each record once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { checkpointsOrIdle, startCluster, waitFor, REPO_ROOT, type ChildHandle } from '../kit/index.ts';
import { readStreamDirect } from '../kit/read-stream-direct.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { GRAPH_MAX_PARALLELISM, type Alert, type Applied, type Move, type Order, type Payment, type Rule } from '../fixtures/graph-job.ts';

const CUSTOMERS = 16;

/** A small deterministic PRNG (mulberry32): the same inputs on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Batch { orders: Array<Order & { subject: string }>; payments: Array<Payment & { subject: string }> }

function makeBatch(tag: string, orders: number, payments: number, next: () => number): Batch {
  const b: Batch = { orders: [], payments: [] };
  for (let i = 0; i < orders; i++) {
    // Skewed: low-numbered customers are busy, high-numbered ones quiet.
    const customer = `c${Math.floor(next() ** 2 * CUSTOMERS)}`;
    // Two thirds to the two partitions of "orders", one third to "orders_eu": the union.
    const subject = i % 3 === 2 ? 'orders_eu.0' : `orders.${i % 2}`;
    b.orders.push({ id: `${tag}-o${i}`, customer, amount: 1 + Math.floor(next() * 100), subject });
  }
  for (let i = 0; i < payments; i++) {
    b.payments.push({ id: `${tag}-p${i}`, customer: `c${Math.floor(next() ** 2 * CUSTOMERS)}`, amount: 1 + Math.floor(next() * 100), subject: `payments.${i % 2}` });
  }
  return b;
}

/** Volume (orders + payments) and balance (orders - payments) per customer. */
function totals(batches: Batch[]): { volume: Map<string, number>; balance: Map<string, number> } {
  const volume = new Map<string, number>();
  const balance = new Map<string, number>();
  for (const b of batches) {
    for (const o of b.orders) {
      volume.set(o.customer, (volume.get(o.customer) ?? 0) + o.amount);
      balance.set(o.customer, (balance.get(o.customer) ?? 0) + o.amount);
    }
    for (const p of b.payments) {
      volume.set(p.customer, (volume.get(p.customer) ?? 0) + p.amount);
      balance.set(p.customer, (balance.get(p.customer) ?? 0) - p.amount);
    }
  }
  return { volume, balance };
}

/** Alerts of a rule: every customer whose volume reached the threshold while the rule was current. */
function alertsOf(rule: Rule, volume: Map<string, number>): Alert[] {
  return [...volume].filter(([, v]) => v >= rule.threshold).map(([customer]) => ({ customer, version: rule.version, threshold: rule.threshold }));
}

async function messages(nc: NatsConnection, stream: string): Promise<number> {
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } catch {
    return 0;
  }
}

const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
const sorted = <T>(xs: T[]): T[] => [...xs].sort(byJson);

test('graph - union, connect and a broadcast rule changing mid-run over two workers, one SIGKILLed: outputs and state exactly once', { timeout: 180_000 }, async () => {
  const cluster = await startCluster({ workers: 2, workerTimeoutMs: 2000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-graph-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/graph-job.ts'), join(dir, 'cache'));
    assert.deepEqual(bundle.manifest.sources.map((s) => s.stream), ['orders', 'orders_eu', 'payments', 'rules']);
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob('graph')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
    const js = jetstream(nc);
    const publish = async (b: Batch) => {
      for (let i = 0; i < Math.max(b.orders.length, b.payments.length); i++) {
        const o = b.orders[i];
        const p = b.payments[i];
        if (o) await js.publish(o.subject, JSON.stringify({ id: o.id, customer: o.customer, amount: o.amount }));
        if (p) await js.publish(p.subject, JSON.stringify({ id: p.id, customer: p.customer, amount: p.amount }));
      }
    };
    const failure = async () => {
      const j = await client.getJob('graph');
      return `job ${j.state}, restarts ${j.restarts}, checkpoint ${String(j.checkpoints?.latestId)}, ${j.lastFailure?.message ?? ''}`;
    };
    const alertsIn = async () => Number((await client.getJob('graph')).stages.find((s) => s.stageId === 'alerts')?.recordsIn ?? 0);

    const next = random(42);
    const a = makeBatch('a', 240, 120, next);
    const b = makeBatch('b', 240, 120, next);
    const c = makeBatch('c', 120, 60, next);
    const v1: Rule = { version: 1, threshold: 1200 };
    // Rule 2 lowers the bar: customers already past it when it arrives are found by forEachKey.
    const v2: Rule = { version: 2, threshold: 1000 };

    // Phase 1: rule 1, applied in every key group (its side output says so, once per key group).
    await js.publish('rules.0', JSON.stringify(v1));
    await waitFor(async () => (await messages(nc, 'GRAPH_APPLIED')) >= GRAPH_MAX_PARALLELISM, { timeoutMs: 30_000, what: 'rule 1 applied in every key group' });
    // Phase 2: batch A, processed through the alerts stage under rule 1.
    await publish(a);
    const nA = a.orders.length + a.payments.length;
    await waitFor(async () => (await alertsIn()) >= nA + GRAPH_MAX_PARALLELISM, { timeoutMs: 60_000, what: 'batch A through the alerts stage' }).catch(async (e: Error) => {
      throw new Error(`${e.message}; ${await failure()}`, { cause: e });
    });
    // Phase 3: rule 2 replaces rule 1 while the job runs; forEachKey applies it to every customer.
    await js.publish('rules.0', JSON.stringify(v2));
    await waitFor(async () => (await messages(nc, 'GRAPH_APPLIED')) >= 2 * GRAPH_MAX_PARALLELISM, { timeoutMs: 30_000, what: 'rule 2 applied in every key group' });
    // Phase 4: half of batch B, a checkpoint after it, a worker killed, the rest.
    const half: Batch = { orders: b.orders.slice(0, 120), payments: b.payments.slice(0, 60) };
    const rest: Batch = { orders: b.orders.slice(120), payments: b.payments.slice(60) };
    await publish(half);
    const before = await client.getJob('graph');
    // The half in a completed checkpoint: two more, or the job idle once it is processed.
    await checkpointsOrIdle(client, 'graph', { timeoutMs: 60_000 });
    const running = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((x) => x.jobId === 'graph'));
    const handles = new Map<string, ChildHandle>(cluster.workers.map((w) => [w.name.replace(/^worker /, ''), w]));
    const atKill = await client.getJob('graph');
    handles.get(running[0]!.workerId)!.kill('SIGKILL');
    await cluster.addWorker('replacement-1');
    // The recovery is over once the job runs without the dead worker and has checkpointed since:
    // one kill may cost two restarts (the redeploy can still find the dead worker registered).
    const recovered = await waitFor(async () => {
      const j = await client.getJob('graph');
      return j.state === 'RUNNING' && j.restarts > before.restarts && Number(j.epoch) > Number(atKill.epoch) && Number(j.checkpoints!.latestId) > Number(atKill.checkpoints!.latestId) ? j : undefined;
    }, { timeoutMs: 30_000, what: 'the job to restart and checkpoint again' });
    assert.ok(recovered.restarts <= before.restarts + 2, `one kill, at most two restarts (${recovered.restarts - before.restarts})`);
    await publish(rest);
    // Phase 5: a third worker joins while the job runs: key groups (with their broadcast state)
    // and source splits move to it at a checkpoint, without a restart. Then batch C.
    const restarts = (await client.getJob('graph')).restarts;
    await cluster.addWorker('joiner-1');
    const joined = await waitFor(async () => {
      const w = (await client.listWorkers()).find((x) => x.workerId === 'joiner-1');
      const a = w?.assignments.find((x) => x.jobId === 'graph');
      return a !== undefined && a.keyGroups.length > 0 && a.sourceSplits.length > 0 ? a : undefined;
    }, { timeoutMs: 60_000, what: 'key groups and splits moved to the joining worker' }).catch(async (e: Error) => {
      throw new Error(`${e.message}; ${await failure()}`, { cause: e });
    });
    assert.ok(joined.sourceSplits.length > 0);
    await publish(c);

    // The expectation, from the inputs alone.
    const all = [a, b, c];
    const expectedMoves: Move[] = all.flatMap((x) => [
      ...x.orders.map((o): Move => ({ id: o.id, customer: o.customer, kind: 'order', amount: o.amount })),
      ...x.payments.map((p): Move => ({ id: p.id, customer: p.customer, kind: 'payment', amount: p.amount })),
    ]);
    const expectedAlerts = [...alertsOf(v1, totals([a]).volume), ...alertsOf(v2, totals(all).volume)];
    assert.ok(expectedAlerts.some((x) => x.version === 1) && expectedAlerts.some((x) => x.version === 2), 'the data makes alerts under both rules');
    assert.ok(expectedAlerts.length < 2 * CUSTOMERS, 'and not every customer alerts');
    const volumeA = totals([a]).volume;
    assert.ok([...volumeA].some(([, v]) => v >= v2.threshold), 'some customers are past rule 2 when it arrives (only forEachKey alerts them)');
    assert.ok(expectedAlerts.some((x) => x.version === 2 && (volumeA.get(x.customer) ?? 0) < v2.threshold), 'and some cross it in batch B');
    const expectedBig = all.flatMap((x) => x.orders.filter((o) => o.amount >= 90).map((o) => ({ id: o.id, customer: o.customer, amount: o.amount })));
    const expectedApplied = [v1, v2].flatMap((r) => Array.from({ length: GRAPH_MAX_PARALLELISM }, (_, kg): Applied & { applied: true } => ({ version: r.version, keyGroup: kg, applied: true })));
    const { balance } = totals(all);

    await waitFor(async () => (await messages(nc, 'GRAPH_MOVES')) >= expectedMoves.length && (await messages(nc, 'GRAPH_BIG')) >= expectedBig.length && (await messages(nc, 'GRAPH_ALERTS')) >= expectedAlerts.length, {
      timeoutMs: 90_000,
      what: 'every move, big order and alert',
    }).catch(async (e: Error) => {
      throw new Error(`${e.message}: moves ${await messages(nc, 'GRAPH_MOVES')}/${expectedMoves.length}, alerts ${await messages(nc, 'GRAPH_ALERTS')}/${expectedAlerts.length}; ${await failure()}`, { cause: e });
    });
    assert.equal((await client.getJob('graph')).restarts, restarts, 'the join moved work without a restart');
    // One more checkpoint: anything published twice would be there by now.
    await checkpointsOrIdle(client, 'graph');
    const read = async <T>(stream: string) => (await readStreamDirect(nc, stream)).map((m) => JSON.parse(m) as T);
    assert.deepEqual(sorted(await read<Move>('GRAPH_MOVES')), sorted(expectedMoves), 'every order and payment through the connect stage once');
    assert.deepEqual(sorted(await read<Alert>('GRAPH_ALERTS')), sorted(expectedAlerts), 'alerts of rule 1 over batch A and of rule 2 over both, once each');
    assert.deepEqual(sorted(await read<unknown>('GRAPH_BIG')), sorted(expectedBig), 'the branch of the union to its own sink');
    assert.deepEqual(sorted(await read<unknown>('GRAPH_APPLIED')), sorted(expectedApplied), 'processBroadcastElement once per key group and rule, through the side-output stream');
    // Final state: the balance of each customer (shared state of both connected inputs), as served.
    const customers = [...balance.keys()];
    const values = await client.batchGet('graph', 'balance', customers, 'committed');
    assert.deepEqual(Object.fromEntries(values.map((v) => [v.entityId, v.found ? JSON.parse(v.valueJson) : undefined])), Object.fromEntries(balance));
  } catch (e) {
    if (process.env.GRAPH_TEST_LOGS) for (const w of [cluster.coordinator, ...cluster.workers]) console.error(`----- ${w.name}\n${w.output().split('\n').filter((l) => /"level":(4|5)0/.test(l)).slice(-15).join('\n')}`);
    throw e;
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
