// A local S3 endpoint per test: s3rver on a free loopback port with a temp data dir and one bucket.
// Ready means usable: a real ListObjectsV2 through the AWS SDK answers (not just "port open").
//
// Two traps (docs/STACK-NOTES.md, "S3 in tests"): s3rver runs under
// --openssl-legacy-provider, because on Node 20 without it every truncated (paginated)
// ListObjectsV2 fails with InternalError; and clients must set the checksum options to
// WHEN_REQUIRED (core/s3-object-store.ts does).
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './free-port.ts';
import { startProcess, type ChildHandle } from './processes.ts';
import { waitFor } from './wait-for.ts';

const STARTUP_DEADLINE_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** A free port can be taken by someone else before the server binds it: try a new one. */
const BIND_ATTEMPTS = 3;
/** s3rver prints this once its HTTP server listens (even with --silent). */
const READY_LINE = /S3rver listening on/;

/** s3rver accepts these (and only these, unless told otherwise). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const S3RVER_REGION = 'us-east-1';

const S3RVER_BIN = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');

export interface S3ServerOptions {
  /** The bucket created at startup. @default 'eddy-test' */
  bucket?: string;
}

export interface S3Server extends AsyncDisposable {
  /** http://127.0.0.1:<port>: pass as `endpoint` (path-style addressing). */
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  /** s3rver's data dir; kept across stop()/restart(), removed on dispose. */
  readonly dir: string;
  /** Pass as `credentials`. */
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  readonly region: string;
  /** The current server process (a restart changes it). */
  readonly pid: number;
  /** The current server process's output, last ~64 KB. */
  output(): string;
  /**
   * SIGTERM (SIGKILL after 5 s) and waits for the exit. The data dir stays, so restart() brings
   * the same objects back on the same port; dispose of the handle to remove the dir.
   */
  stop(): Promise<void>;
  /** Sends a signal to the server's pid only (a crash; restart() brings it back). @default 'SIGKILL' */
  kill(signal?: NodeJS.Signals): void;
  /** Stops the server if it runs, then starts it again on the same port with the same data dir. */
  restart(): Promise<void>;
  /** Stops the server and removes its data dir. */
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  const bucket = options.bucket ?? 'eddy-test';
  const dir = await mkdtemp(join(tmpdir(), 'eddy-s3-'));
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        const child = await startUsable(port, dir, bucket, deadline);
        return serverHandle(child, port, dir, bucket);
      } catch (e) {
        if (attempt < BIND_ATTEMPTS && /EADDRINUSE/.test((e as Error).message)) continue;
        throw e;
      }
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

function endpointOf(port: number): string {
  return `http://127.0.0.1:${port}`;
}

/** Starts s3rver and resolves once a ListObjectsV2 on the bucket succeeds; kills it otherwise. */
async function startUsable(port: number, dir: string, bucket: string, deadline: number): Promise<ChildHandle> {
  const endpoint = endpointOf(port);
  const child = await startProcess({
    name: `s3rver :${port}`,
    command: process.execPath,
    args: ['--openssl-legacy-provider', S3RVER_BIN, '--address', '127.0.0.1', '--port', String(port), '--directory', dir, '--configure-bucket', bucket, '--silent'],
    readyLine: READY_LINE,
    readyTimeoutMs: Math.max(1_000, deadline - Date.now()),
  });
  const client = new S3Client({
    endpoint,
    region: S3RVER_REGION,
    credentials: S3RVER_CREDENTIALS,
    forcePathStyle: true,
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000, throwOnRequestTimeout: true },
  });
  try {
    const usable = waitFor(
      async () => {
        await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1 }));
        return true;
      },
      { timeoutMs: Math.max(1_000, deadline - Date.now()), what: `s3rver at ${endpoint} to answer ListObjectsV2 on bucket ${bucket}`, intervalMs: 50 },
    );
    const died = child.exited.then((status) => {
      throw new Error(`s3rver at ${endpoint} exited (${JSON.stringify(status)}) before it was usable`);
    });
    await Promise.race([usable, died]);
    return child;
  } catch (e) {
    await child.stop(STOP_TIMEOUT_MS);
    throw new Error(`${(e as Error).message}; s3rver output tail:\n${child.output().slice(-4096)}`, { cause: e });
  } finally {
    client.destroy();
  }
}

function serverHandle(first: ChildHandle, port: number, dir: string, bucket: string): S3Server {
  let child = first;
  let disposing: Promise<void> | undefined;
  const stop = (): Promise<void> => child.stop(STOP_TIMEOUT_MS);
  const restart = async (): Promise<void> => {
    if (disposing !== undefined) throw new Error(`s3rver :${port} was disposed of; it cannot restart`);
    await stop();
    child = await startUsable(port, dir, bucket, Date.now() + STARTUP_DEADLINE_MS);
  };
  const dispose = (): Promise<void> =>
    (disposing ??= (async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    })());
  return {
    endpoint: endpointOf(port),
    port,
    bucket,
    dir,
    credentials: { ...S3RVER_CREDENTIALS },
    region: S3RVER_REGION,
    get pid() {
      return child.pid;
    },
    output: () => child.output(),
    stop,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => child.kill(signal),
    restart,
    [Symbol.asyncDispose]: dispose,
  };
}
