// The router's declarative configuration (docs/USE-CASES.md §3): a source, routes each with
// a filter expression, a projection and target subjects, and the sink stream those subjects live
// under. Validation names the first problem; compilation happens once per route definition.
//
// Filters are filtrex expressions (`price > 5 and type == "Rental"`), compiled by filtrex into a
// JavaScript function once; identifiers are dotted paths into the record (`customer.address.city`,
// `items.0.sku`), resolved from a path split once per identifier. A field that is missing reads as
// undefined, so a comparison with it is false: such records simply do not match.
import { compileExpression } from 'filtrex';

export class RouterConfigError extends Error {
  override readonly name = 'RouterConfigError';
}

export interface RouteConfig {
  /** Stable id: a route put on the control stream with the same id replaces this one. */
  id: string;
  /** filtrex expression over the record; absent: every record. */
  filter?: string;
  /**
   * Output fields: `{ "out.name": "in.path" }` (dots in the output name nest, in the input name
   * walk objects and array indices), or a list of paths kept under their own name; absent: the
   * whole record. An input path the record lacks is left out of the output.
   */
  project?: Record<string, string> | string[];
  /** Subjects under the sink's prefix the projected record is published to (fan-out). */
  to: string[];
}

export interface RouterConfig {
  /** Job name. @default "router" */
  job?: string;
  /** Key groups of the routing stage. @default 128 */
  maxParallelism?: number;
  source: {
    stream: string;
    /** @default 4 */
    partitions?: number;
    /** Top-level field records are partitioned and keyed by (routes then see one key's records in order). */
    key: string;
  };
  sink: {
    /** JetStream stream holding the output; it is created with subjects `<subjectPrefix>.>`. */
    stream: string;
    /** Every route target `t` is published to `<subjectPrefix>.<t>`. */
    subjectPrefix: string;
    /** @default "exactly-once" */
    delivery?: 'exactly-once' | 'at-least-once';
  };
  /** Routes put or removed while the job runs (RouteCommand records), broadcast to every key group. */
  control?: { stream: string };
  routes: RouteConfig[];
}

export type RouteCommand = { action: 'put'; route: RouteConfig } | { action: 'remove'; routeId: string };

const ID = /^[A-Za-z0-9_-]{1,100}$/;
const STREAM = /^[A-Za-z0-9_-]{1,64}$/;
export const SUBJECT = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const PATH = /^[^.\s]+(\.[^.\s]+)*$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates and compiles (to find syntax errors now) one route; throws RouterConfigError. */
export function validateRoute(raw: unknown, where = 'route'): RouteConfig {
  const fail = (msg: string): never => {
    throw new RouterConfigError(`${where}: ${msg}`);
  };
  if (!isObject(raw)) return fail('is not an object');
  if (typeof raw.id !== 'string' || !ID.test(raw.id)) fail(`id ${JSON.stringify(raw.id)} must be 1-100 characters of A-Z a-z 0-9 _ -`);
  const route: RouteConfig = { id: raw.id as string, to: [] };
  if (raw.filter !== undefined) {
    if (typeof raw.filter !== 'string' || raw.filter.trim() === '') fail('filter must be a non-empty expression');
    route.filter = raw.filter as string;
  }
  if (raw.project !== undefined) {
    const p = raw.project;
    if (Array.isArray(p)) {
      if (p.length === 0 || !p.every((x) => typeof x === 'string' && PATH.test(x))) fail('project must list field paths such as "a.b"');
      route.project = [...(p as string[])];
    } else if (isObject(p)) {
      const entries = Object.entries(p);
      if (entries.length === 0) fail('project must name at least one field');
      for (const [out, from] of entries) {
        if (!PATH.test(out)) fail(`project output field ${JSON.stringify(out)} is not a field path`);
        if (typeof from !== 'string' || !PATH.test(from)) fail(`project field ${out} reads ${JSON.stringify(from)}, which is not a field path`);
      }
      route.project = { ...(p as Record<string, string>) };
    } else fail('project must be an object { out: "in.path" } or a list of paths');
  }
  if (!Array.isArray(raw.to) || raw.to.length === 0) fail('to must list at least one subject');
  for (const t of raw.to as unknown[]) {
    if (typeof t !== 'string' || !SUBJECT.test(t)) fail(`target subject ${JSON.stringify(t)} must be tokens of A-Z a-z 0-9 _ - separated by dots, no wildcards`);
  }
  if (new Set(raw.to as string[]).size !== (raw.to as string[]).length) fail('to names a subject twice');
  route.to = [...(raw.to as string[])];
  compileRoute(route, where);
  return route;
}

/** Validates a whole configuration; throws RouterConfigError naming the first problem. */
export function validateRouterConfig(raw: unknown): RouterConfig {
  const fail = (msg: string): never => {
    throw new RouterConfigError(`router config: ${msg}`);
  };
  if (!isObject(raw)) return fail('is not an object');
  if (raw.job !== undefined && (typeof raw.job !== 'string' || !ID.test(raw.job))) fail(`job ${JSON.stringify(raw.job)} is not a valid job name`);
  if (raw.maxParallelism !== undefined && (!Number.isSafeInteger(raw.maxParallelism) || (raw.maxParallelism as number) < 1)) fail('maxParallelism must be a positive integer');
  const src = raw.source;
  if (!isObject(src)) return fail('source is missing');
  if (typeof src.stream !== 'string' || !STREAM.test(src.stream)) fail(`source.stream ${JSON.stringify(src.stream)} is not a stream name`);
  if (src.partitions !== undefined && (!Number.isSafeInteger(src.partitions) || (src.partitions as number) < 1)) fail('source.partitions must be a positive integer');
  if (typeof src.key !== 'string' || src.key.length === 0) fail('source.key must name the field records are keyed by');
  const sink = raw.sink;
  if (!isObject(sink)) return fail('sink is missing');
  if (typeof sink.stream !== 'string' || !STREAM.test(sink.stream)) fail(`sink.stream ${JSON.stringify(sink.stream)} is not a stream name`);
  if (typeof sink.subjectPrefix !== 'string' || !SUBJECT.test(sink.subjectPrefix)) fail(`sink.subjectPrefix ${JSON.stringify(sink.subjectPrefix)} is not a subject`);
  if (sink.delivery !== undefined && sink.delivery !== 'exactly-once' && sink.delivery !== 'at-least-once') fail('sink.delivery must be "exactly-once" or "at-least-once"');
  let control: RouterConfig['control'];
  if (raw.control !== undefined) {
    if (!isObject(raw.control) || typeof raw.control.stream !== 'string' || !STREAM.test(raw.control.stream)) fail('control.stream is not a stream name');
    if ((raw.control as { stream: string }).stream === src.stream) fail('control.stream must differ from source.stream');
    control = { stream: (raw.control as { stream: string }).stream };
  }
  if (!Array.isArray(raw.routes)) return fail('routes must be a list');
  if (raw.routes.length === 0 && control === undefined) fail('routes is empty and there is no control stream to add routes');
  const routes = raw.routes.map((r, i) => validateRoute(r, `router config: route ${i}${isObject(r) && typeof r.id === 'string' ? ` (${r.id})` : ''}`));
  const ids = new Set<string>();
  for (const r of routes) {
    if (ids.has(r.id)) fail(`route id ${r.id} appears twice`);
    ids.add(r.id);
  }
  return {
    ...(raw.job !== undefined && { job: raw.job as string }),
    ...(raw.maxParallelism !== undefined && { maxParallelism: raw.maxParallelism as number }),
    source: { stream: src.stream as string, key: src.key as string, ...(src.partitions !== undefined && { partitions: src.partitions as number }) },
    sink: { stream: sink.stream as string, subjectPrefix: sink.subjectPrefix as string, ...(sink.delivery !== undefined && { delivery: sink.delivery as 'exactly-once' | 'at-least-once' }) },
    ...(control && { control }),
    routes,
  };
}

/** Validates a control-stream record. */
export function validateRouteCommand(raw: unknown): RouteCommand {
  if (!isObject(raw)) throw new RouterConfigError('route command is not an object');
  if (raw.action === 'put') return { action: 'put', route: validateRoute(raw.route, 'route command') };
  if (raw.action === 'remove') {
    if (typeof raw.routeId !== 'string' || !ID.test(raw.routeId)) throw new RouterConfigError(`route command: routeId ${JSON.stringify(raw.routeId)} is invalid`);
    return { action: 'remove', routeId: raw.routeId };
  }
  throw new RouterConfigError(`route command: action ${JSON.stringify(raw.action)} is not "put" or "remove"`);
}

// ---- compiled routes ----

type Steps = ReadonlyArray<string>;

function splitPath(path: string): Steps {
  return path.split('.');
}

/** Walks objects by property and arrays by index; own properties only (no prototype tricks). */
export function readPath(value: unknown, steps: Steps): unknown {
  let v = value;
  for (const step of steps) {
    if (typeof v !== 'object' || v === null) return undefined;
    if (Array.isArray(v)) {
      const i = Number(step);
      v = Number.isInteger(i) && i >= 0 ? v[i] : undefined;
    } else v = Object.hasOwn(v, step) ? (v as Record<string, unknown>)[step] : undefined;
    if (v === undefined) return undefined;
  }
  return v;
}

export interface CompiledRoute {
  readonly id: string;
  readonly to: readonly string[];
  /** Whether the record passes the filter; throws RouterConfigError when the expression fails on it (a type error). */
  matches(record: unknown): boolean;
  project(record: unknown): unknown;
}

/** Identifiers resolved as dotted paths, split once per identifier (filtrex calls this per access). */
function pathResolver(): (name: string, get: (name: string) => unknown, obj: unknown) => unknown {
  const cache = new Map<string, Steps>();
  return (name, _get, obj) => {
    let steps = cache.get(name);
    if (steps === undefined) {
      steps = splitPath(name);
      cache.set(name, steps);
    }
    return readPath(obj, steps);
  };
}

export function compileRoute(route: RouteConfig, where = `route ${route.id}`): CompiledRoute {
  let filter: ((record: unknown) => unknown) | undefined;
  if (route.filter !== undefined) {
    try {
      filter = compileExpression(route.filter, { customProp: pathResolver() }) as (record: unknown) => unknown;
    } catch (e) {
      throw new RouterConfigError(`${where}: filter ${JSON.stringify(route.filter)} does not compile: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const expression = route.filter;
  const matches = filter === undefined
    ? () => true
    : (record: unknown) => {
        const r = filter(record);
        // filtrex returns (never throws) the error of a failed evaluation, e.g. comparing a string with a number.
        if (r instanceof Error) throw new RouterConfigError(`route ${route.id}: filter ${JSON.stringify(expression)} failed on the record: ${r.message}`);
        return r === true || r === 1;
      };
  let project: (record: unknown) => unknown = (record) => record;
  if (route.project !== undefined) {
    const fields = (Array.isArray(route.project) ? route.project.map((p) => [p, p] as const) : Object.entries(route.project)).map(([out, from]) => ({ out: splitPath(out), from: splitPath(from) }));
    project = (record) => {
      const result: Record<string, unknown> = {};
      for (const f of fields) {
        const v = readPath(record, f.from);
        if (v === undefined) continue;
        let target = result;
        for (let i = 0; i < f.out.length - 1; i++) {
          const k = f.out[i]!;
          const next = target[k];
          if (typeof next === 'object' && next !== null) target = next as Record<string, unknown>;
          else target = target[k] = {};
        }
        target[f.out[f.out.length - 1]!] = v;
      }
      return result;
    };
  }
  return { id: route.id, to: route.to, matches, project };
}

/** One output of routing: the subject under the sink's prefix, and the projected record. */
export interface Routed {
  subject: string;
  value: unknown;
}

/** Routes one record through routes in order: every matching route, every target. */
export function routeRecord(record: unknown, routes: readonly CompiledRoute[], out: Routed[] = []): Routed[] {
  for (const r of routes) {
    if (!r.matches(record)) continue;
    const value = r.project(record);
    for (const subject of r.to) out.push({ subject, value });
  }
  return out;
}
