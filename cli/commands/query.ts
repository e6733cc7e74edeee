// eddy query <job> <feature> <entityId...>: read a job's keyed state as features.
import { InvalidArgumentError, Option, type Command } from 'commander';
import * as grpc from '@grpc/grpc-js';
import { globalOptions, withClient } from '../context.ts';
import { clientSecurityFrom } from '../security-options.ts';
import { FeatureClient } from '../../sdk/feature-client.ts';
import { fromProtoValue, fromTimestamp } from '../../core/proto-values.ts';
import { listenForInterrupt } from '../interrupt.ts';
import type { FeatureValue, FeatureView } from '../client.ts';

function parseValue(value: FeatureValue): unknown {
  if (!value.found) return null;
  try {
    return JSON.parse(value.valueJson);
  } catch {
    // A value that is not JSON is shown as the text it is rather than failing the whole query.
    return value.valueJson;
  }
}

/** Event time and checkpoint of one answer, for people: "event time …, checkpoint N (+ uncommitted)". */
function provenance(v: FeatureValue): string {
  const parts: string[] = [`key group ${v.keyGroup}`];
  if (v.hasEventTime) parts.push(`event time ${isoOrNumber(Number(v.eventTimeUnixMs))}`);
  parts.push(`checkpoint ${v.checkpointId}${v.uncommitted ? ' + uncommitted changes' : ''}`);
  return parts.join(', ');
}

function isoOrNumber(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

/** Prints features as `<entity>` followed by the indented value, or `<entity>  not found`. */
export function printFeatures(values: readonly FeatureValue[], json: boolean, watchTag?: string): void {
  for (const v of values) {
    if (json) {
      console.log(
        JSON.stringify({
          ...(watchTag !== undefined ? { watch: watchTag } : {}),
          entityId: v.entityId,
          found: v.found,
          value: parseValue(v),
          eventTimeUnixMs: v.hasEventTime ? Number(v.eventTimeUnixMs) : null,
          checkpointId: Number(v.checkpointId),
          uncommitted: v.uncommitted,
          ...(v.beyondRetention ? { beyondRetention: true } : {}),
        }),
      );
    } else if (v.beyondRetention) {
      console.log(`${v.entityId}  not known at that time: older than the feature's retained history`);
    } else if (!v.found) {
      console.log(`${v.entityId}  not found${watchTag !== undefined ? ` (${watchTag})` : ''}`);
    } else {
      console.log(`${v.entityId}  (${watchTag !== undefined ? `${watchTag}, ` : ''}${provenance(v)})`);
      console.log(
        JSON.stringify(parseValue(v), null, 2)
          .split('\n')
          .map((line) => `  ${line}`)
          .join('\n'),
      );
    }
  }
}

/** --as-of: an ISO 8601 time or ms since the epoch. */
export function parseAsOf(text: string): number {
  if (/^-?\d+$/.test(text.trim())) return Number(text.trim());
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new InvalidArgumentError(`--as-of ${JSON.stringify(text)} is neither an ISO time (2026-11-22T10:00:00Z) nor ms since the epoch`);
  return ms;
}

export function registerQuery(program: Command): void {
  program
    .command('query')
    .description("read a feature (a keyed stage's state) for entities; an entity without state is not found")
    .argument('<job>', 'job id')
    .argument('<feature>', 'feature name, e.g. indicators')
    .argument('<entityId...>', 'one or more entity ids')
    .option('--json', 'print one JSON line per entity: {entityId, found, value, eventTimeUnixMs, checkpointId, uncommitted}')
    .addOption(new Option('--view <view>', 'latest: including changes not yet checkpointed; committed: the last completed checkpoint').choices(['latest', 'committed']).default('latest'))
    .option('--as-of <time>', 'the value current at this event time (ISO time or ms since the epoch); the feature must keep history', parseAsOf)
    .option('--watch', 'print the current values, then every change, until interrupted (LATEST view)')
    .option('--direct', "read from the workers that own the ids (their --serve endpoints, found with the coordinator's serving map) rather than through the coordinator")
    .action(async (jobId: string, feature: string, entityIds: string[], options: { json?: boolean; view: FeatureView; asOf?: number; watch?: boolean; direct?: boolean }, command: Command) => {
      if (options.watch === true) {
        if (options.direct === true) throw new InvalidArgumentError('--watch goes through the coordinator: drop --direct');
        if (options.asOf !== undefined || options.view !== 'latest') throw new InvalidArgumentError('--watch serves the latest view only: drop --as-of and --view');
        await withClient(command, async (client) => {
          using interrupt = listenForInterrupt();
          const watch = client.watch(jobId, feature, entityIds, (change) => {
            if (!change.value) return;
            if (options.json === true) printFeatures([change.value], true, change.initial ? 'initial' : 'change');
            else printFeatures([change.value], false, change.initial ? 'now' : 'changed');
          });
          void interrupt.requested.then(() => watch.stop());
          await watch.done;
        });
        return;
      }
      if (options.direct === true) {
        printFeatures(await readDirectly(command, jobId, feature, entityIds, options), options.json === true);
        return;
      }
      const values = await withClient(command, (client) => client.batchGet(jobId, feature, entityIds, options.view, options.asOf !== undefined ? { asOfUnixMs: options.asOf } : {}));
      printFeatures(values, options.json === true);
    });
}

/**
 * The ids read from their owners' serving endpoints (sdk/feature-client.ts, direct), in the shape
 * `eddy query` prints. The coordinator (--addr) is asked only for the serving map; key groups
 * whose owner has no endpoint are read through it.
 */
async function readDirectly(command: Command, jobId: string, feature: string, entityIds: string[], options: { view: FeatureView; asOf?: number }): Promise<FeatureValue[]> {
  const o = globalOptions(command);
  const { tls, token } = clientSecurityFrom(o);
  using client = new FeatureClient({
    address: o.addr.split(',')[0]!.trim(),
    timeoutMs: o.timeoutMs,
    direct: true,
    ...(tls && { credentials: grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null) }),
    ...(token !== undefined && { token }),
  });
  const response = await client.getFeaturesResponse(jobId, [feature], entityIds, { view: options.view, ...(options.asOf !== undefined && { asOfUnixMs: options.asOf }) });
  return response.rows.map((row) => {
    const v = row.values[0]!;
    return {
      entityId: row.entityId,
      found: v.found,
      valueJson: v.found ? JSON.stringify(fromProtoValue(v.value)) : '',
      hasEventTime: v.eventTime !== null,
      eventTimeUnixMs: v.eventTime ? String(fromTimestamp(v.eventTime)) : '0',
      keyGroup: v.keyGroup,
      checkpointId: v.checkpointId,
      uncommitted: v.uncommitted,
      beyondRetention: v.beyondRetention,
    };
  });
}
