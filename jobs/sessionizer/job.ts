// Sessionization (docs/USE-CASES.md §4, a reviews site): page views cut into event-time session
// windows per user. A session lasts while a user's views come at most `gapMs` apart, and at most
// `maxSessionMs` from its first view, so that bots (which never pause) still get their sessions
// closed and emitted rather than growing one window forever. Views that arrive after their
// session fired (behind the watermark by more than the allowed lateness) go to a side output,
// counted and inspectable, never dropped silently. Splits that go quiet are marked idle so that a
// silent partition does not stall every session.
import { job, jetstream, sessionWindows } from '@eddy/sdk';

/** One page view, as producers publish it to `pageviews.<partition>` (partitioned by userId). */
export interface PageView {
  userId: string;
  /** Event time: when the page was viewed, ms since the epoch. */
  ts: number;
  page: string;
}

/** A closed session: [start, end) of event time, as session windows define it. */
export interface Session {
  userId: string;
  /** The first view's time. */
  start: number;
  /** min(last view + gap, start + maxSessionMs). */
  end: number;
  views: number;
  /** Page of the first view (the earliest by time; ties by page name). */
  landingPage: string;
  /** Page of the last view (the latest by time; ties by page name). */
  exitPage: string;
  /** Last view's time - first view's time. */
  durationMs: number;
  /** The session was cut at maxSessionMs: a user (typically a bot) who never paused for a gap. */
  capped: boolean;
}

export interface SessionizerOptions {
  /** Inactivity that ends a session. @default 1_800_000 (30 min, the web analytics convention) */
  gapMs?: number;
  /** Longest session, from its first view. @default 14_400_000 (4 h) */
  maxSessionMs?: number;
  /** How far views may arrive out of order and still count as on time. @default 60_000 */
  maxOutOfOrdernessMs?: number;
  /** A quiet partition stops holding the watermark back after this long (processing time). @default 10_000 */
  idleTimeoutMs?: number;
  /** Views accepted after their session fired; each fires the session again, updated. @default 0 */
  allowedLatenessMs?: number;
}

/** The accumulator: order-independent, so out-of-order views and merged sessions give the same result. */
interface Acc {
  views: number;
  firstTs: number;
  firstPage: string;
  lastTs: number;
  lastPage: string;
}

const EMPTY: Acc = { views: 0, firstTs: Number.POSITIVE_INFINITY, firstPage: '', lastTs: Number.NEGATIVE_INFINITY, lastPage: '' };

function merge(a: Acc, b: Acc): Acc {
  const first = b.firstTs < a.firstTs || (b.firstTs === a.firstTs && b.firstPage < a.firstPage) ? b : a;
  const last = b.lastTs > a.lastTs || (b.lastTs === a.lastTs && b.lastPage > a.lastPage) ? b : a;
  return { views: a.views + b.views, firstTs: first.firstTs, firstPage: first.firstPage, lastTs: last.lastTs, lastPage: last.lastPage };
}

const isPageView = (v: PageView): boolean =>
  typeof v?.userId === 'string' && v.userId.length > 0 && Number.isSafeInteger(v.ts) && v.ts >= 0 && typeof v.page === 'string';

export function sessionizer(options: SessionizerOptions = {}) {
  const gapMs = options.gapMs ?? 30 * 60_000;
  const maxSessionMs = options.maxSessionMs ?? 4 * 3600_000;
  const s = job('sessionizer', { errorPolicy: 'dead-letter' });
  s.source<PageView>('pageviews', {
    partitions: 4,
    key: 'userId',
    // A malformed view makes the assigner throw: the source dead-letters it with this reason.
    timestamp: (v) => {
      if (!isPageView(v)) throw new TypeError('not a page view: needs userId (a non-empty string), ts (integer ms since the epoch) and page (a string)');
      return v.ts;
    },
    watermark: { maxOutOfOrdernessMs: options.maxOutOfOrdernessMs ?? 60_000, idleTimeoutMs: options.idleTimeoutMs ?? 10_000 },
  })
    .keyBy((v) => v.userId)
    .window(sessionWindows(gapMs, { maxLengthMs: maxSessionMs }), {
      allowedLatenessMs: options.allowedLatenessMs ?? 0,
      lateSink: jetstream('sessions.late', { stream: 'SESSIONS_LATE' }),
    })
    .aggregate(
      'sessions',
      {
        createAccumulator: (): Acc => ({ ...EMPTY }),
        add: (v: PageView, acc: Acc): Acc => merge(acc, { views: 1, firstTs: v.ts, firstPage: v.page, lastTs: v.ts, lastPage: v.page }),
        getResult: (acc: Acc): Acc => acc,
        merge,
      },
      (acc, w, userId): Session => ({
        userId,
        start: w.start,
        end: w.end,
        views: acc.views,
        landingPage: acc.firstPage,
        exitPage: acc.lastPage,
        durationMs: acc.lastTs - acc.firstTs,
        capped: w.end - w.start >= maxSessionMs,
      }),
    )
    .sink(jetstream('sessions.out', { stream: 'SESSIONS' }));
  return s;
}

export default sessionizer();
