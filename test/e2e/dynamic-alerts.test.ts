// dynamic-alerts end to end with real processes (nats-server, a coordinator, two workers, then a
// replacement): rules put, updated and removed on the control stream while events flow, global
// (broadcast) and per customer, with countFrom in the past so a new rule counts the customer's
// history; events out of order and late; a worker SIGKILLed mid-run. The final counts per
// (customer, rule) and the alerts are compared exactly with what this file computes from the
// rules' definitions restated as plain predicates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { checkpointsOrIdle, startCluster, waitFor, readStream, REPO_ROOT, type ChildHandle } from '../kit/index.ts';
import { readStreamDirect } from '../kit/read-stream-direct.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { partitionForKey } from '../../core/key-groups.ts';
import { customerId, generateCustomerEvents, type CustomerEvent, type EventBody } from '../../jobs/dynamic-alerts/generate.ts';
import type { Alert, Rule } from '../../jobs/dynamic-alerts/rules.ts';

const JOB = 'dynamic-alerts';
const CUSTOMERS = 10;
const START = Date.UTC(2026, 0, 1);

/** A rule as the test knows it: its definition for the job, and the same condition restated. */
interface TestRule {
  key: string;
  customer?: string;
  rule: Rule;
  predicate: (b: EventBody) => boolean;
}

/** Counts by definition: the customer's events at or after countFrom that satisfy the predicate. */
function expectedCounts(events: readonly CustomerEvent[], rules: readonly TestRule[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (let c = 0; c < CUSTOMERS; c++) out.set(customerId(c), {});
  for (const r of rules) {
    for (const e of events) {
      if ((r.customer !== undefined && e.customer !== r.customer) || e.ts < (r.rule.countFrom ?? -Infinity) || !r.predicate(e.body)) continue;
      const counts = out.get(e.customer)!;
      counts[r.key] = (counts[r.key] ?? 0) + 1;
    }
  }
  return out;
}

/** One alert per (customer, rule definition) whose count reaches the threshold. */
function expectedAlerts(counts: Map<string, Record<string, number>>, rules: readonly TestRule[]): string[] {
  const out: string[] = [];
  for (const [customer, byRule] of counts) {
    for (const r of rules) if ((byRule[r.key] ?? 0) >= r.rule.threshold) out.push(`${customer}/${r.key}/${r.rule.threshold}`);
  }
  return out;
}

test('dynamic-alerts - rules added, updated and removed mid-run count history and live events exactly, across a killed worker', { timeout: 300_000 }, async () => {
  // 4 s: a loaded machine (2 cores shared) must not be mistaken for dead workers.
  const cluster = await startCluster({ workers: 2, workerTimeoutMs: 4000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-alerts-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'jobs/dynamic-alerts/job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob(JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
    const js = jetstream(nc);
    const publishEvents = async (events: readonly CustomerEvent[]) => {
      for (const e of events) await js.publish(`alert-events.${partitionForKey(e.customer, 4)}`, JSON.stringify(e));
    };
    const publishRule = async (command: unknown) => {
      await js.publish('alert-rules.0', JSON.stringify(command));
    };

    // 900 events over 10 customers, out of order by up to 3 s, in three phases.
    const all = generateCustomerEvents({ events: 900, customers: CUSTOMERS, seed: 11, startTs: START, stepMs: 200, outOfOrderMs: 3000 });
    const p1 = all.slice(0, 300);
    const p2 = all.slice(300, 600);
    const p3main = all.slice(600);
    const maxTs = (es: readonly CustomerEvent[]) => Math.max(...es.map((e) => e.ts));
    // Late: 40 events of phase 3 whose event time is back in phase 1's range.
    const late: CustomerEvent[] = p3main.slice(0, 40).map((e, i) => ({ ...e, id: `late-${i}`, ts: p1[i * 5]!.ts }));
    const p3 = [...p3main.slice(40, 150), ...late, ...p3main.slice(150)];

    const g1: TestRule = { key: 'global:big-amount', rule: { id: 'big-amount', path: '$.amount', op: '>', value: 150, threshold: 10, countFrom: 0 }, predicate: (b) => b.amount > 150 };
    const c1: TestRule = { key: 'customer:vip', customer: customerId(0), rule: { id: 'vip', path: '$.tags', op: 'contains', value: 'vip', threshold: 3, countFrom: START }, predicate: (b) => b.tags.includes('vip') };
    const g2: TestRule = { key: 'global:pricey-item', rule: { id: 'pricey-item', path: '$.items[*].price', op: '>', value: 180, threshold: 4, countFrom: p1[150]!.ts }, predicate: (b) => b.items.some((i) => i.price > 180) };
    const c2: TestRule = { key: 'customer:ios', customer: customerId(1), rule: { id: 'ios', path: '$.device.os', op: '=', value: 'ios', threshold: 100_000, countFrom: 0 }, predicate: (b) => b.device.os === 'ios' };
    const g1b: TestRule = { key: 'global:big-amount', rule: { id: 'big-amount', path: '$.amount', op: '>=', value: 120, threshold: 25, countFrom: 0 }, predicate: (b) => b.amount >= 120 };
    // From the end of phase 2 on: a rule that does not look back.
    const g3: TestRule = { key: 'global:refunds', rule: { id: 'refunds', path: '$.kind', op: 'in', value: ['refund'], threshold: 3, countFrom: maxTs([...p1, ...p2]) + 1 }, predicate: (b) => b.kind === 'refund' };
    const put = (r: TestRule) => (r.customer === undefined ? { action: 'put', scope: 'global', rule: r.rule } : { action: 'put', scope: 'customer', customer: r.customer, rule: r.rule });

    const readCounts = async (): Promise<Map<string, Record<string, number>>> => {
      const ids = Array.from({ length: CUSTOMERS }, (_, c) => customerId(c));
      const values = await client.batchGet(JOB, 'counts', ids, 'latest');
      return new Map(values.map((v) => [v.entityId, v.found ? Object.fromEntries(Object.entries(JSON.parse(v.valueJson) as Record<string, { n: number }>).map(([k, c]) => [k, c.n])) : {}]));
    };
    const show = (m: Map<string, Record<string, number>>) => JSON.stringify([...m].sort().map(([c, byRule]) => [c, Object.entries(byRule).sort()]));
    const countsReach = async (expected: Map<string, Record<string, number>>, what: string) => {
      let last = new Map<string, Record<string, number>>();
      try {
        await waitFor(async () => {
          last = await readCounts();
          return show(last) === show(expected);
        }, { timeoutMs: 90_000, what });
      } catch (e) {
        const j = await client.getJob(JOB);
        throw new Error(`${(e as Error).message}\nexpected ${show(expected)}\ngot      ${show(last)}\njob ${j.state} restarts ${j.restarts} ${j.lastFailure?.message ?? ''}`, { cause: e });
      }
    };

    // Phase 1: a global rule over all history, events, and malformed input.
    await publishRule(put(g1));
    await publishRule({ action: 'put', scope: 'global', rule: { id: 'broken', path: '$.[', op: '=', value: 1, threshold: 1 } });
    await publishEvents(p1);
    await js.publish('alert-events.0', '{"customer": "c-0001", "id": "x", trunc');
    await js.publish('alert-events.1', JSON.stringify({ id: 'no-customer', ts: START, body: {} }));
    await countsReach(expectedCounts(p1, [g1]), 'the phase 1 counts');

    // Phase 2: a customer rule and a global rule counting history from the past, a customer rule
    // that will be removed; a worker killed halfway through the events.
    const before = await client.getJob(JOB);
    await publishRule(put(c1));
    await publishRule(put(g2));
    await publishRule(put(c2));
    await publishEvents(p2.slice(0, 150));
    // Two checkpoints, or the job idle with everything in its latest one: state to recover from.
    await checkpointsOrIdle(client, JOB, { timeoutMs: 60_000 });
    const running = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((a) => a.jobId === JOB));
    const handles = new Map<string, ChildHandle>(cluster.workers.map((w) => [w.name.replace(/^worker /, ''), w]));
    handles.get(running[0]!.workerId)!.kill('SIGKILL');
    await cluster.addWorker('replacement-1');
    await waitFor(async () => (await client.getJob(JOB)).restarts > before.restarts, { timeoutMs: 30_000, what: 'the job to restart' });
    await publishEvents(p2.slice(150));
    const phase2Rules = [g1, c1, g2, c2];
    const phase2 = expectedCounts([...p1, ...p2], phase2Rules);
    await countsReach(phase2, 'the phase 2 counts');

    // Phase 3: the global rule changes (its counts restart and replay all history), the customer
    // rule is removed, a rule from now on is added; once that is in force everywhere (the
    // counts show it), the last events, late ones among them.
    await publishRule(put(g1b));
    await publishRule({ action: 'remove', scope: 'customer', customer: c2.customer, ruleId: c2.rule.id });
    await publishRule(put(g3));
    const finalRules = [g1b, c1, g2, g3];
    await countsReach(expectedCounts([...p1, ...p2], finalRules), 'the rule changes of phase 3');
    await publishEvents(p3);
    const finalCounts = expectedCounts([...p1, ...p2, ...p3], finalRules);
    await countsReach(finalCounts, 'the final counts');
    for (const r of finalRules) assert.ok([...finalCounts.values()].some((c) => (c[r.key] ?? 0) >= r.rule.threshold), `${r.key} raises an alert in this sample`);
    assert.ok(late.some((e) => e.ts < g2.rule.countFrom!) && late.some((e) => e.ts >= g2.rule.countFrom!), 'late events on both sides of a countFrom');

    // Alerts: the first definition's (counted until it changed, after phase 2) and the final
    // rules', each once; none for the removed rule.
    const expected = [...expectedAlerts(phase2, [g1]), ...expectedAlerts(finalCounts, finalRules)].sort();
    const alerts = await waitFor(async () => {
      const out = (await readStreamDirect(nc, 'ALERTS')).map((m) => JSON.parse(m) as Alert);
      return out.length >= expected.length ? out : undefined;
    }, { timeoutMs: 60_000, what: `${expected.length} alerts` });
    assert.deepEqual(alerts.map((a) => `${a.customer}/${a.rule}/${a.threshold}`).sort(), expected);
    assert.ok(alerts.every((a) => a.count === a.threshold));

    // Dead letters: the truncated event, the event without a customer, the broken rule.
    const dead = await waitFor(async () => {
      const d = await readStream(nc, 'EDDY_DLQ', `eddy.dlq.${JOB}`);
      return d.length >= 3 ? d : undefined;
    }, { timeoutMs: 30_000, what: '3 dead letters' });
    const reasons = dead.map((m) => (JSON.parse(m.data) as { reason: string }).reason).sort();
    assert.equal(reasons.length, 3, reasons.join(' | '));
    assert.match(reasons.join(' | '), /event has no customer/);
    assert.match(reasons.join(' | '), /is not valid JSONPath/);
    assert.match(reasons.join(' | '), /invalid JSON/);
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
