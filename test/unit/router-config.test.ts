// The router's configuration: validation with the reason, filters and projections against
// hand-written equivalents over generated orders, fan-out, and the cost per routed record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle } from '../../core/bundle.ts';
import { REPO_ROOT } from '../kit/index.ts';
import { compileRoute, routeRecord, validateRouteCommand, validateRouterConfig, RouterConfigError, type RouterConfig } from '../../jobs/router/config.ts';
import { generateOrders, type Order } from '../../jobs/router/generate.ts';

const orders = generateOrders({ events: 2000, seed: 3 });

const base = {
  source: { stream: 'orders', key: 'id' },
  sink: { stream: 'ROUTED', subjectPrefix: 'routed' },
  routes: [{ id: 'all', to: ['all'] }],
};

test('router config - filters match their hand-written equivalents; projections keep, rename and nest', () => {
  const cases: Array<{ filter: string; expected: (o: Order) => boolean }> = [
    { filter: 'price > 5 and type == "Rental"', expected: (o) => o.price > 5 && o.type === 'Rental' },
    { filter: 'customer.address.country in ("FR", "DE") or customer.tier == "gold"', expected: (o) => ['FR', 'DE'].includes(o.customer.address.country) || o.customer.tier === 'gold' },
    { filter: 'not (channel == "web") and items.0.qty >= 2', expected: (o) => o.channel !== 'web' && o.items[0]!.qty >= 2 },
    { filter: 'price * 2 < 7', expected: (o) => o.price * 2 < 7 },
    // A field the record lacks reads as undefined: no match, no error.
    { filter: 'coupon == "X"', expected: () => false },
  ];
  for (const { filter, expected } of cases) {
    const route = compileRoute({ id: 'r', filter, to: ['x'] });
    const got = orders.filter((o) => route.matches(o)).map((o) => o.id);
    assert.deepEqual(got, orders.filter(expected).map((o) => o.id), filter);
  }
  const renamed = compileRoute({ id: 'p', project: { order: 'id', 'where.city': 'customer.address.city', firstSku: 'items.0.sku', missing: 'no.such' }, to: ['x'] });
  const o = orders[0]!;
  assert.deepEqual(renamed.project(o), { order: o.id, where: { city: o.customer.address.city }, firstSku: o.items[0]!.sku });
  const kept = compileRoute({ id: 'k', project: ['id', 'customer.tier'], to: ['x'] });
  assert.deepEqual(kept.project(o), { id: o.id, customer: { tier: o.customer.tier } });
  assert.equal(compileRoute({ id: 'w', to: ['x'] }).project(o), o, 'no projection: the whole record');
});

test('router config - a record is fanned out to every target of every matching route, in route order', () => {
  const routes = [
    compileRoute({ id: 'rentals', filter: 'type == "Rental"', project: ['id'], to: ['rentals', 'audit'] }),
    compileRoute({ id: 'big', filter: 'price >= 15', project: { id: 'id', p: 'price' }, to: ['big'] }),
  ];
  const out = orders.flatMap((o) => routeRecord(o, routes).map((r) => `${r.subject}:${JSON.stringify(r.value)}`));
  const expected = orders.flatMap((o) => [
    ...(o.type === 'Rental' ? [`rentals:{"id":"${o.id}"}`, `audit:{"id":"${o.id}"}`] : []),
    ...(o.price >= 15 ? [`big:${JSON.stringify({ id: o.id, p: o.price })}`] : []),
  ]);
  assert.deepEqual(out, expected);
});

test('router config - malformed configurations are refused with the reason', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ ...base, source: undefined }, /source is missing/],
    [{ ...base, source: { stream: 'orders' } }, /source\.key must name the field/],
    [{ ...base, sink: { stream: 'ROUTED', subjectPrefix: 'routed.*' } }, /sink\.subjectPrefix "routed\.\*" is not a subject/],
    [{ ...base, routes: [{ id: 'r', filter: 'price > ', to: ['x'] }] }, /route 0 \(r\): filter "price > " does not compile/],
    [{ ...base, routes: [{ id: 'r', filter: 'price > 1', to: ['a.>'] }] }, /target subject "a\.>" must be tokens/],
    [{ ...base, routes: [{ id: 'r', to: [] }] }, /to must list at least one subject/],
    [{ ...base, routes: [{ id: 'r', project: { 'a..b': 'x' }, to: ['x'] }] }, /project output field "a\.\.b" is not a field path/],
    [{ ...base, routes: [{ id: 'r', to: ['x'] }, { id: 'r', to: ['y'] }] }, /route id r appears twice/],
    [{ ...base, routes: [] }, /routes is empty and there is no control stream/],
    [{ ...base, control: { stream: 'orders' } }, /control\.stream must differ from source\.stream/],
  ];
  for (const [config, message] of bad) {
    assert.throws(() => validateRouterConfig(config), (e: unknown) => e instanceof RouterConfigError && message.test(e.message), `${JSON.stringify(config)} → ${String(message)}`);
  }
  const ok: RouterConfig = validateRouterConfig({ ...base, control: { stream: 'routes' }, routes: [] });
  assert.deepEqual(ok.routes, []);
  assert.throws(() => validateRouteCommand({ action: 'put', route: { id: 'x', filter: '((', to: ['a'] } }), /route command: filter "\(\(" does not compile/);
  assert.deepEqual(validateRouteCommand({ action: 'remove', routeId: 'x' }), { action: 'remove', routeId: 'x' });
});

test('router config - a filter that fails on a record (a type error) throws the reason, for the dead-letter subject', () => {
  const route = compileRoute({ id: 'r', filter: 'price + type > 1', to: ['x'] });
  assert.throws(() => route.matches(orders[0]), (e: unknown) => e instanceof RouterConfigError && /route r: filter "price \+ type > 1" failed on the record/.test(e.message));
});

test('router config - the cost of routing a record through compiled routes', () => {
  const routes = [
    compileRoute({ id: 'rentals', filter: 'price > 5 and type == "Rental"', project: { id: 'id', city: 'customer.address.city' }, to: ['rentals'] }),
    compileRoute({ id: 'fr', filter: 'customer.address.country == "FR"', project: ['id', 'price'], to: ['fr', 'audit'] }),
  ];
  const samples: number[] = [];
  let n = 0;
  for (let sample = 0; sample < 7; sample++) {
    const start = process.hrtime.bigint();
    for (let round = 0; round < 5; round++) for (const o of orders) n += routeRecord(o, routes).length;
    samples.push(Number(process.hrtime.bigint() - start) / (5 * orders.length));
  }
  const median = samples.sort((a, b) => a - b)[3]!;
  process.stdout.write(`# ns per record through 2 routes (filter + projection + fan-out): ${median.toFixed(0)}\n`);
  assert.ok(n > 0);
  assert.ok(median < 20_000, `routing stays in the microseconds (${median} ns)`);
});

test('router config - the job builds from a config; a malformed one fails the build with the reason; without a control stream it routes in the source stage', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eddy-router-build-'));
  try {
    const entry = (config: unknown) => `import { routerJob } from ${JSON.stringify(join(REPO_ROOT, 'jobs/router/job.ts'))};\nexport default routerJob(${JSON.stringify(config)});\n`;
    await writeFile(join(dir, 'bad.ts'), entry({ ...base, routes: [{ id: 'r', filter: 'price >>> 1', to: ['x'] }] }));
    await assert.rejects(buildBundle(join(dir, 'bad.ts'), join(dir, 'cache')), /router config: route 0 \(r\): filter "price >>> 1" does not compile/);
    await writeFile(join(dir, 'static.ts'), entry({ ...base, job: 'static-router', routes: [{ id: 'r', filter: 'price > 1', to: ['x', 'y'] }] }));
    const { manifest } = await buildBundle(join(dir, 'static.ts'), join(dir, 'cache'));
    assert.equal(manifest.name, 'static-router');
    assert.deepEqual(manifest.stages.map((s) => [s.kind, s.operators.map((o) => o.kind).join('+'), s.sinks.map((k) => k.kind).join('+')]), [['source', 'map+flatMap', 'jetstream-routed']]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
