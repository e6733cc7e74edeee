// The dashboard over HTTP: the page and its bundle (built by `make ui` into ui/dist), a JSON API
// (api.ts) and a Server-Sent Events stream of updates. Read-only: nothing here changes a job.
//
// Who may ask is decided by one hook, `authorize(request)`, called for every request before
// anything is read. The default answers only loopback clients; the gRPC API's bearer tokens plug
// in here (the same token, sent as `Authorization: Bearer …`) without touching the routes.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EddyError, InvalidArgumentError, NotFoundError, RetryableError, ensureError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { FeatureAnswer, FeatureRouter } from '../feature-router.ts';
import type { ApiError, DashboardUpdate, EntityLookup, FeatureLookup, FeatureValueView } from './api.ts';
import { checkpointsView, jobDetail, jobSummaries, keyGroupsView, sampleRates, workerViews, type DashboardSources } from './views.ts';

/** Whether a request may be answered; a refusal says which status and why. */
export type AuthDecision = { allow: true } | { allow: false; status: 401 | 403; message: string };
export type Authorize = (request: IncomingMessage) => AuthDecision | Promise<AuthDecision>;

/** The default: loopback clients only (the dashboard has no login of its own yet). */
export const allowLoopback: Authorize = (request) => {
  const remote = request.socket.remoteAddress ?? '';
  if (remote === '127.0.0.1' || remote === '::1' || remote === '::ffff:127.0.0.1' || remote.startsWith('127.')) return { allow: true };
  return { allow: false, status: 403, message: `the dashboard answers loopback clients only (this request came from ${remote || 'an unknown address'})` };
};

export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../ui/dist/', import.meta.url));

export interface DashboardServerOptions {
  /** host:port to listen on; port 0 picks a free one (see `address` once started). */
  address: string;
  sources: DashboardSources;
  features: FeatureRouter;
  /** Who may ask. @default allowLoopback */
  authorize?: Authorize;
  /** Where the built page is (index.html, app.js, app.css). @default ui/dist of the repository */
  uiDir?: string;
  /** How often rates are sampled and Server-Sent Events sent. @default 1000 */
  updateIntervalMs?: number;
  /** Deadline of one feature lookup. @default 5000 */
  featureTimeoutMs?: number;
  logger: Logger;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
};

// Everything the page loads comes from this server: no request leaves the machine.
const CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const HTTP_STATUS: Record<string, number> = { INVALID_ARGUMENT: 400, NOT_FOUND: 404, ALREADY_EXISTS: 409, FAILED_PRECONDITION: 409, UNAVAILABLE: 503 };

interface EventClient {
  res: ServerResponse;
  jobId: string | undefined;
}

export class DashboardServer {
  readonly #o: Required<Omit<DashboardServerOptions, 'authorize'>> & { authorize: Authorize };
  readonly #server: http.Server;
  readonly #clients = new Set<EventClient>();
  #timer: NodeJS.Timeout | undefined;
  /** host:port listened on, once started. */
  address = '';

  constructor(options: DashboardServerOptions) {
    this.#o = {
      authorize: allowLoopback,
      uiDir: DEFAULT_UI_DIR,
      updateIntervalMs: 1000,
      featureTimeoutMs: 5000,
      ...options,
    };
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  async start(): Promise<void> {
    const m = /^(.*):(\d+)$/.exec(this.#o.address);
    if (!m) throw new InvalidArgumentError(`dashboard address ${this.#o.address} is not host:port`);
    const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(Number(m[2]), host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const bound = this.#server.address();
    const port = typeof bound === 'object' && bound ? bound.port : Number(m[2]);
    this.address = `${m[1]}:${port}`;
    this.#timer = setInterval(() => this.#tick(), this.#o.updateIntervalMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    for (const c of this.#clients) c.res.end();
    this.#clients.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #tick(): void {
    try {
      sampleRates(this.#o.sources);
    } catch (e) {
      this.#o.logger.warn({ err: ensureError(e).message }, 'dashboard rate sample failed');
    }
    for (const c of this.#clients) this.#send(c);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const decision = await this.#o.authorize(req);
      if (!decision.allow) return this.#error(res, decision.status, decision.status === 401 ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED', decision.message);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return this.#error(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed: the dashboard is read-only`);
      }
      const url = new URL(req.url ?? '/', 'http://dashboard');
      if (url.pathname.startsWith('/api/')) return await this.#api(url, req, res);
      return await this.#asset(url.pathname, res);
    } catch (e) {
      const err = ensureError(e);
      const status = err instanceof EddyError ? (HTTP_STATUS[err.code] ?? 500) : 500;
      if (status === 500) this.#o.logger.error({ err, url: req.url }, 'dashboard request failed');
      if (err instanceof RetryableError) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
      if (res.headersSent) return void res.end();
      this.#error(res, status, err instanceof EddyError ? err.code : 'INTERNAL', err.message);
    }
  }

  async #api(url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const s = this.#o.sources;
    const parts = url.pathname.split('/').slice(2).map(decodeURIComponent);
    const [first, id, sub, feature, extra] = parts;
    if (first === 'jobs' && parts.length === 1) return this.#json(res, jobSummaries(s));
    if (first === 'workers' && parts.length === 1) return this.#json(res, workerViews(s));
    if (first === 'cluster' && parts.length === 1) return this.#json(res, s.cluster());
    if (first === 'events' && parts.length === 1) return this.#events(url, req, res);
    if (first === 'jobs' && id) {
      if (sub === undefined) return this.#json(res, jobDetail(s, id));
      if (sub === 'checkpoints' && feature === undefined) return this.#json(res, checkpointsView(s, id));
      if (sub === 'key-groups' && feature === undefined) return this.#json(res, keyGroupsView(s, id));
      if (sub === 'features' && feature === undefined) return this.#json(res, await this.#lookupAll(id, url.searchParams));
      if (sub === 'features' && feature && extra === undefined) return this.#json(res, await this.#lookup(id, feature, url.searchParams));
    }
    throw new NotFoundError(`no such API: ${url.pathname}`);
  }

  async #lookup(jobId: string, feature: string, params: URLSearchParams): Promise<FeatureLookup> {
    const entityId = params.get('entity') ?? '';
    if (entityId === '') throw new InvalidArgumentError('give the entity id: ?entity=<id>');
    const asOfRaw = params.get('asOf');
    const asOfUnixMs = asOfRaw ? parseTime(asOfRaw) : undefined;
    const deadlineAtMs = Date.now() + this.#o.featureTimeoutMs;
    const ask = async (view: 'latest' | 'committed', asOf?: number) => {
      const [a] = await this.#o.features.get({ jobId, feature, entityIds: [entityId], view, deadlineAtMs, ...(asOf !== undefined && { asOfUnixMs: asOf }) });
      return valueView(a!);
    };
    const [latest, committed, asOf] = await Promise.all([ask('latest'), ask('committed'), asOfUnixMs !== undefined ? ask('latest', asOfUnixMs) : undefined]);
    return { jobId, feature, entityId, latest, committed, ...(asOf && asOfUnixMs !== undefined && { asOf: { ...asOf, asOfUnixMs } }) };
  }

  /**
   * Every feature of the job for one entity: LATEST and COMMITTED of all of them in one routed
   * read each (FeatureRouter.getMany asks each owner once), and as of a time for those that keep
   * history.
   */
  async #lookupAll(jobId: string, params: URLSearchParams): Promise<EntityLookup> {
    const entityId = params.get('entity') ?? '';
    if (entityId === '') throw new InvalidArgumentError('give the entity id: ?entity=<id>');
    const asOfRaw = params.get('asOf');
    const asOfUnixMs = asOfRaw ? parseTime(asOfRaw) : undefined;
    const specs = jobDetail(this.#o.sources, jobId).features;
    if (specs.length === 0) return { jobId, entityId, features: [] };
    const names = specs.map((f) => f.name);
    const withHistory = specs.filter((f) => f.historyRetentionMs !== undefined).map((f) => f.name);
    const deadlineAtMs = Date.now() + this.#o.featureTimeoutMs;
    const ask = (view: 'latest' | 'committed', features: string[], asOf?: number) =>
      features.length === 0 ? Promise.resolve([]) : this.#o.features.getMany({ jobId, entityIds: [entityId], view, deadlineAtMs, ...(asOf !== undefined && { asOfUnixMs: asOf }) }, features);
    const [latest, committed, asOf] = await Promise.all([ask('latest', names), ask('committed', names), asOfUnixMs !== undefined ? ask('latest', withHistory, asOfUnixMs) : Promise.resolve([])]);
    return {
      jobId,
      entityId,
      features: specs.map((f, i) => {
        const h = withHistory.indexOf(f.name);
        const past = h >= 0 ? asOf[h]?.[0] : undefined;
        return {
          feature: f.name,
          stageId: f.stageId,
          latest: valueView(latest[i]![0]!),
          committed: valueView(committed[i]![0]!),
          ...(past && asOfUnixMs !== undefined && { asOf: { ...valueView(past), asOfUnixMs } }),
        };
      }),
    };
  }

  #events(url: URL, req: IncomingMessage, res: ServerResponse): void {
    const jobId = url.searchParams.get('job') || undefined;
    // An unknown job is refused before the stream starts, as a plain JSON error.
    if (jobId !== undefined) jobDetail(this.#o.sources, jobId);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'Content-Security-Policy': CSP });
    res.write('retry: 2000\n\n');
    const client: EventClient = { res, jobId };
    this.#clients.add(client);
    const drop = () => this.#clients.delete(client);
    req.on('close', drop);
    res.on('error', drop);
    this.#send(client);
  }

  #send(c: EventClient): void {
    const s = this.#o.sources;
    let update: DashboardUpdate;
    try {
      const now = Date.now();
      update = { atUnixMs: now, cluster: s.cluster(), jobs: jobSummaries(s, now), workers: workerViews(s, now) };
      if (c.jobId !== undefined) {
        update.job = jobDetail(s, c.jobId, now);
        update.checkpoints = checkpointsView(s, c.jobId);
        update.keyGroups = keyGroupsView(s, c.jobId);
      }
    } catch (e) {
      // The job went away (it cannot today: jobs are never forgotten) or a view failed: say so, end.
      const err = ensureError(e);
      c.res.end(`event: error\ndata: ${JSON.stringify({ error: { code: err instanceof EddyError ? err.code : 'INTERNAL', message: err.message } })}\n\n`);
      this.#clients.delete(c);
      return;
    }
    c.res.write(`event: update\ndata: ${JSON.stringify(update)}\n\n`);
  }

  async #asset(pathname: string, res: ServerResponse): Promise<void> {
    const name = pathname === '/' ? 'index.html' : pathname.slice(1);
    // Flat names only: nothing outside the UI directory can be asked for.
    if (!/^[\w-]+(\.[\w-]+)*$/.test(name)) throw new NotFoundError(`no such page: ${pathname}`);
    let body: Buffer;
    try {
      body = await readFile(path.join(this.#o.uiDir, name));
    } catch {
      if (name === 'index.html') {
        res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' });
        return void res.end(`The dashboard is not built: run \`make ui\` (${this.#o.uiDir} has no index.html).\nThe JSON API under /api/ works without it.\n`);
      }
      throw new NotFoundError(`no such file: ${pathname}`);
    }
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(body);
  }

  #json(res: ServerResponse, value: unknown): void {
    const body = JSON.stringify(value);
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  #error(res: ServerResponse, status: number, code: string, message: string): void {
    const body: ApiError = { error: { code, message } };
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }
}

function valueView(a: FeatureAnswer): FeatureValueView {
  return {
    found: a.found,
    valueJson: a.valueJson,
    keyGroup: a.keyGroup,
    eventTimeUnixMs: a.eventTimeUnixMs ?? null,
    checkpointId: a.checkpointId,
    uncommitted: a.uncommitted,
    beyondRetention: a.beyondRetention,
  };
}

/** An as-of time: ms since the epoch, or an ISO 8601 time with a zone. */
function parseTime(raw: string): number {
  if (/^\d+$/.test(raw)) return Number(raw);
  const ms = /(Z|[+-]\d\d:?\d\d)$/.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`asOf ${raw} is neither ms since the epoch nor an ISO 8601 time with a zone`);
  return ms;
}
