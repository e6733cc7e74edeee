// Eddy's own processes, started through the real CLI (cli/main.ts under tsx), as a test would
// run them in production: separate processes talking over NATS and gRPC.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.ts';
import { startNatsServer, type NatsServer } from './nats-server.ts';
import { runProcess, startProcess, type ChildHandle, type RunResult } from './processes.ts';
import { waitFor } from './wait-for.ts';
import type { EddyClient } from '../../cli/client.ts';
import { NODE_FLAGS } from '../../core/node-flags.ts';

/** The repository root, where package.json and node_modules are. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI_MAIN = join(REPO_ROOT, 'cli', 'main.ts');

/**
 * tsx compiles on first start: a cold Eddy process takes a few seconds on a busy 2-core box, and
 * a coordinator took over 30 s at a load average of 24 (the windows fault test's restart).
 */
const EDDY_READY_TIMEOUT_MS = 60_000;
/**
 * A worker is ready once its first job thread has started too (worker/worker.ts): a second
 * compile of the runtime, in the thread. EDDY_JOB_ISOLATION=none in the environment runs the
 * workers of every test without threads (the kit passes the environment on).
 */
const WORKER_READY_TIMEOUT_MS = 60_000;
const EDDY_STOP_TIMEOUT_MS = 10_000;

// `--import tsx` resolves from the child's cwd; the resolved URL works from any cwd.
const TSX_LOADER = import.meta.resolve('tsx');

/** node --import tsx cli/main.ts <args> */
// EDDY_DIST: a tree written by cli/dist-build.ts; the processes then run its compiled JavaScript
// (what `eddy up` and the image run) instead of the sources through tsx. For benchmarks, and for
// `make test`, which builds the tree first (a process under tsx compiles the sources at its start).
// Without it (one test file run by hand) the processes run the sources as they are.
const DIST = process.env.EDDY_DIST;

/** node's arguments for `eddy <args>`: Eddy's node flags, then the compiled tree's cli/main.js under EDDY_DIST, else the sources under tsx. */
export function cliArgs(args: string[]): string[] {
  return DIST !== undefined && DIST !== '' ? [...NODE_FLAGS, `${DIST}/cli/main.js`, ...args] : [...NODE_FLAGS, '--import', TSX_LOADER, CLI_MAIN, ...args];
}

/** Where the object store is: `--store` and `--s3-endpoint` of the coordinator and worker roles. */
interface StoreLocation {
  /** A directory or a file:// URL (give this or storeUrl). */
  storeDir?: string;
  /** Any store URL, e.g. s3://<bucket>/<prefix>; wins over storeDir. */
  storeUrl?: string;
  /**
   * Passed as --s3-endpoint, e.g. startS3Server()'s endpoint. Credentials go in `env`
   * (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), as in production.
   */
  s3Endpoint?: string;
}

function storeArgs(options: StoreLocation): string[] {
  const store = options.storeUrl ?? options.storeDir;
  if (store === undefined) throw new Error('give storeDir or storeUrl: where the object store is');
  return ['--store', store, ...(options.s3Endpoint !== undefined ? ['--s3-endpoint', options.s3Endpoint] : [])];
}

export interface CoordinatorOptions extends StoreLocation {
  natsUrl: string;
  /** @default a free port */
  grpcPort?: number;
  /** Passed as --worker-timeout-ms when set. */
  workerTimeoutMs?: number;
  /** Passed as --checkpoint-interval-ms when set. */
  checkpointIntervalMs?: number;
  /**
   * False: --checkpoint-when-idle, a periodic checkpoint every interval even while the job is idle
   * (for a test whose subject is checkpoints: their count, contents, timeouts or collection).
   * Undefined or true: the coordinator's default, no periodic checkpoint while nothing was read,
   * emitted or dead-lettered since the latest one (coordinator/checkpoint-idle.ts); a test waiting
   * for "a checkpoint later" uses checkpointsOrIdle (test/kit/checkpoints.ts).
   * @default the coordinator's default (skipped while idle)
   */
  skipIdleCheckpoints?: boolean;
  /** Passed as --checkpoint-timeout-ms when set. */
  checkpointTimeoutMs?: number;
  /** Passed as --max-delta-chain when set. */
  maxDeltaChain?: number;
  /** Passed as --max-moving-key-groups when set. */
  maxMovingKeyGroups?: number;
  /** Passed to every worker as --max-overlay-bytes. */
  maxOverlayBytes?: number;
  /** Passed as --metrics-port when set (0: off). */
  metricsPort?: number;
  /** The dashboard's port (--http 127.0.0.1:<port>). @default a free port */
  httpPort?: number;
  env?: Record<string, string>;
  /** Appended to the command line (e.g. TLS and tokens options). */
  extraArgs?: string[];
  /** Passed as --leader-lease-ms when set. */
  leaderLeaseMs?: number;
  /** The process's name in errors and dumps. @default "coordinator" */
  name?: string;
  /** Passed as --nats-replicas when set. */
  natsReplicas?: number;
}

/** An Eddy process; metricsUrl is its Prometheus endpoint when started with a metrics port. */
export type EddyProcess = ChildHandle & { /** http://127.0.0.1:<port>/metrics, or undefined. */ metricsUrl?: string };

export type CoordinatorHandle = EddyProcess & {
  /** "127.0.0.1:<port>", the gRPC address. */
  address: string;
  /** http://127.0.0.1:<port>, the dashboard (page and /api/). */
  httpUrl: string;
};

function metricsArgs(port: number | undefined): { args: string[]; metricsUrl?: string } {
  if (port === undefined || port === 0) return { args: [] };
  return { args: ['--metrics-port', String(port)], metricsUrl: `http://127.0.0.1:${port}/metrics` };
}

export async function startCoordinator(options: CoordinatorOptions): Promise<CoordinatorHandle> {
  // A port the kit chose may be taken by another process between freePort() and the bind
  // (free-port.ts): the coordinator then exits at once, and is started again on other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startCoordinatorOnce(options);
    } catch (e) {
      const chosenHere = options.grpcPort === undefined || options.httpPort === undefined;
      if (!chosenHere || attempt >= 3 || !/EADDRINUSE/.test(String(e))) throw e;
    }
  }
}

async function startCoordinatorOnce(options: CoordinatorOptions): Promise<CoordinatorHandle> {
  const port = options.grpcPort ?? (await freePort());
  const address = `127.0.0.1:${port}`;
  const httpPort = options.httpPort ?? (await freePort());
  const args = ['coordinator', '--nats', options.natsUrl, '--grpc', address, '--http', `127.0.0.1:${httpPort}`, ...storeArgs(options)];
  if (options.workerTimeoutMs !== undefined) args.push('--worker-timeout-ms', String(options.workerTimeoutMs));
  if (options.checkpointIntervalMs !== undefined) args.push('--checkpoint-interval-ms', String(options.checkpointIntervalMs));
  // The production default unless a test asks for a checkpoint every interval while idle.
  if (options.skipIdleCheckpoints === false) args.push('--checkpoint-when-idle');
  if (options.checkpointTimeoutMs !== undefined) args.push('--checkpoint-timeout-ms', String(options.checkpointTimeoutMs));
  if (options.maxDeltaChain !== undefined) args.push('--max-delta-chain', String(options.maxDeltaChain));
  if (options.maxMovingKeyGroups !== undefined) args.push('--max-moving-key-groups', String(options.maxMovingKeyGroups));
  if (options.leaderLeaseMs !== undefined) args.push('--leader-lease-ms', String(options.leaderLeaseMs));
  if (options.natsReplicas !== undefined) args.push('--nats-replicas', String(options.natsReplicas));
  const metrics = metricsArgs(options.metricsPort);
  args.push(...metrics.args, ...(options.extraArgs ?? []));
  const child = await startProcess({
    name: options.name ?? 'coordinator',
    command: process.execPath,
    args: cliArgs(args),
    cwd: REPO_ROOT,
    ...(options.env !== undefined && { env: options.env }),
    readyLine: /"msg":"coordinator ready"/,
    readyTimeoutMs: EDDY_READY_TIMEOUT_MS,
  });
  return Object.assign(child, { address, httpUrl: `http://127.0.0.1:${httpPort}`, ...(metrics.metricsUrl !== undefined && { metricsUrl: metrics.metricsUrl }) });
}

export interface WorkerOptions extends StoreLocation {
  natsUrl: string;
  workerId: string;
  /** The worker's own local state dir (RocksDB). */
  dataDir: string;
  env?: Record<string, string>;
  /** Passed as --max-overlay-bytes. */
  maxOverlayBytes?: number;
  /** Passed as --metrics-port when set (0: off). */
  metricsPort?: number;
  /** Appended to the command line (e.g. NATS credentials options). */
  extraArgs?: string[];
  /** Passed as --log-level when set (e.g. "trace" for the "event-time timers fired" lines). */
  logLevel?: string;
}

export async function startWorker(options: WorkerOptions): Promise<EddyProcess> {
  const args = ['worker', '--nats', options.natsUrl, '--id', options.workerId, '--data', options.dataDir, ...storeArgs(options)];
  if (options.maxOverlayBytes !== undefined) args.push('--max-overlay-bytes', String(options.maxOverlayBytes));
  if (options.logLevel !== undefined) args.push('--log-level', options.logLevel);
  const metrics = metricsArgs(options.metricsPort);
  args.push(...metrics.args, ...(options.extraArgs ?? []));
  const child = await startProcess({
    name: `worker ${options.workerId}`,
    command: process.execPath,
    args: cliArgs(args),
    cwd: REPO_ROOT,
    ...(options.env !== undefined && { env: options.env }),
    readyLine: /"msg":"worker ready"/,
    readyTimeoutMs: WORKER_READY_TIMEOUT_MS,
  });
  return Object.assign(child, metrics.metricsUrl !== undefined ? { metricsUrl: metrics.metricsUrl } : {});
}

export interface ClusterOptions {
  workers: number;
  /** Passed to the coordinator. */
  workerTimeoutMs?: number;
  /** Passed to the coordinator. */
  checkpointIntervalMs?: number;
  /** Passed to the coordinator: false asks for --checkpoint-when-idle (CoordinatorOptions.skipIdleCheckpoints). @default the coordinator's default */
  skipIdleCheckpoints?: boolean;
  /** Passed to the coordinator. */
  checkpointTimeoutMs?: number;
  /** Passed to the coordinator. */
  maxDeltaChain?: number;
  /** Passed to the coordinator. */
  maxMovingKeyGroups?: number;
  /** Passed to every worker as --max-overlay-bytes. */
  maxOverlayBytes?: number;
  /** Added to every Eddy process's environment (e.g. S3 credentials). */
  env?: Record<string, string>;
  /** The store every process uses, e.g. s3://<bucket>/eddy. @default a temp directory (storeDir) */
  storeUrl?: string;
  /** Passed to every process as --s3-endpoint. */
  s3Endpoint?: string;
  /** Every Eddy process serves Prometheus metrics on a free port (EddyProcess.metricsUrl). @default false */
  metrics?: boolean;
  /**
   * NATS with authentication and Eddy's permission set; each process logs in as its role
   * (nats.login(role) and nats.loginEnv(role) for the test's own clients); 'per-worker': each
   * worker with a user of its own, granted as it is added (nats.login('worker', id)). @default false
   */
  natsAuth?: boolean | 'per-worker';
  /** Passed to every worker as --log-level. @default the worker's (info) */
  workerLogLevel?: string;
  /**
   * Coordinators started after the first, which leads: they stand by (docs/ARCHITECTURE.md,
   * "Standby coordinators"). @default 0
   */
  standbyCoordinators?: number;
  /** Passed to every coordinator as --leader-lease-ms. */
  leaderLeaseMs?: number;
  /** Appended to every worker's command line (e.g. --serve 127.0.0.1:0 and its TLS and tokens options). */
  workerArgs?: string[];
  /** The nats-server's max_pending (NatsServerOptions.maxPendingBytes). @default 64 MB */
  natsMaxPendingBytes?: number;
  /** Appended to every coordinator's command line (e.g. TLS and tokens options). */
  coordinatorArgs?: string[];
}

export interface Cluster extends AsyncDisposable {
  nats: NatsServer;
  /** The coordinator started first, which leads at the start. */
  coordinator: CoordinatorHandle;
  /** The standby coordinators (ClusterOptions.standbyCoordinators), in start order. */
  standbys: CoordinatorHandle[];
  /** Every coordinator's gRPC address, the first one's first: "a,b,c" for EddyClient and --addr. */
  addresses: string;
  /** In start order; addWorker() appends. Ids are worker-1, worker-2, … */
  workers: EddyProcess[];
  /** The checkpoint store (a directory); created but unused when the cluster was given a storeUrl. */
  storeDir: string;
  /** The store the processes use: the options' storeUrl, else storeDir. */
  storeUrl: string;
  /** Parent of each worker's data dir (<dataDir>/<workerId>). */
  dataDir: string;
  /** The coordinator's gRPC address. */
  address: string;
  /** Starts one more worker (a fresh id unless given) and adds it to `workers`. */
  addWorker(workerId?: string): Promise<EddyProcess>;
  /** Stops the workers, then the coordinator, then NATS, and removes the temp dirs. */
  stop(): Promise<void>;
}

/** Cluster options for checkpoints in a test S3 server (test/kit/s3-server.ts). */
export function s3Store(s3: { bucket: string; endpoint: string; credentials: { accessKeyId: string; secretAccessKey: string } }): Pick<ClusterOptions, 'storeUrl' | 's3Endpoint' | 'env'> {
  return {
    storeUrl: `s3://${s3.bucket}/eddy`,
    s3Endpoint: s3.endpoint,
    env: { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey },
  };
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const root = await mkdtemp(join(tmpdir(), 'eddy-cluster-'));
  const storeDir = join(root, 'store');
  const dataDir = join(root, 'data');
  const store: StoreLocation = {
    storeUrl: options.storeUrl ?? storeDir,
    ...(options.s3Endpoint !== undefined && { s3Endpoint: options.s3Endpoint }),
  };
  await mkdir(storeDir);
  await mkdir(dataDir);
  let nats: NatsServer | undefined;
  let coordinator: CoordinatorHandle | undefined;
  const standbys: CoordinatorHandle[] = [];
  const workers: EddyProcess[] = [];
  let nextWorker = 1;

  const stopAll = async (): Promise<void> => {
    // EDDY_TEST_DUMP=<dir>: keep every process's output tail for a post-mortem.
    const dump = process.env.EDDY_TEST_DUMP;
    if (dump) {
      await mkdir(dump, { recursive: true });
      const stamp = Date.now();
      for (const p of [coordinator, ...standbys, ...workers]) if (p) await writeFile(join(dump, `${stamp}-${p.name.replace(/\W+/g, '-')}.log`), p.output());
    }
    // The coordinators first (standbys before the leader, which they would replace): workers
    // stopped without one stop at once instead of handing their key groups to each other.
    await Promise.all(standbys.map((c) => c.stop(EDDY_STOP_TIMEOUT_MS)));
    await coordinator?.stop(EDDY_STOP_TIMEOUT_MS);
    await Promise.all(workers.map((w) => w.stop(EDDY_STOP_TIMEOUT_MS)));
    await nats?.stop();
    await rm(root, { recursive: true, force: true });
  };

  const addWorker = async (workerId: string = `worker-${nextWorker++}`): Promise<EddyProcess> => {
    const workerDataDir = join(dataDir, workerId);
    await mkdir(workerDataDir, { recursive: true });
    await nats!.grantWorker(workerId);
    const worker = await startWorker({
      natsUrl: nats!.url,
      workerId,
      dataDir: workerDataDir,
      ...store,
      env: { ...options.env, ...nats!.loginEnv('worker', workerId) },
      ...(options.maxOverlayBytes !== undefined && { maxOverlayBytes: options.maxOverlayBytes }),
      ...(options.metrics === true && { metricsPort: await freePort() }),
      ...(options.workerLogLevel !== undefined && { logLevel: options.workerLogLevel }),
      ...(options.workerArgs !== undefined && { extraArgs: options.workerArgs }),
    });
    workers.push(worker);
    return worker;
  };

  try {
    nats = await startNatsServer({ auth: options.natsAuth ?? false, ...(options.natsMaxPendingBytes !== undefined && { maxPendingBytes: options.natsMaxPendingBytes }) });
    const startOne = async (name: string): Promise<CoordinatorHandle> =>
      startCoordinator({
        name,
        natsUrl: nats!.url,
        ...store,
        env: { ...options.env, ...nats!.loginEnv('coordinator') },
        ...(options.workerTimeoutMs !== undefined && { workerTimeoutMs: options.workerTimeoutMs }),
        ...(options.checkpointIntervalMs !== undefined && { checkpointIntervalMs: options.checkpointIntervalMs }),
        ...(options.skipIdleCheckpoints !== undefined && { skipIdleCheckpoints: options.skipIdleCheckpoints }),
        ...(options.checkpointTimeoutMs !== undefined && { checkpointTimeoutMs: options.checkpointTimeoutMs }),
        ...(options.maxDeltaChain !== undefined && { maxDeltaChain: options.maxDeltaChain }),
        ...(options.maxMovingKeyGroups !== undefined && { maxMovingKeyGroups: options.maxMovingKeyGroups }),
        ...(options.leaderLeaseMs !== undefined && { leaderLeaseMs: options.leaderLeaseMs }),
        ...(options.metrics === true && { metricsPort: await freePort() }),
        ...(options.coordinatorArgs !== undefined && { extraArgs: options.coordinatorArgs }),
      });
    coordinator = await startOne('coordinator');
    // One after the other, once the first leads: each of them stands by.
    for (let i = 0; i < (options.standbyCoordinators ?? 0); i++) standbys.push(await startOne(`coordinator-${i + 2}`));
    const ids = Array.from({ length: options.workers }, () => `worker-${nextWorker++}`);
    // allSettled: a worker that fails to start must not leave its siblings unstopped.
    const started = await Promise.allSettled(ids.map((id) => addWorker(id)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (e) {
    await stopAll();
    throw e;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= stopAll());
  return {
    nats,
    coordinator,
    standbys,
    addresses: [coordinator, ...standbys].map((c) => c.address).join(','),
    workers,
    storeDir,
    storeUrl: store.storeUrl!,
    dataDir,
    address: coordinator.address,
    addWorker,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

export interface RunCliOptions {
  env?: Record<string, string>;
  /** Written to the CLI's stdin. */
  input?: string;
  /** @default 60000 */
  timeoutMs?: number;
  /** @default the repository root */
  cwd?: string;
}

/** Runs `eddy <args>` to completion. A non-zero exit code is returned, not thrown. */
export function runCli(args: string[], options: RunCliOptions = {}): Promise<RunResult> {
  return runProcess({
    name: `eddy ${args.join(' ')}`,
    command: process.execPath,
    args: cliArgs(args),
    cwd: options.cwd ?? REPO_ROOT,
    ...(options.env !== undefined && { env: options.env }),
    ...(options.input !== undefined && { input: options.input }),
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
  });
}

/** Waits until exactly `workers` workers are ALIVE in the coordinator's registry. */
export async function waitForWorkers(client: EddyClient, workers: number, timeoutMs = 15_000): Promise<void> {
  await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === workers, { timeoutMs, what: `${workers} live worker(s)` });
}
