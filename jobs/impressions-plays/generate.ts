// A deterministic sample for the impressions-plays job: impressions of titles shown to profiles
// and the plays that follow some of them (soon, late in the window, after it, or with no
// impression at all), each partition's events slightly out of order (within the job's bound),
// so that every path of the join is taken. The demo, the tests and the benchmark use it.
//
//   node --import tsx jobs/impressions-plays/generate.ts <impressions> [seed] > sample.ndjson
// prints {"subject": "impressions.<p>" | "plays.<p>", "event": {...}} per line, in publish order.
import { pathToFileURL } from 'node:url';
import { JOIN_WINDOW_MS, MAX_OUT_OF_ORDERNESS_MS, type Impression, type Play } from './job.ts';

export interface GenerateOptions {
  /** Impressions to produce (plays follow from them). */
  impressions: number;
  /** Distinct profiles p-001 …; titles are t-01 … t-08. @default 12 */
  profiles?: number;
  /** PRNG seed: the same options give the same events. @default 1 */
  seed?: number;
  /** Event time of the first impression, ms since the epoch. @default 2026-01-01T00:00:00Z */
  startTs?: number;
}

export interface Published<T> { subject: string; event: T }

export interface Sample {
  impressions: Array<Published<Impression>>;
  plays: Array<Published<Play>>;
  /** Every event in one publish order (partitions interleaved). */
  all: Array<Published<Impression | Play>>;
}

/** Deterministic 32-bit PRNG (mulberry32): uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Partition of a profile in a 2-partition stream (the job's sources partition by profile). */
export function partitionOf(profile: string): number {
  let h = 0;
  for (const c of profile) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % 2;
}

/**
 * Orders one partition's events by time, then swaps neighbours less than the out-of-orderness
 * bound apart at random: out of order, yet never behind the partition's watermark.
 */
function roughlyOrdered<T extends { ts: number }>(events: Array<Published<T>>, next: () => number): Array<Published<T>> {
  const out = [...events].sort((a, b) => a.event.ts - b.event.ts);
  for (let i = 1; i < out.length; i++) {
    const max = Math.max(...out.slice(0, i - 1).map((e) => e.event.ts), Number.NEGATIVE_INFINITY);
    // Swapping i-1 and i puts out[i-1] after out[i]: it must stay within the bound of the largest before it.
    if (next() < 0.3 && out[i]!.event.ts - out[i - 1]!.event.ts < MAX_OUT_OF_ORDERNESS_MS / 2 && out[i - 1]!.event.ts >= max - MAX_OUT_OF_ORDERNESS_MS / 2) {
      [out[i - 1], out[i]] = [out[i]!, out[i - 1]!];
      i++;
    }
  }
  return out;
}

export function generate(options: GenerateOptions): Sample {
  const next = mulberry32(options.seed ?? 1);
  const profiles = options.profiles ?? 12;
  const start = options.startTs ?? Date.UTC(2026, 0, 1);
  const impressions: Array<Published<Impression>> = [];
  const plays: Array<Published<Play>> = [];
  let ts = start;
  let playN = 0;
  for (let i = 0; i < options.impressions; i++) {
    ts += 200 + Math.floor(next() * 800);
    const profile = `p-${String(1 + Math.floor(next() * profiles)).padStart(3, '0')}`;
    const title = `t-${String(1 + Math.floor(next() * 8)).padStart(2, '0')}`;
    const impression: Impression = { impressionId: `i-${i}`, profile, title, ts };
    impressions.push({ subject: `impressions.${partitionOf(profile)}`, event: impression });
    const r = next();
    // 45%: a play within the window (sometimes two); 15%: a play after it; the rest: none.
    const delays = r < 0.35 ? [Math.floor(next() * JOIN_WINDOW_MS)] : r < 0.45 ? [Math.floor(next() * 5_000), Math.floor(next() * JOIN_WINDOW_MS)] : r < 0.6 ? [JOIN_WINDOW_MS + 1 + Math.floor(next() * 30_000)] : [];
    for (const d of delays) plays.push({ subject: `plays.${partitionOf(profile)}`, event: { playId: `pl-${playN++}`, profile, title, ts: ts + d } });
    // Now and then a play of a title the profile was never shown.
    if (next() < 0.08) plays.push({ subject: `plays.${partitionOf(profile)}`, event: { playId: `pl-${playN++}`, profile, title: 't-99', ts: ts + Math.floor(next() * 10_000) } });
  }
  const bySubject = new Map<string, Array<Published<Impression | Play>>>();
  for (const e of [...impressions, ...plays]) bySubject.set(e.subject, [...(bySubject.get(e.subject) ?? []), e]);
  const streams = [...bySubject.values()].map((events) => roughlyOrdered(events, next));
  // Interleave the partitions roughly by time (each keeps its own order).
  const all: Array<Published<Impression | Play>> = [];
  const cursors = streams.map(() => 0);
  for (;;) {
    let best = -1;
    for (let s = 0; s < streams.length; s++) {
      const e = streams[s]![cursors[s]!];
      if (e !== undefined && (best < 0 || e.event.ts < streams[best]![cursors[best]!]!.event.ts)) best = s;
    }
    if (best < 0) break;
    all.push(streams[best]![cursors[best]!++]!);
  }
  return { impressions, plays, all };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [n, seed] = process.argv.slice(2).map(Number);
  if (!Number.isInteger(n) || n! <= 0) {
    process.stderr.write('usage: generate.ts <impressions> [seed]\n');
    process.exit(2);
  }
  for (const e of generate({ impressions: n!, ...(Number.isInteger(seed) && { seed: seed! }) }).all) process.stdout.write(`${JSON.stringify(e)}\n`);
}
