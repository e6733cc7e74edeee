// eddy query <job> <feature> <entityId...>: read a job's keyed state as features.
import { Option, type Command } from 'commander';
import { withClient } from '../context.ts';
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

/** Prints features as `<entity>` followed by the indented value, or `<entity>  not found`. */
export function printFeatures(values: readonly FeatureValue[], json: boolean): void {
  for (const v of values) {
    if (json) {
      console.log(JSON.stringify({ entityId: v.entityId, found: v.found, value: parseValue(v) }));
    } else if (!v.found) {
      console.log(`${v.entityId}  not found`);
    } else {
      console.log(`${v.entityId}  (key group ${v.keyGroup})`);
      console.log(
        JSON.stringify(parseValue(v), null, 2)
          .split('\n')
          .map((line) => `  ${line}`)
          .join('\n'),
      );
    }
  }
}

export function registerQuery(program: Command): void {
  program
    .command('query')
    .description("read a feature (a keyed stage's state) for entities; an entity without state is not found")
    .argument('<job>', 'job id')
    .argument('<feature>', 'feature name, e.g. indicators')
    .argument('<entityId...>', 'one or more entity ids')
    .option('--json', 'print one JSON line per entity: {entityId, found, value}')
    .addOption(new Option('--view <view>', 'latest: including changes not yet checkpointed; committed: the last completed checkpoint').choices(['latest', 'committed']).default('latest'))
    .action(async (jobId: string, feature: string, entityIds: string[], options: { json?: boolean; view: FeatureView }, command: Command) => {
      const values = await withClient(command, (client) => client.batchGet(jobId, feature, entityIds, options.view));
      printFeatures(values, options.json === true);
    });
}
