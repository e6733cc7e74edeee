// The Nexmark queries q0–q5, q7 and q8 as Eddy jobs, over the events of sdk/nexmark.ts, read
// either from a generator inside the job (as Flink's Nexmark source) or from a JetStream stream
// filled by `eddy nexmark publish`. What each computes, and where it differs from the queries'
// SQL, is in README.md beside this file.
import { job, nexmark, slidingWindows, tumblingWindows, valueState, listState, mapState, type Auction, type Bid, type DataStream, type Job, type NexmarkEvent, type Person, type SinkSpec, type TimeWindow } from '@eddy/sdk';

export const QUERIES = ['q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q7', 'q8'] as const;
export type QueryName = (typeof QUERIES)[number];

export type NexmarkSourceOptions =
  /** Events made inside the job (sdk/nexmark.ts). */
  | { kind: 'generator'; events: number; partitions?: number; seed?: number; rate?: number; paced?: boolean }
  /** Events read from a JetStream stream `<stream>.<p>`, as `eddy nexmark publish` writes them. */
  | { kind: 'jetstream'; stream?: string; partitions?: number };

export interface NexmarkJobOptions {
  source: NexmarkSourceOptions;
  /** Where results go; absent: nowhere (Flink's blackhole connector), for benchmarks. */
  sink?: SinkSpec;
  /** Key groups of the keyed stages. @default 128 */
  maxParallelism?: number;
  /** The job's name. @default "nexmark-<query>" */
  name?: string;
}

/** Window sizes of the queries' SQL. */
export const Q5_SIZE_MS = 10_000;
export const Q5_SLIDE_MS = 2_000;
export const Q7_SIZE_MS = 10_000;
export const Q8_SIZE_MS = 10_000;
/** q1's dollar-to-euro rate, in thousandths (0.908). */
export const Q1_RATE_MILLIS = 908;
/** q3's states and category. */
export const Q3_STATES = ['OR', 'ID', 'CA'];
export const Q3_CATEGORY = 10;
/** How long (event time) q4 remembers a closed auction, to drop the bids still coming for it. */
export const Q4_CLOSED_RETENTION_MS = 60_000;

export interface Q0Row { auction: number; bidder: number; price: number; dateTime: number; extra: string }
export interface Q2Row { auction: number; price: number }
export interface Q3Row { name: string; city: string; state: string; id: number }
export interface Q4Row { id: number; final: number; auctions: number }
export interface Q5Row { auction: number; num: number; start: number; end: number }
export interface Q7Row { auction: number; price: number; bidder: number; dateTime: number; extra: string }
export interface Q8Row { id: number; name: string; starttime: number }

const isBid = (e: NexmarkEvent): e is Bid => e.type === 'bid';
const isPerson = (e: NexmarkEvent): e is Person => e.type === 'person';
const isAuction = (e: NexmarkEvent): e is Auction => e.type === 'auction';

/** One Nexmark query as a job. */
export function nexmarkJob(query: QueryName, options: NexmarkJobOptions): Job {
  const j = job(options.name ?? `nexmark-${query}`, { ...(options.maxParallelism !== undefined && { maxParallelism: options.maxParallelism }) });
  const s = options.source;
  const events: DataStream<NexmarkEvent> =
    s.kind === 'generator'
      ? j.source(nexmark({ events: s.events, ...(s.partitions !== undefined && { partitions: s.partitions }), ...(s.seed !== undefined && { seed: s.seed }), ...(s.rate !== undefined && { rate: s.rate }), ...(s.paced !== undefined && { paced: s.paced }) }))
      : j.source<NexmarkEvent>(s.stream ?? 'nexmark', { partitions: s.partitions ?? 4, timestamp: (e) => e.dateTime, watermark: { maxOutOfOrdernessMs: 0 } });
  const out = QUERY_BUILDERS[query](events);
  if (options.sink) out.sink(options.sink);
  return j;
}

/** What a query hands back: its result stream, which a sink may take. */
interface Results {
  sink(spec: SinkSpec): unknown;
}

const QUERY_BUILDERS: Record<QueryName, (events: DataStream<NexmarkEvent>) => Results> = {
  // q0: pass-through of the bids (the cost of reading and writing records).
  q0: (events) => events.filter(isBid).map((b): Q0Row => ({ auction: b.auction, bidder: b.bidder, price: b.price, dateTime: b.dateTime, extra: b.extra })),

  // q1: bid prices from dollars to euros (0.908), to three decimals as DECIMAL(23, 3).
  q1: (events) => events.filter(isBid).map((b): Q0Row => ({ auction: b.auction, bidder: b.bidder, price: (b.price * Q1_RATE_MILLIS) / 1000, dateTime: b.dateTime, extra: b.extra })),

  // q2: the bids of auctions whose id is a multiple of 123.
  q2: (events) => events.filter((e): e is Bid => e.type === 'bid' && e.auction % 123 === 0).map((b): Q2Row => ({ auction: b.auction, price: b.price })),

  // q3: sellers in Oregon, Idaho or California with their auctions in category 10: a regular
  // (unwindowed) join of people and auctions by seller, keyed by person id. Each result is emitted
  // once, when its second side arrives; a person id occurs once in the stream. Every person joins,
  // not only those of the three states: an auction whose seller is known not to match is dropped
  // at once instead of waiting forever for a seller that will not come.
  q3: (events) => {
    const person = valueState<{ name: string; city: string; state: string } | false>('person');
    const waiting = listState<number>('auctions-waiting');
    const people = events.filter(isPerson).keyBy((p) => p.id, 'by-person');
    const auctions = events.filter((e): e is Auction => e.type === 'auction' && e.category === Q3_CATEGORY).keyBy((a) => a.seller, 'by-seller');
    return people.connect(auctions).process<Q3Row>('q3-join', {
      async processElement1(p, ctx) {
        const matches = Q3_STATES.includes(p.state);
        ctx.state(person).update(matches && { name: p.name, city: p.city, state: p.state });
        const ids = await ctx.state(waiting).get();
        if (matches) for (const id of ids) ctx.emit({ name: p.name, city: p.city, state: p.state, id });
        if (ids.length > 0) ctx.state(waiting).clear();
      },
      async processElement2(a, ctx) {
        const p = await ctx.state(person).value();
        if (p) ctx.emit({ name: p.name, city: p.city, state: p.state, id: a.id });
        else if (p === undefined) await ctx.state(waiting).add(a.id);
      },
    }, { state: [person, waiting] });
  },

  // q4: the average closing price per category. An auction closes when the watermark passes its
  // expiry; its closing price is its highest bid with dateTime in [auction.dateTime, expires]
  // (no bid: no closing price, as the SQL's inner join). Keyed by auction, then by category.
  q4: (events) => {
    const auction = valueState<{ dateTime: number; expires: number; category: number; closed: boolean }>('auction');
    const best = valueState<number>('max-price');
    // Bids that came before their auction (ids run a little ahead): kept until it comes, or
    // dropped once the watermark passes them (an auction after a bid in time cannot take it).
    const early = listState<{ price: number; dateTime: number }>('early-bids');
    const totals = valueState<{ sum: number; count: number }>('totals');
    const auctions = events.filter(isAuction).keyBy((a) => a.id, 'auction-by-id');
    const bids = events.filter(isBid).keyBy((b) => b.auction, 'bid-by-auction');
    const closed = auctions.connect(bids).process<{ category: number; final: number }>('q4-winning-bids', {
      async processElement1(a, ctx) {
        ctx.state(auction).update({ dateTime: a.dateTime, expires: a.expires, category: a.category, closed: false });
        ctx.timers.registerEventTime(a.expires);
        // Both reads at once: a new auction's state is not in memory, and reads asked for
        // together share one RocksDB read.
        const [maxBefore, before] = await Promise.all([ctx.state(best).value(), ctx.state(early).get()]);
        let max = maxBefore;
        for (const b of before) if (b.dateTime >= a.dateTime && b.dateTime <= a.expires && (max === undefined || b.price > max)) max = b.price;
        if (before.length > 0) ctx.state(early).clear();
        if (max !== undefined) ctx.state(best).update(max);
      },
      async processElement2(b, ctx) {
        const a = await ctx.state(auction).value();
        if (a === undefined) {
          await ctx.state(early).add({ price: b.price, dateTime: b.dateTime });
          ctx.timers.registerEventTime(b.dateTime);
          return;
        }
        if (a.closed || b.dateTime < a.dateTime || b.dateTime > a.expires) return;
        const max = await ctx.state(best).value();
        if (max === undefined || b.price > max) ctx.state(best).update(b.price);
      },
    }, {
      state: [auction, best, early],
      onTimer: async (ts, ctx) => {
        const a = await ctx.state(auction).value();
        if (a !== undefined) {
          if (a.closed) {
            if (ts >= a.expires + Q4_CLOSED_RETENTION_MS) ctx.state(auction).clear();
          } else if (ts >= a.expires) {
            const max = await ctx.state(best).value();
            if (max !== undefined) ctx.emit({ category: a.category, final: max });
            ctx.state(best).clear();
            // Kept a while as closed, so that the bids still coming for it (late ones, after its
            // expiry) are dropped here rather than kept as early bids for an auction to come.
            ctx.state(auction).update({ ...a, closed: true });
            ctx.timers.registerEventTime(a.expires + Q4_CLOSED_RETENTION_MS);
          }
          return;
        }
        // Early bids whose time has passed: their auction, if it ever comes, comes too late for them.
        const left = (await ctx.state(early).get()).filter((b) => b.dateTime > ts);
        if (left.length > 0) ctx.state(early).update(left);
        else ctx.state(early).clear();
      },
    });
    return closed.keyBy((c) => c.category, 'by-category').process<Q4Row>('q4-average', async (c, ctx) => {
      const t = (await ctx.state(totals).value()) ?? { sum: 0, count: 0 };
      t.sum += c.final;
      t.count++;
      ctx.state(totals).update(t);
      // AVG of a BIGINT column is a BIGINT in Flink SQL: truncated.
      ctx.emit({ id: c.category, final: Math.trunc(t.sum / t.count), auctions: t.count });
    }, { state: [totals] });
  },

  // q5: hot items: in each sliding window (10 s, every 2 s), the auctions with the most bids.
  q5: (events) => {
    const top = valueState<{ max: number; auctions: number[] }>('top');
    const counts = events
      .filter(isBid)
      .keyBy((b) => b.auction, 'bid-by-auction')
      .window(slidingWindows(Q5_SIZE_MS, Q5_SLIDE_MS))
      .aggregate('q5-bid-counts', { createAccumulator: () => 0, add: (_b: Bid, n: number) => n + 1, getResult: (n: number) => n, merge: (a: number, b: number) => a + b }, (num: number, w: TimeWindow, key: string) => ({ auction: Number(key), num, start: w.start, end: w.end }));
    return counts.keyBy((c) => c.start, 'by-window').process<Q5Row>('q5-hot-items', async (c, ctx) => {
      const t = await ctx.state(top).value();
      if (t === undefined || c.num > t.max) ctx.state(top).update({ max: c.num, auctions: [c.auction] });
      else if (c.num === t.max) ctx.state(top).update({ max: t.max, auctions: [...t.auctions, c.auction] });
      // The window's counts all come before the watermark passes its end (they fire then, upstream).
      ctx.timers.registerEventTime(c.end - 1);
    }, {
      state: [top],
      onTimer: async (ts, ctx) => {
        const t = await ctx.state(top).value();
        const start = Number(ctx.key);
        for (const auction of t?.auctions ?? []) ctx.emit({ auction, num: t!.max, start, end: ts + 1 });
        ctx.state(top).clear();
      },
    });
  },

  // q7: the highest bids of each tumbling 10 s window (every bid with the window's top price).
  // Keyed by window, so that windows spread over key groups.
  q7: (events) =>
    events
      .filter(isBid)
      .keyBy((b) => Math.floor(b.dateTime / Q7_SIZE_MS), 'bid-by-window')
      .window(tumblingWindows(Q7_SIZE_MS))
      .aggregate(
        'q7-highest-bids',
        {
          createAccumulator: (): Q7Row[] => [],
          add: (b: Bid, top: Q7Row[]) => {
            const row = { auction: b.auction, price: b.price, bidder: b.bidder, dateTime: b.dateTime, extra: b.extra };
            if (top.length === 0 || b.price > top[0]!.price) return [row];
            if (b.price === top[0]!.price) top.push(row);
            return top;
          },
          getResult: (top: Q7Row[]) => top,
        },
        (top: Q7Row[]) => top,
      )
      .flatMap((top) => top),

  // q8: new users: people who opened an auction in the tumbling 10 s window they registered in,
  // a window join of people and auctions by person id = seller, emitted when the window ends.
  q8: (events) => {
    const windows = mapState<{ name?: string; auction?: boolean }>('windows');
    const people = events.filter(isPerson).keyBy((p) => p.id, 'person-by-id');
    const auctions = events.filter(isAuction).keyBy((a) => a.seller, 'auction-by-seller');
    const windowOf = (ts: number): number => Math.floor(ts / Q8_SIZE_MS) * Q8_SIZE_MS;
    return people.connect(auctions).process<Q8Row>('q8-join', {
      async processElement1(p, ctx) {
        const start = windowOf(p.dateTime);
        const w = (await ctx.state(windows).get(String(start))) ?? {};
        ctx.state(windows).put(String(start), { ...w, name: p.name });
        ctx.timers.registerEventTime(start + Q8_SIZE_MS - 1);
      },
      async processElement2(a, ctx) {
        const start = windowOf(a.dateTime);
        const w = (await ctx.state(windows).get(String(start))) ?? {};
        if (w.auction) return;
        ctx.state(windows).put(String(start), { ...w, auction: true });
        ctx.timers.registerEventTime(start + Q8_SIZE_MS - 1);
      },
    }, {
      state: [windows],
      onTimer: async (ts, ctx) => {
        const start = ts + 1 - Q8_SIZE_MS;
        const w = await ctx.state(windows).get(String(start));
        if (w?.name !== undefined && w.auction) ctx.emit({ id: Number(ctx.key), name: w.name, starttime: start });
        ctx.state(windows).remove(String(start));
      },
    });
  },
};
