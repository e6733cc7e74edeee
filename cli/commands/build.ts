// eddy build <job.ts> [--out dir]: bundle a job and write its manifest next to it.
import type { Command } from 'commander';
import { buildJob, writeJobBundle } from '../job-bundle.ts';
import { formatBytes } from '../format.ts';
import { stageEdges } from '../../core/manifest.ts';

export function registerBuild(program: Command): void {
  program
    .command('build')
    .description('bundle a job (esbuild) and write <out>/<job>.js and <out>/<job>.manifest.json')
    .argument('<job.ts>', "the job's entry file; its default export is the job")
    .option('--out <dir>', 'output directory', 'dist')
    .action(async (entry: string, options: { out: string }) => {
      const bundle = await buildJob(entry);
      const written = await writeJobBundle(bundle, options.out);
      console.log(`built ${bundle.manifest.name}`);
      console.log(`  bundle    ${written.bundlePath} (${formatBytes(bundle.code.byteLength)})`);
      console.log(`  manifest  ${written.manifestPath}`);
      console.log(`  sha256    ${bundle.sha256}`);
      // A job is a graph: its edges (keyBy/broadcast into keyed stages), or its one stage.
      const edges = [...new Set(stageEdges(bundle.manifest).map((e) => `${e.from} → ${e.to}${e.kind === 'broadcast' ? ' (broadcast)' : ''}`))];
      console.log(`  stages    ${edges.length > 0 ? edges.join(', ') : bundle.manifest.stages.map((s) => s.id).join(', ')}`);
    });
}
