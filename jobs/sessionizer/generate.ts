// A deterministic sample of page views for the sessionizer job: the benchmark and the demo
// publish it. Users view pages at random moments of a global clock, so sessions open, pause and
// close; every `botEvery`-th user is a bot that views a page at every tick it gets and is picked
// far more often (its sessions are cut at the maximum length); a share of views arrive out of
// order, up to `maxDisorderMs` behind the clock.
//
//   node --import tsx jobs/sessionizer/generate.ts <events> <users> [seed] > pageviews.ndjson
import { pathToFileURL } from 'node:url';
import { mulberry32 } from '../customer-experience/generate.ts';
import type { PageView } from './job.ts';

export interface GeneratePageViewsOptions {
  /** Lines to produce. */
  events: number;
  /** Distinct users, ids user-000001 … */
  users: number;
  /** PRNG seed: the same options give the same lines. @default 1 */
  seed?: number;
  /** Every n-th user is a bot; 0: none. @default 100 */
  botEvery?: number;
  /** Share of all views that come from bots. @default 0.2 */
  botShare?: number;
  /** Mean event-time step between consecutive views, ms. @default 100 */
  meanStepMs?: number;
  /** Share of views published behind the clock (out of order). @default 0.05 */
  disorderRatio?: number;
  /** How far behind the clock an out-of-order view may be, ms. @default 30_000 */
  maxDisorderMs?: number;
  /** Event time of the first view, ms since the epoch. @default 2026-01-01T00:00:00Z */
  startTs?: number;
}

const PAGES = ['/', '/search', '/restaurants', '/restaurant/1', '/restaurant/2', '/restaurant/3', '/review/new', '/profile', '/photos', '/checkout'];

export function userId(index: number): string {
  return `user-${String(index + 1).padStart(6, '0')}`;
}

/** NDJSON lines (without newlines) of page views. */
export function generatePageViews(options: GeneratePageViewsOptions): string[] {
  const { events, users } = options;
  if (!Number.isSafeInteger(events) || events < 0) throw new RangeError(`events ${events} must be a non-negative integer`);
  if (!Number.isSafeInteger(users) || users < 1 || users > 999_999) throw new RangeError(`users ${users} must be 1..999999`);
  const botEvery = options.botEvery ?? 100;
  const bots = botEvery > 0 ? Array.from({ length: Math.ceil(users / botEvery) }, (_, i) => i * botEvery) : [];
  const botShare = bots.length > 0 ? (options.botShare ?? 0.2) : 0;
  const meanStepMs = options.meanStepMs ?? 100;
  const disorderRatio = options.disorderRatio ?? 0.05;
  const maxDisorderMs = options.maxDisorderMs ?? 30_000;
  const random = mulberry32(options.seed ?? 1);
  const lines: string[] = new Array<string>(events);
  let clock = options.startTs ?? Date.UTC(2026, 0, 1);
  for (let i = 0; i < events; i++) {
    clock += Math.floor(random() * 2 * meanStepMs) + 1;
    const user = random() < botShare ? bots[Math.floor(random() * bots.length)]! : Math.floor(random() * users);
    const ts = random() < disorderRatio ? clock - Math.floor(random() * maxDisorderMs) : clock;
    const view: PageView = { userId: userId(user), ts, page: PAGES[Math.floor(random() * PAGES.length)]! };
    lines[i] = JSON.stringify(view);
  }
  return lines;
}

function main(argv: string[]): void {
  const [events = '1000', users = '100', seed = '1'] = argv;
  const lines = generatePageViews({ events: Number(events), users: Number(users), seed: Number(seed) });
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
    process.stderr.write(`generate: ${(e as Error).message}\nusage: generate.ts <events> <users> [seed]\n`);
    process.exit(2);
  }
}
