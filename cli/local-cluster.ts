// The local cluster behind `eddy up` and `eddy demo`: nats-server, one coordinator and N workers
// as child processes of this one, each logging to <data>/logs/. It starts them in dependency
// order and waits until each is usable, watches them, and stops them in reverse order (workers
// first so they can still reach the coordinator and NATS while they close).
//
// Children run in their own process group (detached): a Ctrl-C in the terminal reaches only this
// supervisor, which then stops them in order instead of all of them dying at once.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { ChildSet, describeExit, signalPid, stopGracefully } from './child-processes.ts';
import { CliError } from './errors.ts';
import { buildDist, runningCompiled } from './dist-build.ts';
import { SUPERVISOR_PID_ENV } from './run-role.ts';
import { natsLoginEnv, prepareNatsAuth, type NatsRole, type NatsRoleLogin } from './nats-auth-setup.ts';
import { NODE_FLAGS } from '../core/node-flags.ts';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const CLI_MAIN = path.join(REPO_ROOT, 'cli', 'main.ts');

/** How long a child gets between SIGTERM and SIGKILL. */
export const STOP_GRACE_MS = 5_000;
/**
 * How long a worker removed by `eddy scale` gets between SIGTERM and SIGKILL: it finishes its
 * part of the checkpoint in flight and hands its key groups over before it exits.
 */
export const WORKER_LEAVE_GRACE_MS = 75_000;
const NATS_READY_TIMEOUT_MS = 15_000;
/** tsx compiles on a cold start, and N workers compile at once on a small machine. */
const ROLE_READY_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 100;

export interface LocalClusterOptions {
  /** Workers to start, with ids w-1 … w-N. @default 2 */
  workers?: number;
  /** Port nats-server listens on (loopback). @default 4222 */
  natsPort?: number;
  /** host:port of the coordinator's gRPC server. @default "127.0.0.1:7400" */
  grpcAddress?: string;
  /** host:port of the coordinator's dashboard, or "" for none. @default "127.0.0.1:7480" */
  httpAddress?: string;
  /** Root of everything the cluster writes: nats/, store/, workers/, logs/. @default "./data" */
  dataDir?: string;
  /** pino level of the coordinator and workers. @default "info" */
  logLevel?: string;
  /** Aborting stops what has started and rejects. */
  signal?: AbortSignal;
}

export interface LocalProcess {
  /** "nats-server", "coordinator", "worker w-1". */
  name: string;
  pid: number;
  logFile: string;
}

export interface LocalCluster {
  natsUrl: string;
  /**
   * NATS runs with authentication: each role's user and password file (<data>/nats-auth/). A
   * producer publishes with the producer login. Workers log in as users of their own
   * (worker-<id>.password), not as the `worker` login here.
   */
  natsLogins: Record<NatsRole, NatsRoleLogin>;
  grpcAddress: string;
  /** host:port of the coordinator's dashboard ('' when off). */
  httpAddress: string;
  dataDir: string;
  storeDir: string;
  logDir: string;
  /** The processes running now (workers come and go with scale()). */
  readonly processes: readonly LocalProcess[];
  /** Ids of the running workers, in the order they were started. */
  workerIds(): string[];
  /**
   * Starts or stops workers until `workers` run: new ones get the next ids (w-<N+1>…) and are
   * ready when this resolves; the most recently started ones leave first (SIGTERM, SIGKILL
   * after WORKER_LEAVE_GRACE_MS). Calls are carried out one after the other.
   */
  scale(workers: number): Promise<ScaleResult>;
  /** Resolves with a description when a child exits while the cluster is not being stopped. */
  readonly failed: Promise<string>;
  /** Stops the coordinator, then workers, then NATS: SIGTERM, SIGKILL after 5 s. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILLs every child at once (a second Ctrl-C). */
  kill(): void;
}

export interface ScaleResult {
  added: string[];
  removed: string[];
  /** Worker ids running after the change. */
  workers: string[];
}

interface Tracked extends LocalProcess {
  child: ChildProcess;
  exit: Promise<string>;
  exited: boolean;
  /** Told to stop on its own (scaled in): its exit is not a failure. */
  leaving: boolean;
}

/** The nats-server binary: EDDY_NATS_SERVER, else the first nats-server on PATH. */
export function findNatsServer(): string {
  const fromEnv = process.env.EDDY_NATS_SERVER;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new CliError(`EDDY_NATS_SERVER=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'nats-server');
    if (isExecutable(candidate)) return candidate;
  }
  throw new CliError('nats-server not found on PATH: run `make install` (or set EDDY_NATS_SERVER to its path)');
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The last meaningful line of a log, shortened: pino lines become their msg and error. */
function lastLogLine(logFile: string, fromOffset: number): string {
  let text: string;
  try {
    text = fs.readFileSync(logFile, 'utf8').slice(fromOffset);
  } catch {
    return '';
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const last = lines[lines.length - 1];
  if (last === undefined) return '';
  try {
    const entry = JSON.parse(last) as { msg?: string; err?: { message?: string } };
    return [entry.msg, entry.err?.message].filter(Boolean).join(': ').slice(0, 300);
  } catch {
    return last.trim().slice(0, 300);
  }
}

class Supervisor {
  readonly processes: Tracked[] = [];
  stopping = false;
  #failed!: (description: string) => void;
  readonly failed = new Promise<string>((resolve) => (this.#failed = resolve));
  /** However this process ends, it must not leave its children running. */
  readonly #children = new ChildSet();

  constructor(private readonly signal: AbortSignal | undefined) {}

  async spawn(name: string, command: string, args: string[], logFile: string, env: Record<string, string> = {}): Promise<Tracked> {
    const fd = fs.openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = await this.#children.spawn({
        name,
        command,
        args,
        stdio: ['ignore', fd, fd],
        detached: true,
        env: { ...env, [SUPERVISOR_PID_ENV]: String(process.pid) },
      });
    } catch (e) {
      throw new CliError((e as Error).message, { cause: e });
    } finally {
      fs.closeSync(fd);
    }
    const tracked: Tracked = {
      name,
      pid: child.pid!,
      logFile,
      child,
      exited: false,
      leaving: false,
      exit: new Promise<string>((onExit) =>
        child.once('exit', (code, signal) => {
          tracked.exited = true;
          const description = `${name} (pid ${child.pid}) ${describeExit({ code, signal })}`;
          if (!this.stopping && !tracked.leaving) this.#failed(`${description}; see ${path.relative(process.cwd(), logFile) || logFile}`);
          onExit(description);
        }),
      ),
    };
    this.processes.push(tracked);
    return tracked;
  }

  /** Polls `ready` until it holds; fails if the process exits, the deadline passes or we are aborted. */
  async waitReady(p: Tracked, what: string, timeoutMs: number, logOffset: number, ready: () => Promise<boolean> | boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.throwIfAborted();
      if (p.exited) {
        const last = lastLogLine(p.logFile, logOffset);
        throw new CliError(`${await p.exit} before ${what}${last ? `: ${last}` : ''} (see ${p.logFile})`);
      }
      if (await ready()) return;
      if (Date.now() > deadline) throw new CliError(`${p.name} (pid ${p.pid}) was not ${what} within ${timeoutMs / 1000} s (see ${p.logFile})`);
      await delay(POLL_INTERVAL_MS);
    }
  }

  throwIfAborted(): void {
    if (this.signal?.aborted) throw new CliError('interrupted', { exitCode: 130 });
  }

  async stopOne(p: Tracked, graceMs = STOP_GRACE_MS): Promise<void> {
    if (p.exited) return;
    await stopGracefully(p.pid, p.exit, graceMs, () => !p.exited);
  }

  /** Stops one process that is meant to go (scale in) and forgets it. */
  async retire(p: Tracked, graceMs: number): Promise<void> {
    p.leaving = true;
    await this.stopOne(p, graceMs);
    const i = this.processes.indexOf(p);
    if (i !== -1) this.processes.splice(i, 1);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const byRole = (prefix: string) => this.processes.filter((p) => p.name.startsWith(prefix));
    // The coordinator first: workers without one stop at once instead of handing their key
    // groups to each other (worker/worker.ts, hand-over on SIGTERM).
    await Promise.all(byRole('coordinator').map((p) => this.stopOne(p)));
    await Promise.all(byRole('worker').map((p) => this.stopOne(p)));
    await Promise.all(this.processes.map((p) => this.stopOne(p)));
    this.#children.dispose();
  }

  kill(): void {
    this.stopping = true;
    for (const p of this.processes) if (!p.exited) signalPid(p.pid, 'SIGKILL');
  }
}

/** Byte length of a file, or 0: where to start looking for this run's ready line. */
function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function logContains(file: string, fromOffset: number, needle: string): boolean {
  try {
    return fs.readFileSync(file, 'utf8').indexOf(needle, fromOffset) !== -1;
  } catch {
    return false;
  }
}

async function natsAccepts(url: string, login: NatsRoleLogin): Promise<boolean> {
  try {
    const pass = fs.readFileSync(login.passwordFile, 'utf8').trim();
    const nc = await connect({ servers: url, reconnect: false, timeout: 1_000, name: 'eddy-up-probe', user: login.user, pass });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

/** Starts nats-server, a coordinator and N workers; resolves once every one of them is ready. */
export async function startLocalCluster(options: LocalClusterOptions = {}): Promise<LocalCluster> {
  const workers = options.workers ?? 2;
  const natsPort = options.natsPort ?? 4222;
  const grpcAddress = options.grpcAddress ?? '127.0.0.1:7400';
  const httpAddress = options.httpAddress ?? '127.0.0.1:7480';
  const dataDir = path.resolve(options.dataDir ?? 'data');
  const logLevel = options.logLevel ?? 'info';
  const natsServer = findNatsServer();
  const [grpcHost, grpcPortText] = [grpcAddress.slice(0, grpcAddress.lastIndexOf(':')), grpcAddress.slice(grpcAddress.lastIndexOf(':') + 1)];

  if (!(await portFree('127.0.0.1', natsPort))) {
    throw new CliError(`port ${natsPort} is in use (another eddy up or nats-server?): stop it or pass --nats-port`);
  }
  if (!(await portFree(grpcHost.replace(/^\[|\]$/g, ''), Number(grpcPortText)))) {
    throw new CliError(`${grpcAddress} is in use (another eddy up or coordinator?): stop it or pass --grpc`);
  }
  if (httpAddress !== '') {
    const at = httpAddress.lastIndexOf(':');
    if (!(await portFree(httpAddress.slice(0, at).replace(/^\[|\]$/g, ''), Number(httpAddress.slice(at + 1))))) {
      throw new CliError(`${httpAddress} is in use (another eddy up or coordinator?): stop it or pass --http (off for no dashboard)`);
    }
  }

  const dirs = { nats: path.join(dataDir, 'nats'), store: path.join(dataDir, 'store'), workers: path.join(dataDir, 'workers'), logs: path.join(dataDir, 'logs') };
  for (const dir of Object.values(dirs)) fs.mkdirSync(dir, { recursive: true });

  const natsUrl = `nats://127.0.0.1:${natsPort}`;
  // Worker ids are w-1, w-2, … in start order and never reused within one run, so that a worker
  // that left and one that joined later are not taken for each other.
  let workersStarted = 0;
  const nextWorkerIds = (n: number): string[] => Array.from({ length: n }, () => `w-${++workersStarted}`);
  const initialWorkers = nextWorkerIds(workers);
  // Authentication on by default: generated passwords in the data dir, Eddy's permission set, and
  // a NATS user per worker (cli/nats-auth-setup.ts); a worker that joins later is granted one first.
  const authDir = path.join(dataDir, 'nats-auth');
  // JetStream goes in the config: a reload applies the file, and would switch off JetStream set by flags.
  const authOptions = (workerIds: string[]) => ({ workerIds, jetstreamStoreDir: dirs.nats });
  let natsAuth = prepareNatsAuth(authDir, authOptions(initialWorkers));
  // The children run compiled JavaScript (cli/dist-build.ts): this tree when it is compiled
  // already, else one built now into the data directory (a second or so with esbuild).
  const main = runningCompiled(import.meta.url) ? path.join(REPO_ROOT, 'cli', 'main.js') : path.join(await buildDist(path.join(dataDir, 'dist')), 'cli', 'main.js');
  const eddyArgs = (role: string, args: string[]): string[] => [...NODE_FLAGS, main, role, ...args, '--log-level', logLevel];
  const supervisor = new Supervisor(options.signal);
  let startWorker: (id: string) => Promise<string> = () => Promise.reject(new CliError('the cluster is not started'));
  let grantWorkers: (ids: string[]) => Promise<void> = () => Promise.reject(new CliError('the cluster is not started'));
  try {
    const natsLog = path.join(dirs.logs, 'nats.log');
    const nats = await supervisor.spawn('nats-server', natsServer, ['-c', natsAuth.configFile, '-a', '127.0.0.1', '-p', String(natsPort)], natsLog);
    await supervisor.waitReady(nats, 'accepting connections', NATS_READY_TIMEOUT_MS, fileSize(natsLog), () => natsAccepts(natsUrl, natsAuth.logins.coordinator));

    const startRole = async (name: string, role: 'coordinator' | 'worker', args: string[], logFile: string, readyMessage: string, login: NatsRoleLogin): Promise<void> => {
      const offset = fileSize(logFile);
      const p = await supervisor.spawn(name, process.execPath, eddyArgs(role, args), logFile, natsLoginEnv(login));
      await supervisor.waitReady(p, 'ready', ROLE_READY_TIMEOUT_MS, offset, () => logContains(logFile, offset, `"msg":"${readyMessage}"`));
    };
    startWorker = async (id: string): Promise<string> => {
      const dir = path.join(dirs.workers, id);
      fs.mkdirSync(dir, { recursive: true });
      const login = natsAuth.workerLogins.get(id);
      if (login === undefined) throw new CliError(`worker ${id} has no NATS user`);
      // Every worker serves direct feature reads on a free loopback port (`eddy query --direct`,
      // sdk/feature-client.ts direct): loopback needs neither TLS nor tokens (README, "Security").
      await startRole(`worker ${id}`, 'worker', ['--nats', natsUrl, '--id', id, '--data', dir, '--store', dirs.store, '--serve', '127.0.0.1:0'], path.join(dirs.logs, `worker-${id}.log`), 'worker ready', login);
      return id;
    };
    // The config names every worker (each is denied the others' subjects), so a new one means a
    // new config and a reload; workers already connected get their longer deny lists at once.
    grantWorkers = async (ids: string[]): Promise<void> => {
      natsAuth = prepareNatsAuth(authDir, authOptions([...natsAuth.workerLogins.keys(), ...ids]));
      const offset = fileSize(natsLog);
      signalPid(nats.pid, 'SIGHUP');
      await supervisor.waitReady(nats, 'reloaded with the new workers', NATS_READY_TIMEOUT_MS, offset, () => logContains(natsLog, offset, 'Reloaded server configuration'));
    };
    await startRole('coordinator', 'coordinator', ['--nats', natsUrl, '--grpc', grpcAddress, '--http', httpAddress || 'off', '--store', dirs.store], path.join(dirs.logs, 'coordinator.log'), 'coordinator ready', natsAuth.logins.coordinator);
    await Promise.all(initialWorkers.map((id) => startWorker(id)));
  } catch (e) {
    await supervisor.stop();
    throw e;
  }

  let stopping: Promise<void> | undefined;
  let scaling: Promise<unknown> = Promise.resolve();
  const runningWorkers = () => supervisor.processes.filter((p) => p.name.startsWith('worker ') && !p.leaving && !p.exited);
  const workerIds = () => runningWorkers().map((p) => p.name.slice('worker '.length));
  const scaleNow = async (target: number): Promise<ScaleResult> => {
    if (stopping !== undefined) throw new CliError('the cluster is stopping');
    const running = runningWorkers();
    const added: string[] = [];
    const removed: string[] = [];
    if (target > running.length) {
      const ids = nextWorkerIds(target - running.length);
      await grantWorkers(ids);
      added.push(...(await Promise.all(ids.map((id) => startWorker(id)))));
    } else {
      const leaving = running.slice(target).reverse();
      await Promise.all(leaving.map((p) => supervisor.retire(p, WORKER_LEAVE_GRACE_MS)));
      removed.push(...leaving.map((p) => p.name.slice('worker '.length)));
    }
    return { added, removed, workers: workerIds() };
  };
  return {
    natsUrl,
    natsLogins: natsAuth.logins,
    grpcAddress,
    httpAddress,
    dataDir,
    storeDir: dirs.store,
    logDir: dirs.logs,
    get processes() {
      return supervisor.processes.filter((p) => !p.exited).map(({ name, pid, logFile }) => ({ name, pid, logFile }));
    },
    workerIds,
    scale: (target: number) => {
      if (!Number.isSafeInteger(target) || target < 0) return Promise.reject(new CliError(`cannot scale to ${target} workers: expected a whole number ≥ 0`));
      const next = scaling.catch(() => undefined).then(() => scaleNow(target));
      scaling = next;
      return next;
    },
    failed: supervisor.failed,
    stop: () => (stopping ??= scaling.catch(() => undefined).then(() => supervisor.stop())),
    kill: () => supervisor.kill(),
  };
}
