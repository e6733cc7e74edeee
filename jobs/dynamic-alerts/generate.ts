// A deterministic sample of customer events for the dynamic-alerts job: purchases, refunds and
// logins with nested bodies that rules select with JSONPath ($.amount, $.device.os,
// $.items[*].price, $.tags). Event times go forward with a bounded jitter, so events arrive out of
// order by up to `outOfOrderMs`.
//
//   node --import tsx jobs/dynamic-alerts/generate.ts <events> <customers> [seed] [malformedEvery] > events.ndjson
import { pathToFileURL } from 'node:url';
import { mulberry32 } from '../customer-experience/generate.ts';

export interface CustomerEvent {
  customer: string;
  /** Unique per customer: the event's key in the customer's history, with ts. */
  id: string;
  /** Event time, ms since the epoch. */
  ts: number;
  body: EventBody;
}

export interface EventBody {
  kind: 'purchase' | 'refund' | 'login';
  amount: number;
  currency: 'EUR' | 'USD' | 'GBP';
  country: string;
  device: { os: 'ios' | 'android' | 'web'; version: number };
  tags: string[];
  items: Array<{ sku: string; price: number }>;
}

export interface AlertEventOptions {
  events: number;
  /** Distinct customers, ids c-0001 … */
  customers: number;
  /** @default 1 */
  seed?: number;
  /** Event time of the first event. @default 2026-01-01T00:00:00Z */
  startTs?: number;
  /** Mean event-time step between consecutive events, ms. @default 100 */
  stepMs?: number;
  /** Largest amount an event's time is set back from its position (out of order). @default 0 */
  outOfOrderMs?: number;
  /** Every n-th line is malformed (truncated JSON, or no customer); 0: none. @default 0 */
  malformedEvery?: number;
  /** First event's number (ids e-<n>), so several batches stay distinct. @default 0 */
  firstId?: number;
}

export function customerId(index: number): string {
  return `c-${String(index + 1).padStart(4, '0')}`;
}

const KINDS = ['purchase', 'purchase', 'purchase', 'refund', 'login'] as const;
const CURRENCIES = ['EUR', 'USD', 'GBP'] as const;
const COUNTRIES = ['FR', 'DE', 'US', 'GB', 'NL', 'BR'];
const OSES = ['ios', 'android', 'web'] as const;
const TAGS = ['vip', 'new', 'promo', 'mobile', 'gift'];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** The events (not serialized), in publication order. */
export function generateCustomerEvents(options: AlertEventOptions): CustomerEvent[] {
  const { events, customers } = options;
  if (!Number.isSafeInteger(events) || events < 0) throw new RangeError(`events ${events} must be a non-negative integer`);
  if (!Number.isSafeInteger(customers) || customers < 1 || customers > 9999) throw new RangeError(`customers ${customers} must be 1..9999`);
  const random = mulberry32(options.seed ?? 1);
  const step = options.stepMs ?? 100;
  const jitter = options.outOfOrderMs ?? 0;
  let t = options.startTs ?? Date.UTC(2026, 0, 1);
  const firstId = options.firstId ?? 0;
  const out: CustomerEvent[] = new Array<CustomerEvent>(events);
  for (let i = 0; i < events; i++) {
    t += 1 + Math.floor(random() * 2 * step);
    const kind = pick(random, KINDS);
    const items = kind === 'login' ? [] : Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({ sku: `sku-${Math.floor(random() * 50)}`, price: Math.round(random() * 20_000) / 100 }));
    const tags = TAGS.filter(() => random() < 0.2);
    out[i] = {
      customer: customerId(Math.floor(random() * customers)),
      id: `e-${firstId + i}`,
      ts: t - Math.floor(random() * (jitter + 1)),
      body: {
        kind,
        amount: Math.round(items.reduce((a, x) => a + x.price, 0) * 100) / 100,
        currency: pick(random, CURRENCIES),
        country: pick(random, COUNTRIES),
        device: { os: pick(random, OSES), version: 10 + Math.floor(random() * 8) },
        tags,
        items,
      },
    };
  }
  return out;
}

/** NDJSON lines; every malformedEvery-th line is broken (truncated, or without its customer). */
export function generateCustomerEventLines(options: AlertEventOptions): string[] {
  const every = options.malformedEvery ?? 0;
  return generateCustomerEvents(options).map((e, i) => {
    if (every > 0 && (i + 1) % every === 0) {
      if (Math.floor(i / every) % 2 === 0) return JSON.stringify(e).slice(0, 30);
      const { customer: _dropped, ...rest } = e;
      return JSON.stringify(rest);
    }
    return JSON.stringify(e);
  });
}

function main(argv: string[]): void {
  const [events = '1000', customers = '50', seed = '1', malformedEvery = '0'] = argv;
  const lines = generateCustomerEventLines({ events: Number(events), customers: Number(customers), seed: Number(seed), malformedEvery: Number(malformedEvery), outOfOrderMs: 2000 });
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  for (let i = 0; i < lines.length; i += 10_000) process.stdout.write(lines.slice(i, i + 10_000).join('\n') + '\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`generate: ${(e as Error).message}\nusage: generate.ts <events> <customers> [seed] [malformedEvery]\n`);
    process.exit(2);
  }
}
