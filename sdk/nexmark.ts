// The Nexmark benchmark's events (an online auction: people, auctions and bids) as a generator
// source, after the model of the reference generator (nexmark/nexmark, nexmark-flink's
// generator package), written here from its description:
//   - event n is a Person when n mod 50 is 0, an Auction when it is 1..3, otherwise a Bid
//     (proportions 1:3:46, configurable);
//   - ids start at 1000; person and auction ids grow with n, so event n knows the last person
//     and auction made before it without any state;
//   - most auctions belong to hot sellers, most bids go to hot auctions and come from hot bidders
//     (the first person or auction of the latest batch of 100); the others pick among the
//     recently active people or in-flight auctions, a few ids ahead of the last one made;
//   - sizes are padded to ~200 B (Person), ~500 B (Auction), ~100 B (Bid) by `extra`, counted
//     as the reference counts them (8 bytes per number, characters per string);
//   - event time is baseTimeMs + n * 1000 / rate; an auction expires within about twice the time
//     it takes to make 100 more auctions.
// Unlike the reference, event n's randomness is seeded by (seed, n), so the stream is the same on
// every run and every replay, and split p of P makes the events n ≡ p (mod P) (sdk/generator.ts).
import { DEFAULT_BASE_TIME_MS, SeededRandom, compileGeneratorSpec, type GeneratorSource, type GeneratorWatermarkOptions } from './generator.ts';

export interface Person {
  type: 'person';
  id: number;
  name: string;
  emailAddress: string;
  creditCard: string;
  city: string;
  state: string;
  /** Event time, ms since the epoch. */
  dateTime: number;
  extra: string;
}

export interface Auction {
  type: 'auction';
  id: number;
  itemName: string;
  description: string;
  initialBid: number;
  reserve: number;
  dateTime: number;
  /** When the auction closes, ms since the epoch. */
  expires: number;
  seller: number;
  category: number;
  extra: string;
}

export interface Bid {
  type: 'bid';
  auction: number;
  bidder: number;
  price: number;
  channel: string;
  url: string;
  dateTime: number;
  extra: string;
}

export type NexmarkEvent = Person | Auction | Bid;

export interface NexmarkOptions {
  /** Events in all, over every split; 0 for no end. */
  events: number;
  /** Events per second of event time. @default 10000 (the reference's first-event.rate) */
  rate?: number;
  /** Emit at `rate` by the wall clock instead of as fast as the job takes them. @default false */
  paced?: boolean;
  /** Seeds every event's randomness. @default 0 */
  seed?: number;
  /** Splits. @default 4 */
  partitions?: number;
  /** The source's name (its stage is source-<name>). @default "nexmark" */
  name?: string;
  /** Event time of event 0. @default 1767225600000 (2026-01-01) */
  baseTimeMs?: number;
  /** @default 1 */
  personProportion?: number;
  /** @default 3 */
  auctionProportion?: number;
  /** @default 46 */
  bidProportion?: number;
  /** @default 200 */
  avgPersonBytes?: number;
  /** @default 500 */
  avgAuctionBytes?: number;
  /** @default 100 */
  avgBidBytes?: number;
  /** 1 in this many bids go to a random in-flight auction, the others to a hot one. @default 2 */
  hotAuctionRatio?: number;
  /** 1 in this many auctions have a random seller, the others a hot one. @default 4 */
  hotSellersRatio?: number;
  /** 1 in this many bids come from a random bidder, the others from a hot one. @default 4 */
  hotBiddersRatio?: number;
  /** People a random seller or bidder is chosen among. @default 1000 */
  numActivePeople?: number;
  /** Auctions a random bid's auction is chosen among. @default 100 */
  numInFlightAuctions?: number;
  watermark?: GeneratorWatermarkOptions;
}

/** Every setting, defaults applied. */
export type NexmarkConfig = Required<Omit<NexmarkOptions, 'watermark' | 'name'>>;

export const FIRST_PERSON_ID = 1000;
export const FIRST_AUCTION_ID = 1000;
export const FIRST_CATEGORY_ID = 10;
const NUM_CATEGORIES = 5;
/** Ids a random pick may be ahead of the last one made (a bid before its auction, in time). */
const PERSON_ID_LEAD = 10;
const AUCTION_ID_LEAD = 10;
/** Hot sellers, bidders and auctions are the first of each batch of this many. */
const HOT_BATCH = 100;

export function compileNexmarkConfig(o: NexmarkOptions): NexmarkConfig {
  const c: NexmarkConfig = {
    events: o.events,
    rate: o.rate ?? 10_000,
    paced: o.paced ?? false,
    seed: o.seed ?? 0,
    partitions: o.partitions ?? 4,
    baseTimeMs: o.baseTimeMs ?? DEFAULT_BASE_TIME_MS,
    personProportion: o.personProportion ?? 1,
    auctionProportion: o.auctionProportion ?? 3,
    bidProportion: o.bidProportion ?? 46,
    avgPersonBytes: o.avgPersonBytes ?? 200,
    avgAuctionBytes: o.avgAuctionBytes ?? 500,
    avgBidBytes: o.avgBidBytes ?? 100,
    hotAuctionRatio: o.hotAuctionRatio ?? 2,
    hotSellersRatio: o.hotSellersRatio ?? 4,
    hotBiddersRatio: o.hotBiddersRatio ?? 4,
    numActivePeople: o.numActivePeople ?? 1000,
    numInFlightAuctions: o.numInFlightAuctions ?? 100,
  };
  for (const [k, v] of Object.entries(c)) {
    if (k === 'paced' || k === 'rate') continue;
    const min = k.endsWith('Proportion') || k === 'events' || k === 'seed' || k === 'baseTimeMs' ? 0 : 1;
    if (!Number.isSafeInteger(v) || (v as number) < min) throw new TypeError(`nexmark: ${k} must be an integer >= ${min}, got ${String(v)}`);
  }
  if (c.personProportion < 1 || c.auctionProportion < 1) throw new TypeError('nexmark: personProportion and auctionProportion must be >= 1');
  return c;
}

/** The Nexmark event stream as a generator source: `job.source(nexmark({ events: 1e6 }))`. */
export function nexmark(options: NexmarkOptions): GeneratorSource<NexmarkEvent> {
  const c = compileNexmarkConfig(options);
  const model = new NexmarkModel(c);
  const { events, rate, paced, partitions, baseTimeMs, ...rest } = c;
  const spec = compileGeneratorSpec('nexmark', { events, rate, paced, partitions, baseTimeMs }, rest);
  return {
    kind: 'generator',
    name: options.name ?? 'nexmark',
    partitions,
    spec,
    eventAt: (n) => model.eventAt(n),
    timeAt: (n) => model.timeAt(n),
    ...(options.watermark && { watermark: options.watermark }),
  };
}

const US_STATES = ['AZ', 'CA', 'ID', 'OR', 'WA', 'WY'];
const US_CITIES = ['Phoenix', 'Los Angeles', 'San Francisco', 'Boise', 'Portland', 'Bend', 'Redmond', 'Seattle', 'Kent', 'Cheyenne'];
const FIRST_NAMES = ['Peter', 'Paul', 'Luke', 'John', 'Saul', 'Vicky', 'Kate', 'Julie', 'Sarah', 'Deiter', 'Walter'];
const LAST_NAMES = ['Shultz', 'Abrams', 'Spencer', 'White', 'Bartels', 'Walton', 'Smith', 'Jones', 'Noris'];
const HOT_CHANNELS = ['Google', 'Facebook', 'Baidu', 'Apple'];
const CHANNELS = 10_000;

// Padding and URLs are cut from tables made once from a fixed seed: a substring costs far less
// than a character per random draw, and the content of `extra` means nothing.
const POOL_CHARS = 1 << 16;
const POOL = (() => {
  const r = new SeededRandom(0x5eed, 0);
  let s = '';
  for (let i = 0; i < POOL_CHARS; i++) s += String.fromCharCode(97 + r.nextInt(26));
  return s;
})();
const baseUrl = (r: SeededRandom): string => `https://www.nexmark.com/${randomString(r, 5)}/${randomString(r, 5)}/${randomString(r, 5)}/item.htm?query=1`;
const HOT_URLS = (() => {
  const r = new SeededRandom(0x5eed, 1);
  return HOT_CHANNELS.map(() => baseUrl(r));
})();
const CHANNEL_NAMES: string[] = [];
const CHANNEL_URLS: string[] = [];
{
  const r = new SeededRandom(0x5eed, 2);
  for (let i = 0; i < CHANNELS; i++) {
    CHANNEL_NAMES.push(`channel-${i}`);
    CHANNEL_URLS.push(r.nextInt(10) > 0 ? `${baseUrl(r)}&channel_id=${i}` : baseUrl(r));
  }
}

/** 3..maxLength-1 letters with some spaces, trimmed (as the reference's nextString). */
function randomString(r: SeededRandom, maxLength: number): string {
  const length = 3 + r.nextInt(maxLength - 3);
  let s = '';
  for (let i = 0; i < length; i++) s += r.nextInt(13) === 0 ? ' ' : String.fromCharCode(97 + r.nextInt(26));
  return s.trim();
}

/** Padding so that currentSize plus it averages desiredAverage (±20 %). */
function extraFor(r: SeededRandom, currentSize: number, desiredAverage: number): string {
  if (currentSize > desiredAverage) return '';
  const rest = desiredAverage - currentSize;
  const delta = Math.round(rest * 0.2);
  const size = rest - delta + (delta === 0 ? 0 : r.nextInt(2 * delta));
  const at = r.nextInt(POOL_CHARS - size);
  return POOL.slice(at, at + size);
}

function price(r: SeededRandom): number {
  return Math.round(10 ** (r.nextDouble() * 6) * 100);
}

/** Event n as a pure function of (config, n). One instance reuses one random generator. */
export class NexmarkModel {
  readonly config: NexmarkConfig;
  readonly #total: number;
  readonly #random = new SeededRandom();
  /** Events between an auction and the one numInFlightAuctions after it. */
  readonly #eventsForInFlightAuctions: number;

  constructor(config: NexmarkConfig) {
    this.config = config;
    this.#total = config.personProportion + config.auctionProportion + config.bidProportion;
    this.#eventsForInFlightAuctions = Math.floor((config.numInFlightAuctions * this.#total) / config.auctionProportion);
  }

  timeAt(n: number): number {
    return this.config.baseTimeMs + Math.floor((n * 1000) / this.config.rate);
  }

  kindAt(n: number): NexmarkEvent['type'] {
    const rem = n % this.#total;
    return rem < this.config.personProportion ? 'person' : rem < this.config.personProportion + this.config.auctionProportion ? 'auction' : 'bid';
  }

  eventAt(n: number): NexmarkEvent {
    const r = this.#random.reset(this.config.seed, n);
    const ts = this.timeAt(n);
    const kind = this.kindAt(n);
    return kind === 'person' ? this.#person(n, r, ts) : kind === 'auction' ? this.#auction(n, r, ts) : this.#bid(n, r, ts);
  }

  /** The last person id made at or before event n (base 0). */
  lastPersonId(n: number): number {
    const { personProportion } = this.config;
    const epoch = Math.floor(n / this.#total);
    const offset = Math.min(n % this.#total, personProportion - 1);
    return epoch * personProportion + offset;
  }

  /** The last auction id made at or before event n (base 0; -1 before the first). */
  lastAuctionId(n: number): number {
    const { personProportion, auctionProportion } = this.config;
    let epoch = Math.floor(n / this.#total);
    let offset = n % this.#total;
    if (offset < personProportion) {
      epoch--;
      offset = auctionProportion - 1;
    } else if (offset >= personProportion + auctionProportion) offset = auctionProportion - 1;
    else offset -= personProportion;
    return epoch * auctionProportion + offset;
  }

  #randomPersonId(n: number, r: SeededRandom): number {
    const people = this.lastPersonId(n) + 1;
    const active = Math.min(people, this.config.numActivePeople);
    return people - active + r.nextInt(active + PERSON_ID_LEAD);
  }

  #randomAuctionId(n: number, r: SeededRandom): number {
    const last = this.lastAuctionId(n);
    const min = Math.max(last - this.config.numInFlightAuctions, 0);
    return min + r.nextInt(last - min + 1 + AUCTION_ID_LEAD);
  }

  #person(n: number, r: SeededRandom, ts: number): Person {
    const id = this.lastPersonId(n) + FIRST_PERSON_ID;
    const name = `${FIRST_NAMES[r.nextInt(FIRST_NAMES.length)]!} ${LAST_NAMES[r.nextInt(LAST_NAMES.length)]!}`;
    const emailAddress = `${randomString(r, 7)}@${randomString(r, 5)}.com`;
    const creditCard = [0, 1, 2, 3].map(() => String(r.nextInt(10_000)).padStart(4, '0')).join(' ');
    const city = US_CITIES[r.nextInt(US_CITIES.length)]!;
    const state = US_STATES[r.nextInt(US_STATES.length)]!;
    const size = 8 + name.length + emailAddress.length + creditCard.length + city.length + state.length;
    const extra = extraFor(r, size, this.config.avgPersonBytes);
    return { type: 'person', id, name, emailAddress, creditCard, city, state, dateTime: ts, extra };
  }

  #auction(n: number, r: SeededRandom, ts: number): Auction {
    const id = this.lastAuctionId(n) + FIRST_AUCTION_ID;
    const seller = (r.nextInt(this.config.hotSellersRatio) > 0 ? Math.floor(this.lastPersonId(n) / HOT_BATCH) * HOT_BATCH : this.#randomPersonId(n, r)) + FIRST_PERSON_ID;
    const category = FIRST_CATEGORY_ID + r.nextInt(NUM_CATEGORIES);
    const initialBid = price(r);
    // About twice the event time until numInFlightAuctions more auctions are made.
    const horizonMs = this.timeAt(n + this.#eventsForInFlightAuctions) - ts;
    const expires = ts + 1 + r.nextInt(Math.max(horizonMs * 2, 1));
    const itemName = randomString(r, 20);
    const description = randomString(r, 100);
    const reserve = initialBid + price(r);
    const extra = extraFor(r, 8 + itemName.length + description.length + 40, this.config.avgAuctionBytes);
    return { type: 'auction', id, itemName, description, initialBid, reserve, dateTime: ts, expires, seller, category, extra };
  }

  #bid(n: number, r: SeededRandom, ts: number): Bid {
    const auction = (r.nextInt(this.config.hotAuctionRatio) > 0 ? Math.floor(this.lastAuctionId(n) / HOT_BATCH) * HOT_BATCH : this.#randomAuctionId(n, r)) + FIRST_AUCTION_ID;
    // The second person of the batch, so that hot bidders are not the hot sellers.
    const bidder = (r.nextInt(this.config.hotBiddersRatio) > 0 ? Math.floor(this.lastPersonId(n) / HOT_BATCH) * HOT_BATCH + 1 : this.#randomPersonId(n, r)) + FIRST_PERSON_ID;
    const p = price(r);
    let channel: string;
    let url: string;
    if (r.nextInt(2) > 0) {
      const i = r.nextInt(HOT_CHANNELS.length);
      channel = HOT_CHANNELS[i]!;
      url = HOT_URLS[i]!;
    } else {
      const i = r.nextInt(CHANNELS);
      channel = CHANNEL_NAMES[i]!;
      url = CHANNEL_URLS[i]!;
    }
    const extra = extraFor(r, 32, this.config.avgBidBytes);
    return { type: 'bid', auction, bidder, price: p, channel, url, dateTime: ts, extra };
  }
}
