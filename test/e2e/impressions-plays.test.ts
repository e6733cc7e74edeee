// The impressions-plays job end to end with real processes (nats-server, a coordinator, two
// workers, one SIGKILLed half way): a generated sample of impressions and plays, out of order
// within the sources' bound, then two late events. The expected pairs, unmatched impressions, orphan plays and late
// events are computed here from the definition (a play goes to the latest impression of its
// profile and title at most JOIN_WINDOW_MS before it), not with the job's code.
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
import { JOIN_WINDOW_MS, type Impression, type Pair, type Play } from '../../jobs/impressions-plays/job.ts';
import { generate, partitionOf } from '../../jobs/impressions-plays/generate.ts';

function expectedJoin(impressions: Impression[], plays: Play[]) {
  const pairs: Pair[] = [];
  const orphans: Array<{ playId: string; profile: string; title: string; ts: number }> = [];
  const claimed = new Set<string>();
  for (const p of plays) {
    const candidates = impressions.filter((i) => i.profile === p.profile && i.title === p.title && i.ts <= p.ts && p.ts - i.ts <= JOIN_WINDOW_MS);
    // The latest; on equal times the greatest id.
    candidates.sort((a, b) => a.ts - b.ts || (a.impressionId < b.impressionId ? -1 : 1));
    const i = candidates[candidates.length - 1];
    if (i === undefined) {
      orphans.push({ playId: p.playId, profile: p.profile, title: p.title, ts: p.ts });
      continue;
    }
    claimed.add(i.impressionId);
    pairs.push({ profile: p.profile, title: p.title, impressionId: i.impressionId, playId: p.playId, impressionTs: i.ts, playTs: p.ts });
  }
  const unmatched = impressions.filter((i) => !claimed.has(i.impressionId)).map((i) => ({ impressionId: i.impressionId, profile: i.profile, title: i.title, ts: i.ts }));
  return { pairs, orphans, unmatched };
}

async function messages(nc: NatsConnection, stream: string): Promise<number> {
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } catch {
    return 0;
  }
}

const sorted = <T>(xs: T[]): T[] => [...xs].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

test('impressions-plays - joined per profile and title in event time over two workers, one killed: pairs, unmatched impressions, orphan plays, late events, once each', { timeout: 180_000 }, async () => {
  const cluster = await startCluster({ workers: 2, workerTimeoutMs: 2000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-ip-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 15_000, what: 'two live workers' });
    const bundle = await buildBundle(join(REPO_ROOT, 'jobs/impressions-plays/job.ts'), join(dir, 'cache'));
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob('impressions-plays')).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });
    const js = jetstream(nc);
    const sample = generate({ impressions: 150, seed: 7 });
    const impressions = sample.impressions.map((e) => e.event);
    const plays = sample.plays.map((e) => e.event);
    const expected = expectedJoin(impressions, plays);
    // The sample takes every path: plays in the window (some sharing an impression), after it, without one.
    assert.ok(expected.pairs.length > 20 && expected.orphans.length > 5 && expected.unmatched.length > 20, JSON.stringify({ pairs: expected.pairs.length, orphans: expected.orphans.length, unmatched: expected.unmatched.length }));
    assert.ok(new Set(expected.pairs.map((p) => p.impressionId)).size < expected.pairs.length, 'an impression claimed by two plays');
    const outOfOrder = sample.all.filter((e, i) => sample.all.slice(0, i).some((x) => x.subject === e.subject && x.event.ts > e.event.ts));
    assert.ok(outOfOrder.length > 5, 'events out of order within their partition');

    // Half the sample, a checkpoint after it, a worker SIGKILLed, the rest: timers, pending
    // impressions and plays come back from the checkpoint, and the exactly-once sinks hold
    // each result once.
    const half = Math.floor(sample.all.length / 2);
    for (const e of sample.all.slice(0, half)) await js.publish(e.subject, JSON.stringify(e.event));
    const before = await client.getJob('impressions-plays');
    // The first half in a completed checkpoint: two more, or the job idle once it is processed.
    await checkpointsOrIdle(client, 'impressions-plays', { timeoutMs: 60_000 });
    const running = (await client.listWorkers()).filter((w) => w.state === 'ALIVE' && w.assignments.some((x) => x.jobId === 'impressions-plays' && x.keyGroups.length > 0));
    const handles = new Map<string, ChildHandle>(cluster.workers.map((w) => [w.name.replace(/^worker /, ''), w]));
    handles.get(running[0]!.workerId)!.kill('SIGKILL');
    await cluster.addWorker('replacement-1');
    await waitFor(async () => (await client.getJob('impressions-plays')).restarts > before.restarts, { timeoutMs: 30_000, what: 'the job to restart' });
    for (const e of sample.all.slice(half)) await js.publish(e.subject, JSON.stringify(e.event));
    // Closers far ahead on every partition of both sources: the watermark passes every decision.
    const last = Math.max(...sample.all.map((e) => e.event.ts));
    const far = last + 10 * JOIN_WINDOW_MS;
    const closers = ['closer-a', 'closer-b', 'closer-c', 'closer-d', 'closer-e'];
    for (const p of [0, 1]) {
      const profile = closers.find((c) => partitionOf(c) === p)!;
      await js.publish(`impressions.${p}`, JSON.stringify({ impressionId: `close-i${p}`, profile, title: 'x', ts: far } satisfies Impression));
      await js.publish(`plays.${p}`, JSON.stringify({ playId: `close-p${p}`, profile, title: 'y', ts: far } satisfies Play));
    }
    const failure = async () => {
      const j = await client.getJob('impressions-plays');
      return `pairs ${await messages(nc, 'IP_PAIRS')}/${expected.pairs.length}, unmatched ${await messages(nc, 'IP_UNMATCHED')}/${expected.unmatched.length}, orphans ${await messages(nc, 'IP_ORPHANS')}/${expected.orphans.length}; job ${j.state}, restarts ${j.restarts}, ${j.lastFailure?.message ?? ''}`;
    };
    await waitFor(async () => (await messages(nc, 'IP_PAIRS')) >= expected.pairs.length && (await messages(nc, 'IP_UNMATCHED')) >= expected.unmatched.length && (await messages(nc, 'IP_ORPHANS')) >= expected.orphans.length, {
      timeoutMs: 60_000,
      what: 'every pair, unmatched impression and orphan play',
    }).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${await failure()}`, { cause: e });
    });

    // Late: behind a watermark that passed everything above. Neither may change a decision.
    const first = sample.all[0]!.event;
    const lateImpression: Impression = { impressionId: 'late-i', profile: first.profile, title: first.title, ts: first.ts + 1 };
    const latePlay: Play = { playId: 'late-p', profile: first.profile, title: first.title, ts: first.ts + 2 };
    await js.publish(`impressions.${partitionOf(first.profile)}`, JSON.stringify(lateImpression));
    await js.publish(`plays.${partitionOf(first.profile)}`, JSON.stringify(latePlay));
    await waitFor(async () => (await messages(nc, 'IP_LATE')) >= 2, { timeoutMs: 30_000, what: 'the late events' });
    // A checkpoint later, anything emitted twice (or for the late events) would be there.
    await checkpointsOrIdle(client, 'impressions-plays');

    const read = async (stream: string) => (await readStreamDirect(nc, stream)).map((m) => JSON.parse(m) as unknown);
    assert.deepEqual(sorted(await read('IP_PAIRS')), sorted(expected.pairs), 'pairs, record for record');
    assert.deepEqual(sorted(await read('IP_UNMATCHED')), sorted(expected.unmatched), 'impressions evicted unmatched by their timers');
    assert.deepEqual(sorted(await read('IP_ORPHANS')), sorted(expected.orphans), 'plays without an impression');
    assert.deepEqual(sorted(await read('IP_LATE')), sorted([{ kind: 'impression', id: 'late-i', ts: lateImpression.ts }, { kind: 'play', id: 'late-p', ts: latePlay.ts }]), 'late events to their side output');
  } finally {
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
