// The sessionizer job of jobs/sessionizer end to end, with its own settings (30 min gap, 4 h
// maximum, 60 s out-of-orderness): a coordinator, two worker processes and nats-server. Crafted
// page views: people with pauses shorter and longer than the gap, views published out of order
// within the bound, a bot that views a page every minute for nine hours (cut at 4 h), malformed
// views (dead letters), and a view that arrives after its session fired (the late stream). The
// expected sessions are computed here from the definition, over each user's views sorted by time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startCluster, waitFor, REPO_ROOT } from '../kit/index.ts';
import { readStreamDirect } from '../kit/read-stream-direct.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import type { PageView, Session } from '../../jobs/sessionizer/job.ts';

const GAP_MS = 30 * 60_000;
const MAX_MS = 4 * 3600_000;
const OUT_OF_ORDER_MS = 60_000;
const PARTITIONS = 4;
const T = Date.UTC(2026, 10, 2, 8);
const MIN = 60_000;

/** Sessions by definition: a view within the gap of the previous one and before start + maximum joins it; otherwise it starts one. */
function expectedSessions(views: PageView[]): Session[] {
  const byUser = new Map<string, PageView[]>();
  for (const v of views) byUser.set(v.userId, [...(byUser.get(v.userId) ?? []), v]);
  const out: Session[] = [];
  for (const [userId, list] of byUser) {
    list.sort((a, b) => a.ts - b.ts || (a.page < b.page ? -1 : a.page > b.page ? 1 : 0));
    let current: PageView[] = [];
    const close = () => {
      const first = current[0]!;
      const last = current[current.length - 1]!;
      const end = Math.min(last.ts + GAP_MS, first.ts + MAX_MS);
      out.push({ userId, start: first.ts, end, views: current.length, landingPage: first.page, exitPage: last.page, durationMs: last.ts - first.ts, capped: end - first.ts >= MAX_MS });
    };
    for (const v of list) {
      const first = current[0];
      if (first && v.ts <= current[current.length - 1]!.ts + GAP_MS && v.ts < first.ts + MAX_MS) current.push(v);
      else {
        if (first) close();
        current = [v];
      }
    }
    close();
  }
  return out;
}

const key = (s: Session) => `${s.userId}@${s.start}-${s.end} ${s.views} ${s.landingPage}>${s.exitPage} ${s.durationMs}${s.capped ? ' capped' : ''}`;

/** Deterministic pseudo-random numbers for the crafted users. */
function lcg(seed: number): () => number {
  let x = seed;
  return () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
}

/** The crafted views per partition, in publishing order (by time, with swaps within the bound). */
function craft(): { byPartition: PageView[][]; views: PageView[] } {
  const views: PageView[] = [];
  const partitionOf = new Map<string, number>();
  const add = (userId: string, partition: number, ts: number, page: string) => {
    partitionOf.set(userId, partition);
    views.push({ userId, ts, page });
  };
  // Alice: two sessions (a 45 min pause), the second closed by the gap.
  for (const [m, page] of [[0, '/'], [10, '/search'], [25, '/restaurant/1'], [70, '/'], [80, '/review/new']] as const) add('alice', 0, T + m * MIN, page);
  // Bob: views exactly one gap apart join (the gap is inclusive); then one a minute past it.
  for (const [m, page] of [[5, '/'], [35, '/photos'], [66, '/profile']] as const) add('bob', 1, T + m * MIN, page);
  // A bot: a view every minute for nine hours; its sessions are cut at 4 h, 4 h and 1 h.
  for (let m = 0; m < 9 * 60; m++) add('bot-1', 2, T + m * MIN, `/restaurant/${m % 3}`);
  // Carol: one view, a session of one.
  add('carol', 3, T + 100 * MIN, '/');
  // 40 more users with steps from 20 s to 45 min.
  const random = lcg(7);
  for (let u = 0; u < 40; u++) {
    let ts = T + Math.floor(random() * 60) * MIN;
    for (let i = 0; i < 8; i++) {
      add(`user-${u}`, u % PARTITIONS, ts, `/page/${Math.floor(random() * 5)}`);
      const r = random();
      ts += r < 0.3 ? 20_000 + Math.floor(random() * 40_000) : r < 0.85 ? Math.floor(random() * 25) * MIN + MIN : 45 * MIN;
    }
  }
  const byPartition: PageView[][] = Array.from({ length: PARTITIONS }, () => []);
  for (const v of views) byPartition[partitionOf.get(v.userId)!]!.push(v);
  for (const list of byPartition) {
    list.sort((a, b) => a.ts - b.ts);
    // Out of order within the bound: swap neighbours less than the bound apart, every third pair.
    for (let i = 0; i + 1 < list.length; i += 3) {
      if (list[i + 1]!.ts - list[i]!.ts < OUT_OF_ORDER_MS && list[i + 1]!.ts !== list[i]!.ts) [list[i], list[i + 1]] = [list[i + 1]!, list[i]!];
    }
  }
  return { byPartition, views };
}

test('sessionizer - sessions per user over real workers: gaps, the 4 h cap on a bot, out-of-order views, late views to their stream, dead letters', { timeout: 120_000 }, async () => {
  const cluster = await startCluster({ workers: 2 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-sessionizer-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'jobs/sessionizer/job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob('sessionizer')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
    const js = jetstream(nc);
    const { byPartition, views } = craft();
    const swapped = byPartition.flat().filter((v, i, all) => i > 0 && v.ts < all[i - 1]!.ts).length;
    assert.ok(swapped >= 20, `the input holds out-of-order views (${swapped})`);
    // Partitions interleaved by position, as producers would publish concurrently.
    const longest = Math.max(...byPartition.map((l) => l.length));
    for (let i = 0; i < longest; i++) {
      for (let p = 0; p < PARTITIONS; p++) {
        const v = byPartition[p]![i];
        if (v) await js.publish(`pageviews.${p}`, JSON.stringify(v));
      }
    }
    await js.publish('pageviews.1', 'not json');
    await js.publish('pageviews.2', JSON.stringify({ ts: T, page: '/' }));
    // A view far ahead on every partition moves every split's watermark past every session.
    for (let p = 0; p < PARTITIONS; p++) await js.publish(`pageviews.${p}`, JSON.stringify({ userId: `closer-${p}`, ts: T + 2 * 24 * 3600_000, page: '/' }));

    const expected = expectedSessions(views);
    assert.deepEqual(expected.filter((s) => s.userId === 'bot-1').map((s) => [s.views, s.capped]), [[240, true], [240, true], [60, false]], 'the bot is cut at 4 h');
    assert.equal(expected.filter((s) => s.userId === 'bob').length, 2, 'bob: a view exactly one gap later joins, one a minute past it does not');
    const sessions = async () => (await readStreamDirect(nc, 'SESSIONS')).map((m) => JSON.parse(m) as Session);
    const out = await waitFor(async () => {
      const got = await sessions();
      return got.length >= expected.length ? got : undefined;
    }, { timeoutMs: 60_000, what: `${expected.length} sessions` }).catch(async (e: Error) => {
      const j = await client.getJob('sessionizer');
      throw new Error(`${e.message}: ${(await sessions()).length} so far; job ${j.state}, restarts ${j.restarts}, ${j.lastFailure?.message ?? ''}`, { cause: e });
    });
    assert.deepEqual(out.map(key).sort(), expected.map(key).sort());

    // Late: alice at T+5 min belongs to her first session, which has fired.
    const late: PageView = { userId: 'alice', ts: T + 5 * MIN, page: '/late' };
    await js.publish('pageviews.0', JSON.stringify(late));
    const lateOut = await waitFor(async () => {
      const got = await readStreamDirect(nc, 'SESSIONS_LATE');
      return got.length >= 1 ? got.map((m) => JSON.parse(m) as PageView) : undefined;
    }, { timeoutMs: 30_000, what: 'the late view' });
    assert.deepEqual(lateOut, [late]);
    // Published with the same checkpoint as the late view: the session did not fire again.
    assert.deepEqual((await sessions()).map(key).sort(), expected.map(key).sort(), 'a late view changes no session');
    const job = await client.getJob('sessionizer');
    assert.equal(job.stages.reduce((n, s) => n + Number(s.deadLetters), 0), 2, 'the malformed views are dead letters');
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
