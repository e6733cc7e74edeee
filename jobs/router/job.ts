// The configurable router (docs/USE-CASES.md §3): filter, projection and fan-out to several
// subjects, declared in JSON (config.ts), with no user code. `routerJob(config)` builds the job
// from a configuration; the module's default export is built from routes.json, which esbuild
// inlines into the bundle, so the file is read at build time and a malformed configuration fails
// `eddy build` with the reason.
//
// Without a control stream the router is stateless: records are routed in the source stage
// itself (no shuffle). With `control`, routes put or removed at run time arrive on that stream
// and are broadcast to every key group of a keyed routing stage (broadcast state): a change is
// part of the checkpoints like any state, and applies in each key group from its place in that
// key group's input, in order with the records.
import { job, jetstreamRouted, mapState, type Job, type RoutedRecord } from '@eddy/sdk';
import { compileRoute, routeRecord, validateRouteCommand, validateRouterConfig, type CompiledRoute, type RouteConfig, type RouteCommand } from './config.ts';
import { revisionOf } from '../shared/revision.ts';
import defaultConfig from './routes.json' with { type: 'json' };

/** The routes in force, as stored in broadcast state (one entry): the list and its revision. */
interface RouteTable {
  rev: string;
  routes: RouteConfig[];
}

const routeTable = mapState<RouteTable>('routes');
const TABLE = 'table';

/** A record is a JSON object; anything else goes to the dead-letter subject with the reason. */
function checkRecord(r: unknown): Record<string, unknown> {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new TypeError(`a routed record must be a JSON object, got ${Array.isArray(r) ? 'an array' : r === null ? 'null' : typeof r}`);
  return r as Record<string, unknown>;
}

/** Builds the router job from a configuration; throws RouterConfigError naming the first problem. */
export function routerJob(rawConfig: unknown): Job {
  const config = validateRouterConfig(rawConfig);
  // Compiled when the bundle is loaded: once per worker, never per record.
  const staticRoutes = config.routes.map((r) => compileRoute(r));
  const compiled = new Map<string, readonly CompiledRoute[]>();
  const routesOf = (table: RouteTable | undefined): readonly CompiledRoute[] => {
    if (table === undefined) return staticRoutes;
    let c = compiled.get(table.rev);
    if (c === undefined) {
      if (compiled.size > 1000) compiled.clear();
      c = table.routes.map((r) => compileRoute(r));
      compiled.set(table.rev, c);
    }
    return c;
  };
  const apply = (table: RouteTable | undefined, cmd: RouteCommand): RouteTable => {
    const routes = [...(table?.routes ?? config.routes)];
    const id = cmd.action === 'put' ? cmd.route.id : cmd.routeId;
    const i = routes.findIndex((r) => r.id === id);
    if (cmd.action === 'put') {
      if (i >= 0) routes[i] = cmd.route;
      else routes.push(cmd.route);
    } else if (i >= 0) routes.splice(i, 1);
    return { rev: revisionOf(routes), routes };
  };

  const key = config.source.key;
  const sink = jetstreamRouted(config.sink.subjectPrefix, { stream: config.sink.stream, ...(config.sink.delivery && { delivery: config.sink.delivery }) });
  const router = job(config.job ?? 'router', { errorPolicy: 'dead-letter', ...(config.maxParallelism !== undefined && { maxParallelism: config.maxParallelism }) });
  const records = router.source<unknown>(config.source.stream, { partitions: config.source.partitions ?? 4, key }).map(checkRecord, 'check-record');
  if (config.control === undefined) {
    records.flatMap((r): RoutedRecord[] => routeRecord(r, staticRoutes), 'route').sink(sink);
    return router;
  }
  // A malformed route command goes to the dead-letter subject here, once, before the broadcast.
  const commands = router.source<unknown>(config.control.stream, { partitions: 1 }).map(validateRouteCommand, 'validate-route').broadcast('broadcast-routes');
  records
    // The record's key field (producers partition by it); a record without one is dead-lettered.
    .keyBy((r) => r[key] as string, 'by-key')
    .connect(commands)
    .process<RoutedRecord>(
      'route',
      {
        async processElement(r, ctx) {
          const routes = routesOf(await ctx.broadcastState(routeTable).get(TABLE));
          for (const out of routeRecord(r, routes)) ctx.emit(out);
        },
        async processBroadcastElement(cmd, bctx) {
          const state = bctx.broadcastState(routeTable);
          state.put(TABLE, apply(await state.get(TABLE), cmd));
        },
      },
      { broadcastState: [routeTable] },
    )
    .sink(sink);
  return router;
}

export default routerJob(defaultConfig);
