// Eddy as compiled JavaScript, for production processes (`eddy up` children, the Docker image):
// tsx compiles each module on load and wraps every function in a __name helper (esbuild's
// keepNames), a few µs per event on the hot path (docs/BENCHMARKS.md). The tree it writes is the
// repository's (core, sdk, worker, coordinator, cli, jobs, proto, the dashboard's ui/dist, the
// NATS permission file, package.json) with a .js beside every .ts: every path the code resolves
// from import.meta.url still holds (a module that names code to run, such as the SDK for job
// bundles or a job thread's entry, picks the .js when it runs compiled itself), and the
// TypeScript sources stay for what is bundled from source (the use-case jobs of `eddy demo`).
//
//   node --import tsx cli/dist-build.ts [outDir]      (default dist/)
//   node dist/cli/main.js <command>                   (what runs afterwards, no tsx)
import { build, type Plugin } from 'esbuild';
import { cp, mkdir, readdir, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Code directories: copied, and each .ts compiled to a .js beside it. */
const CODE_DIRS = ['core', 'sdk', 'worker', 'coordinator', 'cli', 'jobs'];
/** Files and directories the code reads at run time; absent ones (ui/dist before `make ui`) are skipped. */
const ASSETS = ['proto', 'ui/dist', 'deploy/nats-permissions.conf', 'package.json'];

/** True when this module runs compiled (from a tree buildDist wrote), not through tsx. */
export function runningCompiled(moduleUrl: string): boolean {
  return moduleUrl.endsWith('.js');
}

// One output file per module: every import stays an import, a relative one renamed to its .js.
const oneFilePerModule: Plugin = {
  name: 'one-file-per-module',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      if (args.path.startsWith('.')) return { path: args.path.replace(/\.ts$/, '.js'), external: true };
      return { path: args.path, external: true };
    });
  },
};

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function typeScriptFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}

/**
 * Writes the compiled tree into outDir (replacing it). Outside the repository, outDir gets a
 * node_modules link to the repository's, so that packages resolve.
 */
export async function buildDist(outDir: string = path.join(ROOT, 'dist'), root: string = ROOT): Promise<string> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  for (const item of [...CODE_DIRS, ...ASSETS]) {
    const from = path.join(root, item);
    if (!(await exists(from))) continue;
    await mkdir(path.dirname(path.join(outDir, item)), { recursive: true });
    await cp(from, path.join(outDir, item), { recursive: true, filter: (src) => !src.split(path.sep).includes('node_modules') });
  }
  if (path.relative(root, outDir).startsWith('..')) await symlink(path.join(root, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  const entryPoints: string[] = [];
  for (const dir of CODE_DIRS) if (await exists(path.join(outDir, dir))) entryPoints.push(...(await typeScriptFiles(path.join(outDir, dir))));
  await build({
    entryPoints,
    outdir: outDir,
    outbase: outDir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    plugins: [oneFilePerModule],
    logLevel: 'warning',
  });
  return outDir;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  await buildDist(process.argv[2] === undefined ? undefined : path.resolve(process.argv[2]));
}
