// A deterministic sample of indicator events for the customer-experience job: the demo, the
// tests and the benchmark publish it. Values are drawn so that about 15% of readings are RED and
// an entity's colour per data-point type flips back and forth, which is what produces triggers.
//
//   node --import tsx jobs/customer-experience/generate.ts <events> <entities> [seed] [malformedEvery] > sample.ndjson
import { pathToFileURL } from 'node:url';
import { RULES, type Indicator } from './rules.ts';

export interface GenerateOptions {
  /** Lines to produce. */
  events: number;
  /** Distinct entities, ids cust-00001 … */
  entities: number;
  /** PRNG seed: the same options give the same lines. @default 1 */
  seed?: number;
  /** Every n-th line is malformed (not JSON, no entityId, entityId null, in rotation); 0: none. @default 0 */
  malformedEvery?: number;
  /** Share of readings drawn on the RED side of their rule. @default 0.15 */
  redRatio?: number;
  /** Event time of the first line, ms since the epoch. @default 2026-01-01T00:00:00Z */
  startTs?: number;
}

/** Deterministic 32-bit PRNG (mulberry32): uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function entityId(index: number): string {
  return `cust-${String(index + 1).padStart(5, '0')}`;
}

/** Realistic GREEN and RED ranges of the known data-point types (both ends inclusive). */
const RANGES: Record<string, { green: [number, number]; red: [number, number]; decimals: number }> = {
  packetErrors: { green: [0, 100], red: [101, 2_000], decimals: 0 },
  uptimePercent: { green: [99, 100], red: [80, 98.99], decimals: 2 },
  firmwareErrors: { green: [0, 0], red: [1, 5], decimals: 0 },
  wifiDriverErrors: { green: [0, 5], red: [6, 50], decimals: 0 },
  signalDbm: { green: [-80, -30], red: [-110, -81], decimals: 0 },
  rebootCount: { green: [0, 3], red: [4, 12], decimals: 0 },
};

/** Ranges for a type without a table entry, derived from its rule so that colours still hold. */
function rangesOf(type: string): { green: [number, number]; red: [number, number]; decimals: number } {
  const known = RANGES[type];
  if (known) return known;
  const { threshold, redWhen } = RULES[type]!;
  const span = Math.max(Math.abs(threshold), 10);
  return redWhen === 'above'
    ? { green: [threshold - span, threshold], red: [threshold + 1, threshold + span], decimals: 0 }
    : { green: [threshold, threshold + span], red: [threshold - span, threshold - 1], decimals: 0 };
}

function draw(random: () => number, [low, high]: [number, number], decimals: number): number {
  const scale = 10 ** decimals;
  const lo = Math.ceil(low * scale);
  const hi = Math.floor(high * scale);
  return (lo + Math.floor(random() * (hi - lo + 1))) / scale;
}

const MALFORMED_KINDS = 3;

function malformed(kind: number, event: Indicator): string {
  switch (kind % MALFORMED_KINDS) {
    case 0:
      // Truncated JSON, as a producer cut off mid-write would send.
      return JSON.stringify(event).slice(0, 25);
    case 1: {
      const { entityId: _dropped, ...rest } = event;
      return JSON.stringify(rest);
    }
    default:
      return JSON.stringify({ ...event, entityId: null });
  }
}

/** NDJSON lines (without newlines) of indicator events, with increasing `ts`. */
export function generateIndicators(options: GenerateOptions): string[] {
  const { events, entities } = options;
  if (!Number.isSafeInteger(events) || events < 0) throw new RangeError(`events ${events} must be a non-negative integer`);
  if (!Number.isSafeInteger(entities) || entities < 1 || entities > 99_999) throw new RangeError(`entities ${entities} must be 1..99999`);
  const malformedEvery = options.malformedEvery ?? 0;
  const redRatio = options.redRatio ?? 0.15;
  const random = mulberry32(options.seed ?? 1);
  const types = Object.keys(RULES);
  const lines: string[] = new Array<string>(events);
  let ts = options.startTs ?? Date.UTC(2026, 0, 1);
  let malformedCount = 0;
  for (let i = 0; i < events; i++) {
    ts += 1 + Math.floor(random() * 50);
    const type = types[Math.floor(random() * types.length)]!;
    const ranges = rangesOf(type);
    const red = random() < redRatio;
    const event: Indicator = {
      entityId: entityId(Math.floor(random() * entities)),
      type,
      value: draw(random, red ? ranges.red : ranges.green, ranges.decimals),
      ts,
    };
    lines[i] = malformedEvery > 0 && (i + 1) % malformedEvery === 0 ? malformed(malformedCount++, event) : JSON.stringify(event);
  }
  return lines;
}

function main(argv: string[]): void {
  const [events = '1000', entities = '50', seed = '1', malformedEvery = '0'] = argv;
  const lines = generateIndicators({ events: Number(events), entities: Number(entities), seed: Number(seed), malformedEvery: Number(malformedEvery) });
  // A reader that stops early (`| head`) closes the pipe: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const CHUNK_LINES = 10_000;
  for (let i = 0; i < lines.length; i += CHUNK_LINES) process.stdout.write(lines.slice(i, i + CHUNK_LINES).join('\n') + '\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`generate: ${(e as Error).message}\nusage: generate.ts <events> <entities> [seed] [malformedEvery]\n`);
    process.exit(2);
  }
}
