// The windows-faults job as a test fixture (test/fixtures/windows-faults-job.ts): generated input
// in event time, the expectation of every window and join result computed here from the input (not
// with the job's code), a steady producer, and the record-for-record comparison.
import assert from 'node:assert/strict';
import type { NatsConnection } from '@nats-io/transport-node';
import { keyGroupForKey, partitionForKey } from '../../core/key-groups.ts';
import { JOIN_MS, SESSION_GAP_MS, TUMBLE_MS, WF_PARTITIONS, type WfEvent, type WfJoin, type WfWindow } from '../fixtures/windows-faults-job.ts';
import { readStream } from './streams.ts';

const T0 = 1_700_000_000_000;
/** Event time between consecutive events: 80,000 events span 5⅓ minutes of event time. */
const STEP_MS = 4;

export interface WfInput {
  /** What is published, in order: [subject, payload], the closing records last. */
  messages: Array<[string, string]>;
  /** The closing records (the last WF_PARTITIONS of messages): one per partition, an hour after the rest. */
  closers: Array<[string, string]>;
  /** The well-formed events of users whose windows close (not the closing records). */
  events: WfEvent[];
  /** The malformed payloads: each must be dead-lettered once. */
  malformed: string[];
}

/**
 * Deterministic input: events of `users` users in increasing event time, 5 % of them up to 1.5 s
 * earlier than their place (within the job's 2 s bound, so nothing is late however the splits
 * interleave), `malformedShare` of them malformed payloads, then one record an hour later on every
 * partition that closes every window.
 */
export function wfInput(count: number, seed: number, { users = 200, malformedShare = 0.001 } = {}): WfInput {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const messages: Array<[string, string]> = [];
  const events: WfEvent[] = [];
  const malformed: string[] = [];
  const subject = (user: string) => `wf-events.${partitionForKey(user, WF_PARTITIONS)}`;
  let maxTs = T0;
  for (let i = 0; i < count; i++) {
    const user = `u${Math.floor(rand() * users)}`;
    if (rand() < malformedShare) {
      const bad = `{"user":"${user}","broken":${i}`;
      malformed.push(bad);
      messages.push([subject(user), bad]);
      continue;
    }
    const ts = T0 + i * STEP_MS - (rand() < 0.05 ? Math.floor(rand() * 1500) : 0);
    const e: WfEvent = { user, kind: rand() < 0.25 ? 'a' : 'b', id: i, ts, amount: Math.floor(rand() * 100) };
    maxTs = Math.max(maxTs, ts);
    events.push(e);
    messages.push([subject(user), JSON.stringify(e)]);
  }
  const closers: Array<[string, string]> = [];
  for (let p = 0; p < WF_PARTITIONS; p++) {
    let n = 0;
    while (partitionForKey(`closer-${p}-${n}`, WF_PARTITIONS) !== p) n++;
    const closer: WfEvent = { user: `closer-${p}-${n}`, kind: 'b', id: -1 - p, ts: maxTs + 3_600_000, amount: 0 };
    closers.push([`wf-events.${p}`, JSON.stringify(closer)]);
  }
  messages.push(...closers);
  return { messages, closers, events, malformed };
}

export const windowKey = (w: WfWindow) => `${w.user}/${w.start}/${w.end}/${w.count}/${w.sum}`;
export const joinKey = (j: WfJoin) => `${j.user}/${j.id}/${j.ts}/${j.matches}`;

export interface WfExpectation {
  tumbling: string[];
  sessions: string[];
  join: string[];
}

/** The expected results, by definition. */
export function wfExpectation(events: readonly WfEvent[]): WfExpectation {
  const byUser = new Map<string, WfEvent[]>();
  for (const e of events) byUser.set(e.user, [...(byUser.get(e.user) ?? []), e]);
  const tumbling: string[] = [];
  const sessions: string[] = [];
  const joined: string[] = [];
  for (const [user, list] of byUser) {
    const windows = new Map<number, [number, number]>();
    for (const e of list) {
      const start = Math.floor(e.ts / TUMBLE_MS) * TUMBLE_MS;
      const w = windows.get(start) ?? [0, 0];
      windows.set(start, [w[0] + 1, w[1] + e.amount]);
    }
    for (const [start, [count, sum]] of windows) tumbling.push(windowKey({ user, start, end: start + TUMBLE_MS, count, sum }));
    // A record joins a session when it is at most the gap after its last record.
    const sorted = [...list].sort((a, b) => a.ts - b.ts);
    let first = sorted[0]!.ts;
    let last = first;
    let count = 0;
    let sum = 0;
    for (const e of sorted) {
      if (e.ts > last + SESSION_GAP_MS) {
        sessions.push(windowKey({ user, start: first, end: last + SESSION_GAP_MS, count, sum }));
        first = e.ts;
        count = 0;
        sum = 0;
      }
      last = e.ts;
      count++;
      sum += e.amount;
    }
    sessions.push(windowKey({ user, start: first, end: last + SESSION_GAP_MS, count, sum }));
    const bs = list.filter((e) => e.kind === 'b').map((e) => e.ts);
    for (const a of list) {
      if (a.kind !== 'a') continue;
      joined.push(joinKey({ user, id: a.id, ts: a.ts, matches: bs.filter((t) => t >= a.ts && t <= a.ts + JOIN_MS).length }));
    }
  }
  return { tumbling, sessions, join: joined };
}

/** The job's result streams, by stage. */
export const WF_STREAMS = { tumbling: 'WF_TUMBLING', sessions: 'WF_SESSIONS', join: 'WF_JOIN' } as const;

/** What the job emitted so far, by stage, as comparable keys. */
export async function wfResults(nc: NatsConnection): Promise<WfExpectation> {
  const windows = async (stream: string) => (await readStream(nc, stream)).map((m) => windowKey(JSON.parse(m.data) as WfWindow));
  return {
    tumbling: await windows(WF_STREAMS.tumbling),
    sessions: await windows(WF_STREAMS.sessions),
    join: (await readStream(nc, WF_STREAMS.join)).map((m) => joinKey(JSON.parse(m.data) as WfJoin)),
  };
}

/** Publishes `perTick` messages every 100 ms; resolves once the stream has every one. */
export { publishMessagesSteadily as publishSteadily } from './steady-publisher.ts';

/** Compares results with the expectation: what is missing, what is extra (partial or wrong), what is repeated. */
export function compareResults(what: string, got: string[], expected: string[], maxParallelism = 32): void {
  const want = new Map<string, number>();
  for (const k of expected) want.set(k, (want.get(k) ?? 0) + 1);
  const have = new Map<string, number>();
  for (const k of got) have.set(k, (have.get(k) ?? 0) + 1);
  const missing = [...want.keys()].filter((k) => !have.has(k));
  const keyGroups = [...new Set(missing.map((k) => keyGroupForKey(k.split('/')[0]!, maxParallelism)))];
  const extra = [...have.keys()].filter((k) => !want.has(k));
  const repeated = [...have].filter(([k, n]) => n > (want.get(k) ?? 0) && want.has(k)).map(([k]) => k);
  assert.ok(
    missing.length === 0 && extra.length === 0 && repeated.length === 0 && got.length === expected.length,
    `${what}: ${expected.length} expected, ${got.length} emitted; ${missing.length} missing (e.g. ${missing.slice(0, 3).join(' ')}; key groups ${keyGroups.slice(0, 10).join(' ')}), ` +
      `${extra.length} not expected (partial or wrong, e.g. ${extra.slice(0, 3).join(' ')}), ${repeated.length} repeated (e.g. ${repeated.slice(0, 3).join(' ')})`,
  );
}
