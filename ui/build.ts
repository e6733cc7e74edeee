// Builds the dashboard's page (ui/src) into ui/dist with esbuild: one JavaScript bundle, one
// stylesheet and index.html, everything the browser loads, served by the coordinator
// (coordinator/dashboard/http-server.ts). `make ui` runs it; so do the dashboard tests.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const UI_DIR = fileURLToPath(new URL('./', import.meta.url));
export const UI_DIST_DIR = path.join(UI_DIR, 'dist');

export interface BuildUiOptions {
  /** @default ui/dist */
  outDir?: string;
  /** @default true */
  minify?: boolean;
}

/** Bundles ui/src/main.tsx (and the CSS it imports) and copies index.html; returns the output dir. */
export async function buildUi(options: BuildUiOptions = {}): Promise<string> {
  const outDir = options.outDir ?? UI_DIST_DIR;
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: { app: path.join(UI_DIR, 'src', 'main.tsx') },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: options.minify ?? true,
    sourcemap: 'linked',
    legalComments: 'linked',
    logLevel: 'warning',
  });
  await copyFile(path.join(UI_DIR, 'index.html'), path.join(outDir, 'index.html'));
  return outDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildUi();
}
