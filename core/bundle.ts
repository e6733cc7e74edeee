// Job bundles: an ES module built by esbuild with '@eddy/sdk' external, plus the manifest
// (the job graph), produced at build time so the coordinator never executes user code.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { InvalidArgumentError, ensureError } from './errors.ts';
import type { JobManifest } from './manifest.ts';
import type { Job } from '../sdk/index.ts';

export const SDK_SPECIFIER = '@eddy/sdk';
// Compiled (cli/dist-build.ts), bundles share the compiled sdk module beside this one.
const SDK_URL = new URL(import.meta.url.endsWith('.js') ? '../sdk/index.js' : '../sdk/index.ts', import.meta.url).href;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface BuiltBundle {
  code: Uint8Array;
  sha256: string;
  manifest: JobManifest;
}

/** Bundles a job's entry file and evaluates it once, locally, to produce its manifest. */
export async function buildBundle(entry: string, cacheDir: string): Promise<BuiltBundle> {
  let result: esbuild.BuildResult & { outputFiles: esbuild.OutputFile[] };
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      external: [SDK_SPECIFIER],
      logLevel: 'silent',
      legalComments: 'none',
    });
  } catch (e) {
    const errors = (e as { errors?: esbuild.Message[] }).errors;
    const first = errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : '';
    throw new InvalidArgumentError(`build of ${entry} failed: ${where}${first?.text ?? ensureError(e).message}`, { cause: e });
  }
  const code = result.outputFiles[0]!.contents;
  const sha256 = sha256Hex(code);
  const job = await loadBundle(code, sha256, cacheDir);
  return { code, sha256, manifest: job.manifest() };
}

let hookRegistered = false;

/**
 * Imports a bundle (cached on disk as <cacheDir>/<sha256>.mjs) and returns its default export,
 * checked to be a Job built with this sdk.
 */
export async function loadBundle(code: Uint8Array, sha256: string, cacheDir: string): Promise<Job> {
  if (!hookRegistered) {
    register(new URL('./sdk-resolve-hook.mjs', import.meta.url), { data: { sdkUrl: SDK_URL } });
    hookRegistered = true;
  }
  const file = path.join(cacheDir, `${sha256}.mjs`);
  await fs.mkdir(cacheDir, { recursive: true });
  try {
    await fs.access(file);
  } catch {
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(tmp, code);
    await fs.rename(tmp, file);
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (e) {
    throw new InvalidArgumentError(`bundle ${sha256} failed to load: ${ensureError(e).message}`, { cause: e });
  }
  const { Job: JobClass } = await import('../sdk/index.ts');
  if (!(mod.default instanceof JobClass)) {
    throw new InvalidArgumentError(`bundle ${sha256}: its default export is not a job (export default job(...) from '${SDK_SPECIFIER}')`);
  }
  return mod.default;
}
