// impressions-plays: which impression led to a play. Impressions (a title shown to a profile)
// and plays (the profile starts the title) are joined per (profile, title) in event time with a
// connect: a play is attributed to the latest impression of its (profile, title) at most
// JOIN_WINDOW_MS before it. Matched pairs go to a JetStream sink; an impression no play claimed
// within the window is evicted by an event-time timer and emitted to the "unmatched" side
// output; a play with no impression goes to "orphan-plays"; a record whose event time the
// watermark has passed goes to "late" (its decisions are already made).
//
// Decisions wait for the watermark, so the result does not depend on arrival order: a play is
// decided by a timer at its own time (every impression at or before it has arrived, or is late),
// an impression is evicted by a timer at its time + JOIN_WINDOW_MS (every play that could claim
// it is decided). Both are the same timer when the times meet: one onTimer call, plays first.
import { job, jetstream, mapState, type ProcessContext } from '@eddy/sdk';

export interface Impression { impressionId: string; profile: string; title: string; ts: number }
export interface Play { playId: string; profile: string; title: string; ts: number }
export interface Pair { profile: string; title: string; impressionId: string; playId: string; impressionTs: number; playTs: number }
export interface Late { kind: 'impression' | 'play'; id: string; ts: number }

/** How long after an impression a play is still attributed to it. */
export const JOIN_WINDOW_MS = 60_000;
/** How far out of order events may arrive on a partition and still be on time. */
export const MAX_OUT_OF_ORDERNESS_MS = 2_000;

interface Pending { id: string; ts: number; matched?: boolean }
const impressions = mapState<Pending>('impressions');
const plays = mapState<Pending>('plays');

/** Map keys sort by event time, then id: fixed-width hex of the time. */
const at = (ts: number): string => ts.toString(16).padStart(14, '0');
const entryKey = (ts: number, id: string): string => `${at(ts)}|${id}`;

function late(ctx: ProcessContext<Pair>, kind: Late['kind'], id: string, ts: number): boolean {
  if (ts > ctx.timers.currentWatermark()) return false;
  ctx.output('late', { kind, id, ts } satisfies Late);
  return true;
}

const ip = job('impressions-plays', { errorPolicy: 'dead-letter' });
// Idle after 30 s: a partition with no traffic for that long stops holding the join back.
const watermark = { maxOutOfOrdernessMs: MAX_OUT_OF_ORDERNESS_MS, idleTimeoutMs: 30_000, intervalMs: 100 };
const pairs = ip
  .source<Impression>('impressions', { partitions: 2, key: 'profile', timestamp: (i) => i.ts, watermark })
  .keyBy((i) => `${i.profile}|${i.title}`)
  .connect(ip.source<Play>('plays', { partitions: 2, key: 'profile', timestamp: (p) => p.ts, watermark }).keyBy((p) => `${p.profile}|${p.title}`))
  .process<Pair>(
    'join',
    {
      processElement1(i, ctx) {
        if (late(ctx, 'impression', i.impressionId, i.ts)) return;
        ctx.state(impressions).put(entryKey(i.ts, i.impressionId), { id: i.impressionId, ts: i.ts });
        ctx.timers.registerEventTime(i.ts + JOIN_WINDOW_MS);
      },
      processElement2(p, ctx) {
        if (late(ctx, 'play', p.playId, p.ts)) return;
        ctx.state(plays).put(entryKey(p.ts, p.playId), { id: p.playId, ts: p.ts });
        ctx.timers.registerEventTime(p.ts);
      },
    },
    {
      state: [impressions, plays],
      async onTimer(t, ctx) {
        const [profile, title] = ctx.key.split('|') as [string, string];
        const shown = ctx.state(impressions);
        const played = ctx.state(plays);
        // Plays at t: each goes to the latest impression in [t - window, t].
        for (const [k, play] of await played.entries({ from: at(t), to: at(t + 1) })) {
          played.remove(k);
          const [latest] = (await shown.entries({ from: at(t - JOIN_WINDOW_MS), to: at(t + 1) })).slice(-1);
          if (latest === undefined) {
            ctx.output('orphan-plays', { playId: play.id, profile, title, ts: play.ts });
            continue;
          }
          const [ik, impression] = latest;
          if (!impression.matched) shown.put(ik, { ...impression, matched: true });
          ctx.emit({ profile, title, impressionId: impression.id, playId: play.id, impressionTs: impression.ts, playTs: play.ts });
        }
        // Impressions at t - window: no play can claim them any more.
        for (const [k, impression] of await shown.entries({ from: at(t - JOIN_WINDOW_MS), to: at(t - JOIN_WINDOW_MS + 1) })) {
          shown.remove(k);
          if (!impression.matched) ctx.output('unmatched', { impressionId: impression.id, profile, title, ts: impression.ts });
        }
      },
    },
  );
pairs.sink(jetstream('ip.pairs', { stream: 'IP_PAIRS' }));
pairs.sideOutput('unmatched').sink(jetstream('ip.unmatched', { stream: 'IP_UNMATCHED' }));
pairs.sideOutput('orphan-plays').sink(jetstream('ip.orphans', { stream: 'IP_ORPHANS' }));
pairs.sideOutput('late').sink(jetstream('ip.late', { stream: 'IP_LATE' }));

export default ip;
