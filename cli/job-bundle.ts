// A job bundle as the CLI handles it: built from a job's .ts entry (esbuild, via core/bundle.ts)
// or read back from the <name>.js + <name>.manifest.json pair that `eddy build` writes.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildBundle, sha256Hex } from '../core/bundle.ts';
import { parseManifest, type JobManifest } from '../core/manifest.ts';
import { CliError, UsageError } from './errors.ts';

export interface JobBundle {
  code: Uint8Array;
  sha256: string;
  manifest: JobManifest;
  /** The manifest as it is shipped to the coordinator. */
  manifestJson: string;
}

export interface WrittenBundle {
  bundlePath: string;
  manifestPath: string;
}

/**
 * Where built bundles are cached to be evaluated once for their manifest. A temp dir, not the
 * job's folder: the job may live anywhere, and the cache is only a by-product of building.
 */
function buildCacheDir(): string {
  return path.join(os.tmpdir(), `eddy-build-${os.userInfo().uid}`);
}

async function mustExist(file: string): Promise<void> {
  try {
    await fs.access(file);
  } catch {
    throw new CliError(`no such file: ${file}`);
  }
}

/** Bundles the job at `entry` and produces its manifest (build errors name file:line:column). */
export async function buildJob(entry: string): Promise<JobBundle> {
  await mustExist(entry);
  const built = await buildBundle(entry, buildCacheDir());
  return { code: built.code, sha256: built.sha256, manifest: built.manifest, manifestJson: JSON.stringify(built.manifest, null, 2) };
}

/** Writes <outDir>/<job>.js and <outDir>/<job>.manifest.json. */
export async function writeJobBundle(bundle: JobBundle, outDir: string): Promise<WrittenBundle> {
  await fs.mkdir(outDir, { recursive: true });
  const bundlePath = path.join(outDir, `${bundle.manifest.name}.js`);
  const manifestPath = path.join(outDir, `${bundle.manifest.name}.manifest.json`);
  await fs.writeFile(bundlePath, bundle.code);
  await fs.writeFile(manifestPath, `${bundle.manifestJson}\n`);
  return { bundlePath, manifestPath };
}

/** The manifest `eddy build` writes next to a bundle: x.js → x.manifest.json. */
export function manifestPathFor(bundlePath: string): string {
  return bundlePath.replace(/\.m?js$/, '') + '.manifest.json';
}

/** Reads a built bundle and its manifest, validating the manifest before anything is sent. */
export async function readJobBundle(bundlePath: string, manifestPath: string = manifestPathFor(bundlePath)): Promise<JobBundle> {
  await mustExist(bundlePath);
  try {
    await fs.access(manifestPath);
  } catch {
    throw new CliError(`no manifest for ${bundlePath}: expected ${manifestPath} (written by eddy build), or pass --manifest <file>`);
  }
  const code = new Uint8Array(await fs.readFile(bundlePath));
  const manifestJson = await fs.readFile(manifestPath, 'utf8');
  const manifest = parseManifest(manifestJson);
  return { code, sha256: sha256Hex(code), manifest, manifestJson };
}

/** A .ts job is built first; a .js bundle is read with its manifest. */
export function loadJobBundle(file: string, manifestPath?: string): Promise<JobBundle> {
  if (/\.(c|m)?tsx?$/.test(file)) return buildJob(file);
  if (/\.m?js$/.test(file)) return readJobBundle(file, manifestPath);
  throw new UsageError(`${file} is neither a job (.ts) nor a bundle (.js)`);
}
