// Session windows end to end with real processes (nats-server, a coordinator, two workers):
// crafted clicks, out of order within the sources' bound, a bot that never pauses (the maximum
// session length), idle splits, and a late click that goes to the late stream. The expected
// sessions are computed here from the definition, over the clicks sorted by time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { checkpointsOrIdle, startCluster, waitFor, REPO_ROOT } from '../kit/index.ts';
import { readStreamDirect } from '../kit/read-stream-direct.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import type { Click, Session } from '../fixtures/sessions-job.ts';
import type { ChildHandle } from '../kit/index.ts';

const GAP_MS = 3000;
const MAX_LENGTH_MS = 10_000;

/** Sessions by definition: a click within the gap of the last one and before start + max length joins; otherwise it starts one. */
function expectedSessions(clicks: Click[]): Session[] {
  const byUser = new Map<string, number[]>();
  for (const c of clicks) byUser.set(c.user, [...(byUser.get(c.user) ?? []), c.ts]);
  const out: Session[] = [];
  for (const [user, times] of byUser) {
    times.sort((a, b) => a - b);
    let start = times[0]!;
    let last = start;
    let n = 1;
    const close = () => out.push({ user, start, end: Math.min(last + GAP_MS, start + MAX_LENGTH_MS), clicks: n });
    for (const ts of times.slice(1)) {
      if (ts <= last + GAP_MS && ts < start + MAX_LENGTH_MS) {
        last = ts;
        n++;
      } else {
        close();
        start = last = ts;
        n = 1;
      }
    }
    close();
  }
  return out;
}

const key = (s: Session) => `${s.user}/${s.start}/${s.end}/${s.clicks}`;

test('windows - session windows per user over real workers: gaps, maximum length, out-of-order and late clicks', { timeout: 180_000 }, async () => {
  const cluster = await startCluster({ workers: 2 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-win-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/sessions-job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob('sessions')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
    const js = jetstream(nc);
    const publish = async (partition: number, clicks: Click[]) => {
      for (const c of clicks) await js.publish(`clicks.${partition}`, JSON.stringify(c));
    };
    const T = 1_700_000_000_000;
    // Partition 0: people, some clicks out of order (within the 1 s bound); partition 1: a bot
    // clicking every 500 ms for 25 s. Partitions 2 and 3 stay empty (idle).
    const people: Click[] = [
      { user: 'alice', ts: T }, { user: 'alice', ts: T + 1000 }, { user: 'bob', ts: T + 1500 }, { user: 'alice', ts: T + 2500 },
      { user: 'bob', ts: T + 4600 }, { user: 'alice', ts: T + 8000 }, { user: 'alice', ts: T + 7200 }, { user: 'bob', ts: T + 9000 },
      { user: 'bob', ts: T + 8500 }, { user: 'alice', ts: T + 12_000 },
    ];
    const bot: Click[] = Array.from({ length: 50 }, (_, i) => ({ user: 'bot', ts: T + i * 500 }));
    for (let i = 0; i < Math.max(people.length, bot.length); i++) {
      if (i < people.length) await publish(0, [people[i]!]);
      if (i < bot.length) await publish(1, [bot[i]!]);
    }
    // Carol moves split 0's watermark far ahead; split 1 goes idle, so every session above closes.
    const carol: Click = { user: 'carol', ts: T + 40_000 };
    await publish(0, [carol]);
    const expected = expectedSessions([...people, ...bot]);
    assert.deepEqual(expected.filter((s) => s.user === 'bot').map((s) => s.clicks), [20, 20, 10], 'the bot is cut at 10 s');
    const sessionsOut = async () => (await readStreamDirect(nc, 'SESSIONS_OUT')).map((m) => JSON.parse(m) as Session);
    const first = await waitFor(async () => {
      const out = await sessionsOut();
      return out.length >= expected.length ? out : undefined;
    }, { timeoutMs: 60_000, what: `${expected.length} sessions` }).catch(async (e: Error) => {
      const j = await client.getJob('sessions');
      throw new Error(`${e.message}; the stream holds: ${(await sessionsOut()).map(key).join(' ')}; job ${j.state}, restarts ${j.restarts}, checkpoint ${String(j.checkpoints?.latestId)}, ${j.lastFailure?.message ?? ''}`, { cause: e });
    });
    assert.deepEqual(first.map(key).sort(), expected.map(key).sort());

    // Late: alice at T+500 belongs to a session that has fired. Then carol again, 10 s later,
    // closes carol's first session (and only that: the late click must not make one).
    const late: Click = { user: 'alice', ts: T + 500 };
    await publish(0, [late, { user: 'carol', ts: T + 50_000 }]);
    const all = await waitFor(async () => {
      const out = await sessionsOut();
      return out.length >= expected.length + 1 ? out : undefined;
    }, { timeoutMs: 60_000, what: 'carol\'s first session' });
    assert.deepEqual(all.map(key).sort(), [...expected, ...expectedSessions([carol])].map(key).sort());
    const lateOut = await waitFor(async () => {
      const out = await readStreamDirect(nc, 'SESSIONS_LATE');
      return out.length >= 1 ? out.map((m) => JSON.parse(m) as Click) : undefined;
    }, { timeoutMs: 30_000, what: 'the late click' });
    assert.deepEqual(lateOut, [late]);
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('windows - a worker killed mid-session: windows and timers come back from the checkpoint, sessions are emitted once', { timeout: 180_000 }, async () => {
  const cluster = await startCluster({ workers: 2, workerTimeoutMs: 2000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-win-kill-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/sessions-job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob('sessions')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
    const js = jetstream(nc);
    const publish = async (partition: number, clicks: Click[]) => {
      for (const c of clicks) await js.publish(`clicks.${partition}`, JSON.stringify(c));
    };
    const T = 1_700_000_000_000;
    // 40 users on partition 0, a click every 700 ms each for 20 s: sessions of 10 s (the maximum)
    // that are open when the worker dies. Partitions 1-3 stay empty (idle).
    const clicks: Click[] = [];
    for (let ts = 0; ts < 20_000; ts += 700) for (let u = 0; u < 40; u++) clicks.push({ user: `u${u}`, ts: T + ts });
    const half = clicks.findIndex((c) => c.ts >= T + 12_000);
    await publish(0, clicks.slice(0, half));
    // Kill once a checkpoint completed after the first half was read: two more, or the job idle
    // with everything in its latest one (no checkpoints while idle).
    const before = await client.getJob('sessions');
    await checkpointsOrIdle(client, 'sessions', { timeoutMs: 60_000 });
    const running = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((a) => a.jobId === 'sessions'));
    const victim = running[0]!.workerId;
    const handles = new Map<string, ChildHandle>(cluster.workers.map((w) => [w.name.replace(/^worker /, ''), w]));
    handles.get(victim)!.kill('SIGKILL');
    await cluster.addWorker('replacement-1');
    await waitFor(async () => (await client.getJob('sessions')).restarts > before.restarts, { timeoutMs: 30_000, what: 'the job to restart' });
    await publish(0, [...clicks.slice(half), { user: 'closer', ts: T + 60_000 }]);
    const expected = expectedSessions(clicks);
    assert.equal(expected.length, 80, 'two sessions per user');
    const out = await waitFor(async () => {
      const o = (await readStreamDirect(nc, 'SESSIONS_OUT')).map((m) => JSON.parse(m) as Session);
      return o.length >= expected.length ? o : undefined;
    }, { timeoutMs: 90_000, what: `${expected.length} sessions` });
    assert.deepEqual(out.map(key).sort(), expected.map(key).sort(), 'every session once, none lost, none twice');
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
