// Docker for the compose test: is an engine there, images built once per content hash, and
// docker-compose runs with a project name and environment of their own.
//
// No image registry is reachable on these machines: the base image is made locally by
// scripts/docker-base-image.sh (this machine's node in a `docker import`ed root filesystem), and
// the test's nats and s3rver images are built on it (test/docker/).
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import assert from 'node:assert/strict';
import { REPO_ROOT } from './eddy.ts';

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; a non-zero exit or the time-out rejects with its output's tail. */
export function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number }): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd ?? REPO_ROOT, env: options.env ?? process.env, timeout: options.timeoutMs, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) {
        const tail = `${stdout}\n${stderr}`.trim().slice(-4_000);
        reject(new Error(`${command} ${args.join(' ')} failed (${err.killed ? `killed after ${options.timeoutMs} ms` : `exit ${String(err.code)}`}):\n${tail}`, { cause: err }));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}

/** Why Docker cannot be used here, or undefined when an engine answers and docker-compose runs. */
export async function dockerUnavailable(): Promise<string | undefined> {
  try {
    await run('docker-compose', ['version'], { timeoutMs: 20_000 });
  } catch {
    return 'docker-compose is not installed (scripts/ensure-docker.sh installs it)';
  }
  try {
    await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 15_000 });
  } catch {
    return 'no Docker engine answers (scripts/ensure-docker.sh starts one as root)';
  }
  return undefined;
}

export async function imageExists(tag: string): Promise<boolean> {
  try {
    await run('docker', ['image', 'inspect', tag], { timeoutMs: 15_000 });
    return true;
  } catch {
    return false;
  }
}

/** Files under `dir` (relative to the repository), recursively, sorted; node_modules skipped. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      if (entry.name === 'node_modules') continue;
      const full = join(d, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) out.push(relative(REPO_ROOT, full));
    }
  };
  await walk(join(REPO_ROOT, dir));
  return out.sort();
}

/** sha256 of the paths (files or directories, repository-relative) and extra strings, 16 hex digits. */
export async function contentHash(paths: readonly string[], extra: readonly string[] = []): Promise<string> {
  const hash = createHash('sha256');
  for (const p of paths) {
    const full = join(REPO_ROOT, p);
    const files = (await stat(full)).isDirectory() ? await filesUnder(p) : [p];
    for (const f of files) {
      hash.update(`${f}\0`);
      hash.update(await readFile(join(REPO_ROOT, f)));
    }
  }
  for (const e of extra) hash.update(`${e}\0`);
  return hash.digest('hex').slice(0, 16);
}

/** What goes into the Eddy image (deploy/Dockerfile's COPY lines, and the Dockerfile itself). */
const EDDY_IMAGE_INPUTS = ['deploy/Dockerfile', '.dockerignore', 'deploy/docker-entrypoint.sh', 'deploy/grpc-health.mjs', 'package.json', 'package-lock.json', 'tsconfig.json', 'proto', 'core', 'sdk', 'worker', 'coordinator', 'cli', 'jobs'];

export interface TestImages {
  base: string;
  eddy: string;
  nats: string;
  s3rver: string;
  /** Which images had to be built now (empty on a warm run). */
  built: string[];
}

/**
 * The local base image and the three images of the compose test, each tagged by a hash of what
 * goes into it and built only when that tag is missing. Builds use the host network (the build
 * stage's npm ci needs the npm registry).
 */
export async function buildTestImages(timeoutMs: number): Promise<TestImages> {
  const base = (await run(join(REPO_ROOT, 'scripts/docker-base-image.sh'), [], { timeoutMs })).stdout.trim();
  const built: string[] = [];
  const build = async (tag: string, dockerfile: string, context: string): Promise<string> => {
    if (await imageExists(tag)) return tag;
    await run('docker', ['build', '--network', 'host', '--build-arg', `BASE_IMAGE=${base}`, '-f', dockerfile, '-t', tag, context], { timeoutMs });
    built.push(tag);
    return tag;
  };
  const eddy = await build(`eddy-test:${await contentHash(EDDY_IMAGE_INPUTS, [base])}`, join(REPO_ROOT, 'deploy/Dockerfile'), REPO_ROOT);

  const natsBinary = (await run('sh', ['-c', 'command -v nats-server || echo /usr/sbin/nats-server'], { timeoutMs: 5_000 })).stdout.trim();
  const natsTag = `eddy-test-nats:${await contentHash(['test/docker/nats.Dockerfile'], [base, createHash('sha256').update(await readFile(natsBinary)).digest('hex')])}`;
  let nats = natsTag;
  if (!(await imageExists(natsTag))) {
    // The context is a temp dir holding only the binary.
    const context = await mkdtemp(join(tmpdir(), 'eddy-nats-image-'));
    try {
      await copyFile(natsBinary, join(context, 'nats-server'));
      nats = await build(natsTag, join(REPO_ROOT, 'test/docker/nats.Dockerfile'), context);
    } finally {
      await rm(context, { recursive: true, force: true });
    }
  }
  const s3rver = await build(`eddy-test-s3rver:${await contentHash(['test/docker/s3rver.Dockerfile'], [base])}`, join(REPO_ROOT, 'test/docker/s3rver.Dockerfile'), join(REPO_ROOT, 'test/docker'));
  if (built.length > 0) await removeOtherTags([base, eddy, nats, s3rver]);
  return { base, eddy, nats, s3rver, built };
}

/**
 * Every code change makes a new Eddy image: drop the older tags of the same repositories so that
 * they do not pile up. One still used by a container (another run) stays: its rmi fails.
 */
async function removeOtherTags(keep: readonly string[]): Promise<void> {
  for (const tag of keep) {
    const repository = tag.slice(0, tag.lastIndexOf(':'));
    const tags = (await run('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', repository], { timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean);
    for (const old of tags.filter((t) => !keep.includes(t))) await run('docker', ['rmi', old], { timeoutMs: 60_000 }).catch(() => undefined);
  }
}

/** docker-compose with a fixed project name, files and environment. */
export class Compose {
  constructor(
    readonly project: string,
    readonly files: readonly string[],
    readonly env: NodeJS.ProcessEnv,
    /** Every profile of the files: `down` names them, or it would leave their services running. */
    readonly profiles: readonly string[] = [],
  ) {}

  run(args: readonly string[], timeoutMs = 120_000, profiles: readonly string[] = []): Promise<CommandResult> {
    return run('docker-compose', ['-p', this.project, ...this.files.flatMap((f) => ['-f', f]), ...profiles.flatMap((p) => ['--profile', p]), ...args], { env: this.env, timeoutMs });
  }

  /** Container ids of a service's running containers. */
  async containers(service: string): Promise<string[]> {
    return (await this.run(['ps', '-q', service], 30_000)).stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  }

  /** `down -v`: containers, networks and volumes of the project; never throws (returns the error's message). */
  async down(): Promise<string | undefined> {
    try {
      await this.run(['down', '-v', '--remove-orphans', '--timeout', '10'], 120_000, this.profiles);
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }
}

/**
 * The NATS passwords deploy/docker-compose.yml requires, fresh. Each starts with a letter:
 * nats-server parses an environment value it substitutes, and one starting with "0" is a number
 * that fails to parse (the server exits at start; a random hex password did so in ~1 run in 4).
 */
export function composeNatsPasswords(): Record<`EDDY_NATS_${'COORDINATOR' | 'WORKER' | 'PRODUCER' | 'CLIENT'}_PASSWORD`, string> {
  return Object.fromEntries(['COORDINATOR', 'WORKER', 'PRODUCER', 'CLIENT'].map((r) => [`EDDY_NATS_${r}_PASSWORD`, `p${randomBytes(12).toString('hex')}`])) as Record<`EDDY_NATS_${'COORDINATOR' | 'WORKER' | 'PRODUCER' | 'CLIENT'}_PASSWORD`, string>;
}

/** Every container of the project: its state, its last health probes and the tail of its logs. */
export async function describeStack(compose: Compose): Promise<string> {
  const lines: string[] = [];
  const label = `label=com.docker.compose.project=${compose.project}`;
  const ids = (await run('docker', ['ps', '-aq', '--filter', label], { timeoutMs: 30_000 }).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean);
  for (const id of ids) {
    const inspected = await run('docker', ['inspect', '--format', '{{.Name}} {{json .State}}', id], { timeoutMs: 15_000 }).catch((err: Error) => ({ stdout: err.message }));
    const logs = await run('docker', ['logs', id], { timeoutMs: 15_000 }).catch((err: Error) => ({ stdout: err.message, stderr: '' }));
    const all = `${logs.stdout}${logs.stderr}`.trim();
    // The first warnings and errors say how a failure began; the tail, where it ended.
    const first = all.split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(0, 8).map((l) => `    ${l.slice(0, 500)}`);
    lines.push(`container ${id}: ${inspected.stdout.trim().slice(0, 3_000)}`);
    if (first.length > 0) lines.push('  first warnings and errors:', ...first);
    lines.push(`  logs: ${all.slice(-3_000)}`);
  }
  return lines.length > 0 ? lines.join('\n') : `no container of project ${compose.project}`;
}

/** Whatever the project left behind: containers and volumes (a passing test's down -v leaves none). */
export async function leftovers(compose: Compose): Promise<string[]> {
  const label = `label=com.docker.compose.project=${compose.project}`;
  return [
    ...(await run('docker', ['ps', '-aq', '--filter', label], { timeoutMs: 30_000 })).stdout.split('\n'),
    ...(await run('docker', ['volume', 'ls', '-q', '--filter', label], { timeoutMs: 30_000 })).stdout.split('\n'),
  ].filter(Boolean);
}

/**
 * Takes a test's stack down (`down -v`). Nothing of the project may outlive it: no container and
 * no volume (a scaled-in worker's included), checked only when the test passed so that it never
 * hides the first failure.
 */
export async function takeDownStack(compose: Compose, passed: boolean, diagnostic: (message: string) => void): Promise<void> {
  const downError = await compose.down();
  if (downError) diagnostic(`docker-compose down failed: ${downError}`);
  if (passed) assert.deepEqual(await leftovers(compose), [], 'down -v left no container or volume behind');
}
