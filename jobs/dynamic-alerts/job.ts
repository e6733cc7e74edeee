// Dynamic alerting rules (docs/USE-CASES.md §2).
//
// Customers' events arrive on `alert-events`; rule commands on the control stream `alert-rules`.
// Global rules are broadcast to every key group (broadcast state); customer rules travel keyed by
// customer, unioned with the events, so they meet that customer's events in one actor, in order.
// Each rule is a JSONPath condition and a threshold (rules.ts); events matching a rule are counted
// per (customer, rule) and an alert is raised when the count reaches the threshold.
//
// "Go back in time": every customer's recent events are kept in keyed map state ordered by event
// time (`history`, bounded by a TTL). A rule with `countFrom` counts the customer's retained
// history from that time when it arrives — a customer rule in that customer's actor, a global rule
// in every key group through bctx.forEachKey — before the next live event of that customer (the
// actor processes one record at a time, so live events wait by construction), and then counts live
// events at or after countFrom. The final count is thus the number of matching events with
// ts >= countFrom, whatever the order in which the rule and the events arrived.
import { job, jetstream, mapState, valueState, type DataStream, type KeyedBroadcastContext, type ProcessContext } from '@eddy/sdk';
import { compiledRule, compiledTable, ruleFingerprint, updateTable, validateCommand, type Alert, type Rule, type RuleCommand, type RuleTable } from './rules.ts';
import type { CustomerEvent } from './generate.ts';

/** A customer rule command as it travels keyed by customer. */
type CustomerCommand = Extract<RuleCommand, { scope: 'customer' }>;
type GlobalCommand = Extract<RuleCommand, { scope: 'global' }>;
type Keyed = CustomerEvent | CustomerCommand;

interface StoredEvent {
  ts: number;
  body: unknown;
}

/** Count of one rule for one customer, under the rule's definition (a changed rule counts anew). */
export interface RuleCount {
  n: number;
  fp: string;
}

/** The customer's recent events, by `hex(ts)/id`: ordered by event time. */
const history = (ttlMs: number) => mapState<StoredEvent>('history', { ttlMs });
/** The customer's own rules. */
const customerRules = valueState<RuleTable>('customer-rules');
/** Counts by rule key (`global:<id>`, `customer:<id>`); served as the feature `counts`. */
const counts = mapState<RuleCount>('counts');
/** The global rules, one entry (`all`): read with one point lookup per event. */
const globalRules = mapState<RuleTable>('global-rules');
const ALL = 'all';

export interface DynamicAlertsOptions {
  /** How long a customer's events are kept for replays, in processing time (state TTL). @default 7 days */
  historyTtlMs?: number;
  /** Partitions of `alert-events`. @default 4 */
  partitions?: number;
  /** @default 128 */
  maxParallelism?: number;
}

/** Event time as a map key that sorts as bytes: 14 hex digits of ts + 2^50 (covers ±35,000 years). */
export function historyKey(ts: number, id: string): string {
  return `${timeKey(ts)}/${id}`;
}

function timeKey(ts: number): string {
  return (Math.trunc(ts) + 2 ** 50).toString(16).padStart(14, '0');
}

function ruleKey(scope: 'global' | 'customer', id: string): string {
  return `${scope}:${id}`;
}

/** A malformed event is refused with the reason (to the dead-letter subject), never dropped silently. */
function checkEvent(e: CustomerEvent): CustomerEvent {
  if (typeof e !== 'object' || e === null) throw new TypeError('event is not an object');
  if (typeof e.customer !== 'string' || e.customer.length === 0) throw new TypeError('event has no customer');
  if (typeof e.id !== 'string' || e.id.length === 0) throw new TypeError('event has no id');
  if (typeof e.ts !== 'number' || !Number.isFinite(e.ts)) throw new TypeError(`event ts ${JSON.stringify(e.ts)} is not a time in ms`);
  if (typeof e.body !== 'object' || e.body === null) throw new TypeError('event body is not an object');
  return e;
}

export function dynamicAlerts(options: DynamicAlertsOptions = {}) {
  const historyState = history(options.historyTtlMs ?? 7 * 24 * 3600 * 1000);

  /** Adds a match to a rule's count; raises the alert when the count reaches the threshold. */
  async function countMatch(ctx: ProcessContext<Alert>, customer: string, key: string, rule: Rule, fp: string, ts: number): Promise<void> {
    const state = ctx.state(counts);
    const current = await state.get(key);
    const n = (current !== undefined && current.fp === fp ? current.n : 0) + 1;
    state.put(key, { n, fp });
    if (n === rule.threshold) ctx.emit({ customer, rule: key, threshold: rule.threshold, count: n, ts });
  }

  /**
   * A rule put for a customer: its count restarts, then the customer's retained history from
   * countFrom is counted through it, in event-time order.
   */
  async function applyPut(ctx: ProcessContext<Alert>, customer: string, key: string, rule: Rule): Promise<void> {
    const state = ctx.state(counts);
    if (rule.countFrom === undefined) {
      state.remove(key);
      return;
    }
    const c = compiledRule(rule);
    let n = 0;
    let crossedAt = 0;
    for (const [, e] of await ctx.state(historyState).entries({ from: timeKey(rule.countFrom) })) {
      if (e.ts < rule.countFrom || !c.matches(e.body)) continue;
      n++;
      if (n === rule.threshold) crossedAt = e.ts;
    }
    if (n === 0) state.remove(key);
    else state.put(key, { n, fp: c.fingerprint });
    if (n >= rule.threshold) ctx.emit({ customer, rule: key, threshold: rule.threshold, count: rule.threshold, ts: crossedAt });
  }

  async function onEvent(e: CustomerEvent, ctx: KeyedBroadcastContext<Alert>): Promise<void> {
    ctx.state(historyState).put(historyKey(e.ts, e.id), { ts: e.ts, body: e.body });
    const global = compiledTable(await ctx.broadcastState(globalRules).get(ALL));
    for (const c of global.rules) {
      if ((c.rule.countFrom === undefined || e.ts >= c.rule.countFrom) && c.matches(e.body)) await countMatch(ctx, e.customer, ruleKey('global', c.rule.id), c.rule, c.fingerprint, e.ts);
    }
    const own = compiledTable(await ctx.state(customerRules).value());
    for (const c of own.rules) {
      if ((c.rule.countFrom === undefined || e.ts >= c.rule.countFrom) && c.matches(e.body)) await countMatch(ctx, e.customer, ruleKey('customer', c.rule.id), c.rule, c.fingerprint, e.ts);
    }
  }

  async function onCustomerCommand(cmd: CustomerCommand, ctx: KeyedBroadcastContext<Alert>): Promise<void> {
    const rules = ctx.state(customerRules);
    const key = ruleKey('customer', cmd.action === 'put' ? cmd.rule.id : cmd.ruleId);
    const table = updateTable(await rules.value(), cmd.action === 'put' ? { put: cmd.rule } : { remove: cmd.ruleId });
    if (table.rules.length === 0) rules.clear();
    else rules.update(table);
    if (cmd.action === 'put') await applyPut(ctx, cmd.customer, key, cmd.rule);
    else ctx.state(counts).remove(key);
  }

  const alerts = job('dynamic-alerts', { errorPolicy: 'dead-letter', maxParallelism: options.maxParallelism ?? 128 });
  const events = alerts.source<CustomerEvent>('alert-events', { partitions: options.partitions ?? 4, key: 'customer', timestampField: 'ts' })
    .map<Keyed>(checkEvent, 'check-event');
  // One control stream for both scopes; a malformed command goes to the dead-letter subject.
  const commands = alerts.source<unknown>('alert-rules', { partitions: 1 }).map(validateCommand, 'validate-rule');
  const global = commands.filter((c): c is GlobalCommand => c.scope === 'global', 'global-rules').broadcast('broadcast-rules');
  const forCustomers = commands.filter((c): c is CustomerCommand => c.scope === 'customer', 'customer-rules');

  events
    // DataStream is invariant in its element type; a customer command is a Keyed record.
    .union(forCustomers as DataStream<Keyed>)
    .keyBy((r) => r.customer, 'by-customer')
    .connect(global)
    .process<Alert>(
      'alerts',
      {
        async processElement(r, ctx) {
          // checkEvent guarantees an event's body; validated commands have none.
          if ('body' in r) await onEvent(r, ctx);
          else await onCustomerCommand(r, ctx);
        },
        // Once per key group: the table is the same everywhere; counts and replays are this key
        // group's keys, so an alert from a replay is emitted once, by the key group of its customer.
        async processBroadcastElement(cmd, bctx) {
          const state = bctx.broadcastState(globalRules);
          const before = await state.get(ALL);
          const id = cmd.action === 'put' ? cmd.rule.id : cmd.ruleId;
          const existed = before?.rules.some((r) => r.id === id) ?? false;
          state.put(ALL, updateTable(before, cmd.action === 'put' ? { put: cmd.rule } : { remove: cmd.ruleId }));
          const key = ruleKey('global', id);
          // Counts under an older definition of the rule are dropped (a count also carries the
          // definition's fingerprint, so one missed here could never be mistaken for current).
          if (existed) await bctx.forEachKey(counts, (_customer, k) => k.state(counts).remove(key));
          if (cmd.action === 'put' && cmd.rule.countFrom !== undefined) {
            const rule = cmd.rule;
            await bctx.forEachKey(historyState, (customer, k) => applyPut(k, customer, key, rule));
          }
        },
      },
      { state: [historyState, customerRules, counts], broadcastState: [globalRules], features: { counts } },
    )
    .sink(jetstream('alerts.raised', { stream: 'ALERTS' }));
  return alerts;
}

/** For tests: the fingerprint a count carries for a rule. */
export { ruleFingerprint };

export default dynamicAlerts();
