// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core, against
// a real cluster (nats-server, a coordinator, worker processes) running the customer-experience
// job. What a person would check by looking: every stage is in the graph, rates rise while events
// are published (by Server-Sent Events, without a reload), checkpoints appear in the timeline, the
// key-group map changes colour when a worker joins, a feature lookup shows the right values of
// every feature; a standby coordinator's dashboard shows the job and names the leader; no request
// leaves the machine; every page fits 1,280 px, and both schemes are readable.
//
// Screenshots of every page go to a temp dir, or to EDDY_DASHBOARD_SCREENSHOTS when set
// (`make screenshots` sets docs/dashboard, whose pictures the README shows).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startCluster, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, CX_JOB, REPO_ROOT } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildUi } from '../../ui/build.ts';
import type { JobDetail } from '../../coordinator/dashboard/api.ts';

/** Debian's chromium (scripts/ensure-chromium.sh installs it when it may), or EDDY_CHROMIUM. */
function findChromium(): string | undefined {
  const candidates = [process.env.EDDY_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((c): c is string => !!c);
  const found = () => candidates.find((c) => existsSync(c));
  if (found()) return found();
  try {
    execFileSync(join(REPO_ROOT, 'scripts', 'ensure-chromium.sh'), { stdio: 'inherit' });
  } catch {
    // The script explains what it could not do; the test then skips, saying why.
  }
  return found();
}

const chromiumPath = findChromium();

/** What the page functions below use of the browser's window (this file is compiled without the DOM types). */
interface BrowserWindow {
  getComputedStyle(el: unknown): { backgroundColor: string; color: string };
}

/** WCAG contrast ratio of two CSS rgb() colours. */
function contrast(a: string, b: string): number {
  const luminance = (css: string) => {
    const [r, g, b] = (css.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}
const ENTITIES = 20;

async function shoot(page: Page, dir: string, name: string): Promise<void> {
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

test(
  "dashboard - in chromium: every stage in the graph, rates rise live, checkpoints in the timeline, key groups recoloured by a new worker, every feature of an entity; a standby's dashboard",
  { timeout: 180_000, skip: chromiumPath === undefined ? 'no chromium: apt-get install chromium (scripts/ensure-chromium.sh) or set EDDY_CHROMIUM' : false },
  async () => {
    await buildUi();
    const shots = process.env.EDDY_DASHBOARD_SCREENSHOTS ? join(REPO_ROOT, process.env.EDDY_DASHBOARD_SCREENSHOTS) : await mkdtemp(join(tmpdir(), 'eddy-dashboard-shots-'));
    await mkdir(shots, { recursive: true });
    // A long worker time-out: chromium shares the two cores, and a worker declared dead under that
    // load would turn the test into a recovery test. The checkpoint timeline and table are shown
    // with three checkpoints in them: one every interval, idle or not.
    await using cluster = await startCluster({ workers: 1, workerTimeoutMs: 10_000, standbyCoordinators: 1, skipIdleCheckpoints: false });
    const dir = await mkdtemp(join(tmpdir(), 'eddy-dashboard-'));
    using client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
    let nc: NatsConnection | undefined;
    let browser: Browser | undefined;
    try {
      nc = await connect({ servers: cluster.nats.url });
      await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 15_000, what: 'a live worker' });
      // The variant that keeps history of `indicators`: the lookup shows an as-of answer too.
      await submitCx(client, join(dir, 'cache'), 'test/fixtures/cx-history.ts');
      await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job running' });

      browser = await chromium.launch({ executablePath: chromiumPath!, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
      const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light', timezoneId: 'UTC' });
      const page = await context.newPage();
      const base = cluster.coordinator.httpUrl;
      const standbyBase = cluster.standbys[0]!.httpUrl;
      const offMachine: string[] = [];
      const eventStreams: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(base) && !r.url().startsWith(standbyBase) && !r.url().startsWith('data:')) offMachine.push(r.url());
        if (r.resourceType() === 'eventsource') eventStreams.push(r.url());
      });
      // Usable at 1,280 px: no page is wider than the window.
      const tooWide: string[] = [];
      const fits = async (name: string) => {
        const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
        if (overflow > 0) tooWide.push(`${name}: ${overflow} px`);
      };
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));

      // The job page: every node of the job's graph is drawn.
      await page.goto(`${base}/#/jobs/${CX_JOB}`);
      const detail = (await (await fetch(`${base}/api/jobs/${CX_JOB}`)).json()) as JobDetail;
      for (const n of detail.graph.nodes) await page.locator(`[data-testid="node-${n.id}"]`).waitFor({ timeout: 15_000 });
      const stageIds = (await client.getJob(CX_JOB)).stages.map((s) => s.stageId);
      assert.ok(stageIds.length >= 2, 'the job has a source stage and a keyed stage');
      for (const id of stageIds) assert.equal(await page.locator(`[data-testid="node-${id}"]`).getAttribute('data-kind'), 'stage', `stage ${id} is in the graph`);
      assert.ok(detail.graph.nodes.some((n) => n.kind === 'source') && detail.graph.nodes.some((n) => n.kind === 'sink'), 'sources and sinks are drawn');
      assert.equal(await page.locator('[data-testid^="node-"]').count(), detail.graph.nodes.length, 'one node per source, stage and sink');
      // Laid out left to right: every edge goes rightwards.
      const leftOf = async (id: string) => (await page.locator(`[data-testid="node-${id}"]`).boundingBox())!.x;
      for (const e of detail.graph.edges) assert.ok((await leftOf(e.from)) < (await leftOf(e.to)), `${e.from} is left of ${e.to}`);
      // Each stage shows its rates and a backpressure bar.
      for (const id of stageIds) {
        await page.locator(`[data-testid="rate-${id}"]`).waitFor({ timeout: 10_000 });
        assert.equal(await page.locator(`[data-testid="node-${id}"] .bp-track`).count(), 1, `stage ${id} has a backpressure bar`);
      }

      // Rates rise while events are published: the source stage's in/s, as the page shows it, on
      // the page loaded before any event (a marker in the window would not survive a reload).
      await page.evaluate('globalThis.eddyTestMarker = "loaded once"');
      const events = cxEvents(24_000, ENTITIES, 5);
      const publishing = publishSteadily(nc, events, 800);
      const sourceStage = detail.graph.nodes.find((n) => n.kind === 'stage' && n.detail === 'source')!.id;
      await waitFor(async () => Number(await page.locator(`[data-testid="rate-${sourceStage}"]`).getAttribute('data-in')) > 100, {
        timeoutMs: 30_000,
        what: 'the source stage to show more than 100 records in per second',
      });
      assert.equal(await page.evaluate<string>('globalThis.eddyTestMarker'), 'loaded once', 'the rates rose without a reload');
      assert.ok(eventStreams.some((u) => u === `${base}/api/events?job=${CX_JOB}`), `the page listens to Server-Sent Events (${eventStreams.join(', ')})`);
      // A few undecodable records, so that dead letters show.
      for (let i = 0; i < 3; i++) nc.publish('indicators.0', new TextEncoder().encode('not json'));
      await page.locator('.node-dlq').first().waitFor({ timeout: 15_000 });
      await page.locator('.u-over').first().waitFor({ timeout: 5_000 });
      await shoot(page, shots, 'job');
      await fits('job');

      // Checkpoints: at least one completed in the timeline and the table.
      await page.click('[data-testid="tab-checkpoints"]');
      await page.locator('[data-testid="checkpoints-table"] tbody tr').first().waitFor({ timeout: 30_000 });
      await waitFor(async () => (await page.locator('[data-testid="checkpoints-table"] tbody tr').count()) >= 3, { timeoutMs: 30_000, what: 'three checkpoints in the table' });
      assert.ok((await page.locator('[data-testid="retained"] code').count()) >= 1, 'retained checkpoints are listed with their paths');
      assert.match((await page.locator('[data-testid="retained"] code').first().textContent()) ?? '', /^jobs\/customer-experience\/checkpoints\/\d+\/_metadata$/);
      // The timeline draws them: its bars in the completed colour are on the canvas.
      const timeline = page.locator('[data-testid="checkpoint-timeline"]');
      await waitFor(async () => Number(await timeline.getAttribute('data-completed')) >= 3, { timeoutMs: 10_000, what: 'three completed checkpoints in the timeline' });
      const barPixels = await timeline.evaluate((el) => {
        const canvas = el.querySelector('canvas') as unknown as { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
        const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        // #4e79a7, the completed checkpoints' colour (ui/src/pages/checkpoints.tsx).
        for (let i = 0; i < d.length; i += 4) if (d[i] === 0x4e && d[i + 1] === 0x79 && d[i + 2] === 0xa7) n++;
        return n;
      });
      assert.ok(barPixels > 50, `the timeline draws completed checkpoints (${barPixels} pixels of their colour)`);
      await shoot(page, shots, 'checkpoints');
      await fits('checkpoints');

      // Key groups: all on worker-1; a second worker takes some of them and their colour changes.
      await page.click('[data-testid="tab-key-groups"]');
      const grid = page.locator('[data-testid="kg-grid"] .kg');
      await waitFor(async () => (await grid.count()) === 128, { timeoutMs: 10_000, what: '128 key groups in the map' });
      const colourOf = (kg: number) => page.locator(`[data-testid="kg-${kg}"]`).evaluate((el) => (globalThis as unknown as BrowserWindow).getComputedStyle(el).backgroundColor);
      const owners = () => page.locator('[data-testid="kg-grid"] .kg').evaluateAll((els) => els.map((el) => el.getAttribute('data-owner')));
      assert.ok((await owners()).every((o) => o === 'worker-1'), 'one worker owns every key group');
      const before = await colourOf(127);
      await cluster.addWorker();
      let sawMove = false;
      const moved = await waitFor(
        async () => {
          if (!sawMove && (await page.locator('[data-testid="moving-count"]').count()) > 0) {
            sawMove = true;
            await shoot(page, shots, 'key-groups-moving');
          }
          const now = await owners();
          return now.filter((o) => o === 'worker-2').length === 64 ? now : undefined;
        },
        { timeoutMs: 60_000, what: 'worker-2 to own half of the key groups in the map', intervalMs: 100 },
      );
      const takenOver = moved.lastIndexOf('worker-2');
      assert.notEqual(await colourOf(takenOver), before, 'a key group that moved changed colour');
      assert.equal(await colourOf(0), before, 'a key group that stayed kept its colour');
      assert.equal(await page.evaluate<string>('globalThis.eddyTestMarker'), 'loaded once', 'the map changed without a reload');
      await shoot(page, shots, 'key-groups');
      await fits('key-groups');

      // Workers: both alive, with heartbeat age, RSS and CPU reported.
      await page.goto(`${base}/#/workers`);
      await page.locator('[data-testid="worker-row-worker-2"]').waitFor({ timeout: 10_000 });
      await waitFor(async () => /\d+(\.\d+)? MiB/.test((await page.locator('[data-testid="rss-worker-2"]').textContent()) ?? ''), { timeoutMs: 10_000, what: "worker-2's RSS" });
      await shoot(page, shots, 'workers');
      await fits('workers');

      // Features: once every event is processed, the lookup shows every feature of the entity, in
      // both views, and the value as of an event time for the feature that keeps history.
      await publishing.done;
      const expected = cxExpectation(events);
      const entity = 'e7';
      const want = expected.latest.get(entity)!;
      // As of a whole second of event time in the middle of the events (the history keeps a week;
      // the input takes seconds): the value made of the entity's events up to then.
      const asOfMs = Math.floor(events[events.length >> 1]!.ts / 1000) * 1000;
      const wantAsOf = cxExpectation(events.filter((e) => e.ts <= asOfMs)).latest.get(entity);
      assert.ok(wantAsOf, `${entity} has events before ${asOfMs}`);
      const lookUp = async (p: Page, url: string) => {
        await p.goto(url);
        await p.fill('[data-testid="entity-input"]', entity);
        await p.fill('[data-testid="asof-input"]', new Date(asOfMs).toISOString().slice(0, 19));
        await waitFor(
          async () => {
            await p.click('[data-testid="lookup-button"]');
            await p.locator('[data-testid="lookup-result"], [data-testid="lookup-error"]').first().waitFor({ timeout: 10_000 });
            const committed = await p.locator('[data-testid="feature-indicators-committed-value"]').textContent({ timeout: 1_000 }).catch(() => null);
            return committed !== null && JSON.stringify(JSON.parse(committed)) === JSON.stringify(want);
          },
          { timeoutMs: 60_000, what: `the committed value of ${entity} to be the expected one`, intervalMs: 500 },
        );
        const value = async (testId: string) => JSON.parse((await p.locator(`[data-testid="${testId}-value"]`).textContent())!) as unknown;
        assert.deepEqual(await value('feature-indicators-latest'), want, 'LATEST indicators');
        assert.deepEqual(await value('feature-indicators-asof'), wantAsOf, 'the as-of answer is the value at that event time');
        assert.equal(await value('feature-received-latest'), expected.received.get(entity), 'LATEST received, the second feature of the job');
        assert.equal(await value('feature-received-committed'), expected.received.get(entity), 'COMMITTED received');
        const shown = await p.locator('[data-testid="lookup-result"] > section').evaluateAll((els) => els.map((el) => el.getAttribute('data-testid')));
        assert.deepEqual(shown, detail.features.map((f) => `feature-${f.name}`), 'every feature of the job is shown');
      };
      await lookUp(page, `${base}/#/jobs/${CX_JOB}/features`);
      await shoot(page, shots, 'features');
      await fits('features');

      // The jobs list, and the job page in the dark scheme.
      await page.goto(`${base}/#/jobs`);
      const row = page.locator(`[data-testid="job-row-${CX_JOB}"]`);
      await row.waitFor({ timeout: 10_000 });
      assert.match((await row.textContent()) ?? '', /RUNNING/, 'the list shows the state');
      await shoot(page, shots, 'jobs');
      await fits('jobs');
      // Each job links to its page.
      await row.locator('a').first().click();
      await page.locator(`[data-testid="node-${sourceStage}"]`).waitFor({ timeout: 10_000 });
      assert.equal(new URL(page.url()).hash, `#/jobs/${CX_JOB}`);
      await page.goto(`${base}/#/jobs/${CX_JOB}`);
      const colours = () => page.locator('body').evaluate((el) => {
        const style = (globalThis as unknown as BrowserWindow).getComputedStyle(el);
        return { bg: style.backgroundColor, fg: style.color };
      });
      const light = await colours();
      assert.equal(await page.evaluate<string>('document.documentElement.dataset.theme'), 'light');
      await page.click('[data-testid="theme-toggle"]');
      assert.equal(await page.evaluate<string>('document.documentElement.dataset.theme'), 'dark');
      const dark = await colours();
      assert.notEqual(dark.bg, light.bg, 'the dark scheme has another background');
      for (const [name, c] of [['light', light], ['dark', dark]] as const) assert.ok(contrast(c.fg, c.bg) >= 7, `text on the ${name} background has a contrast of ${contrast(c.fg, c.bg).toFixed(1)} (7 or more)`);
      await page.locator(`[data-testid="node-${sourceStage}"]`).waitFor({ timeout: 10_000 });
      await page.locator('.u-over').first().waitFor({ timeout: 5_000 });
      await shoot(page, shots, 'job-dark');
      await fits('job (dark)');

      // A standby coordinator serves the dashboard too: the cluster's job with its graph, a banner
      // naming the leader with a link to its dashboard, and feature lookups it routes itself.
      await page.click('[data-testid="theme-toggle"]');
      await page.goto(`${standbyBase}/#/jobs/${CX_JOB}`);
      await page.locator('[data-testid="standby-banner"]').waitFor({ timeout: 10_000 });
      assert.equal(await page.locator('[data-testid="leader-link"]').getAttribute('href'), `${base}/#/jobs/${CX_JOB}`);
      for (const id of stageIds) await page.locator(`[data-testid="node-${id}"]`).waitFor({ timeout: 10_000 });
      await page.locator('[data-testid="rates-on-leader"]').waitFor({ timeout: 5_000 });
      await shoot(page, shots, 'standby');
      await fits('standby job');
      await page.click('[data-testid="tab-key-groups"]');
      await waitFor(async () => (await owners()).filter((o) => o === 'worker-2').length === 64, { timeoutMs: 10_000, what: "the standby's key-group map: half on worker-2" });
      await fits('standby key groups');
      await lookUp(page, `${standbyBase}/#/jobs/${CX_JOB}/features`);
      assert.deepEqual(tooWide, [], 'every page fits 1,280 px');

      assert.deepEqual(offMachine, [], 'no request left the coordinator');
      assert.deepEqual(pageErrors, [], 'no script error in the page');
    } finally {
      await browser?.close();
      await nc?.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
