// A deterministic sample of order events for the router job, with nested fields that filters and
// projections reach by path (customer.address.city, items.0.sku).
//
//   node --import tsx jobs/router/generate.ts <events> [seed] [malformedEvery] > orders.ndjson
import { pathToFileURL } from 'node:url';
import { mulberry32 } from '../customer-experience/generate.ts';

export interface Order {
  id: string;
  type: 'Rental' | 'Purchase' | 'Refund';
  price: number;
  channel: 'web' | 'app' | 'store';
  customer: { id: string; tier: 'gold' | 'silver' | 'basic'; address: { city: string; country: string } };
  items: Array<{ sku: string; qty: number }>;
  /** Event time, ms since the epoch. */
  ts: number;
}

export interface OrderOptions {
  events: number;
  /** @default 1 */
  seed?: number;
  /** @default 2026-01-01T00:00:00Z */
  startTs?: number;
  /** First order's number (ids o-<n>), so several batches stay distinct. @default 0 */
  firstId?: number;
  /** Every n-th line is malformed (truncated JSON, or not an object); 0: none. @default 0 */
  malformedEvery?: number;
}

const TYPES = ['Rental', 'Rental', 'Purchase', 'Refund'] as const;
const CHANNELS = ['web', 'app', 'store'] as const;
const TIERS = ['gold', 'silver', 'basic', 'basic'] as const;
const CITIES = [['Paris', 'FR'], ['Lyon', 'FR'], ['Berlin', 'DE'], ['Austin', 'US'], ['Leeds', 'GB']] as const;

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

export function generateOrders(options: OrderOptions): Order[] {
  if (!Number.isSafeInteger(options.events) || options.events < 0) throw new RangeError(`events ${options.events} must be a non-negative integer`);
  const random = mulberry32(options.seed ?? 1);
  const first = options.firstId ?? 0;
  let ts = options.startTs ?? Date.UTC(2026, 0, 1);
  return Array.from({ length: options.events }, (_, i) => {
    ts += 1 + Math.floor(random() * 20);
    const [city, country] = pick(random, CITIES);
    return {
      id: `o-${first + i}`,
      type: pick(random, TYPES),
      price: Math.round(random() * 2000) / 100,
      channel: pick(random, CHANNELS),
      customer: { id: `u-${Math.floor(random() * 500)}`, tier: pick(random, TIERS), address: { city, country } },
      items: Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({ sku: `sku-${Math.floor(random() * 100)}`, qty: 1 + Math.floor(random() * 4) })),
      ts,
    };
  });
}

/** NDJSON lines; every malformedEvery-th line is broken (alternately truncated JSON and a JSON array). */
export function generateOrderLines(options: OrderOptions): string[] {
  const every = options.malformedEvery ?? 0;
  return generateOrders(options).map((o, i) => {
    if (every > 0 && (i + 1) % every === 0) return Math.floor(i / every) % 2 === 0 ? JSON.stringify(o).slice(0, 20) : JSON.stringify([o.id, o.price]);
    return JSON.stringify(o);
  });
}

function main(argv: string[]): void {
  const [events = '1000', seed = '1', malformedEvery = '0'] = argv;
  const lines = generateOrderLines({ events: Number(events), seed: Number(seed), malformedEvery: Number(malformedEvery) });
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
    process.stderr.write(`generate: ${(e as Error).message}\nusage: generate.ts <events> [seed] [malformedEvery]\n`);
    process.exit(2);
  }
}
