// Nexmark query jobs (jobs/nexmark/queries.ts) built for a test or a benchmark: an entry file in
// a temp directory that calls nexmarkJob with the given options, bundled like any job. The
// options are inlined as JSON, so the bundle (and the manifest) are the same wherever it loads.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBundle, type BuiltBundle } from '../../core/bundle.ts';
import { REPO_ROOT } from './eddy.ts';
import type { NexmarkJobOptions, QueryName } from '../../jobs/nexmark/queries.ts';

export async function buildNexmarkBundle(query: QueryName, options: NexmarkJobOptions, dir: string): Promise<BuiltBundle> {
  const entry = join(dir, `${options.name ?? `nexmark-${query}`}.ts`);
  const queries = join(REPO_ROOT, 'jobs/nexmark/queries.ts');
  await writeFile(entry, `import { nexmarkJob } from ${JSON.stringify(queries)};\nexport default nexmarkJob(${JSON.stringify(query)}, ${JSON.stringify(options)});\n`);
  return buildBundle(entry, join(dir, 'cache'));
}
