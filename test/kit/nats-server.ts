// A real nats-server per test: JetStream on, a fresh store dir, a free loopback port.
// Ready means usable: a client connects and a JetStream API call answers (not just "port open").
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePort } from './free-port.ts';
import { startProcess, type ChildHandle } from './processes.ts';
import { waitFor } from './wait-for.ts';
import { prepareNatsAuth, type NatsAuthSetup, type NatsRole } from '../../cli/nats-auth-setup.ts';
import { inboxPrefixes } from '../../core/nats-connect.ts';
import { readFileSync } from 'node:fs';

const STARTUP_DEADLINE_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
/** A free port can be taken by someone else before the server binds it: try a new one. */
const BIND_ATTEMPTS = 3;

export interface NatsServerOptions {
  /** Enable JetStream (with the temp store dir). @default true */
  jetstream?: boolean;
  /**
   * Authentication on, with Eddy's permission set (deploy/nats-permissions.conf) and a user per
   * role, as `eddy up` runs it; 'per-worker': a user per worker id instead of the shared worker
   * user, each granted by grantWorker() (cli/nats-auth-setup.ts). @default false
   */
  auth?: boolean | 'per-worker';
  /**
   * The server's max_pending: how far a client may fall behind on what the server sends it before
   * it is cut off as a slow consumer (nats-server's default: 64 MB). Not with auth. @default 64 MB
   */
  maxPendingBytes?: number;
}

/** nats.js connect options that log in as a role (its user, password and inbox prefix). */
export interface NatsLogin {
  user: string;
  pass: string;
  inboxPrefix: string;
}

export interface NatsServer extends AsyncDisposable {
  /** nats://127.0.0.1:<port> */
  url: string;
  port: number;
  /** The JetStream store dir, removed by stop(). */
  storeDir: string;
  pid: number;
  /** With auth: the logins (users and password files) of each role. */
  auth?: NatsAuthSetup;
  /** With auth: connect options for a role (per-worker users: the worker's, by id); without auth: {}. */
  login(role: NatsRole, workerId?: string): NatsLogin | Record<string, never>;
  /** With auth: the environment that logs an Eddy process in as a role (or as worker `workerId`); without: {}. */
  loginEnv(role: NatsRole, workerId?: string): Record<string, string>;
  /**
   * Per-worker users: gives `workerId` a user of its own (and denies the others publishing as it),
   * reloads the server and waits until it has. Without per-worker users: nothing.
   */
  grantWorker(workerId: string): Promise<void>;
  /** The server's log (stderr), last ~64 KB. */
  output(): string;
  /** SIGTERM (SIGKILL after 5 s), wait for the exit, remove the store dir. */
  stop(): Promise<void>;
  /** Sends a signal to the server's pid only. @default 'SIGKILL' */
  kill(signal?: NodeJS.Signals): void;
  /**
   * A crash and a restart: SIGKILLs the server, waits for its exit, and starts it again on the
   * same port and store dir; resolves once it is usable again.
   */
  restart(): Promise<void>;
}

/** The nats-server binary: $EDDY_NATS_SERVER, else `nats-server` on PATH (or in Debian's /usr/sbin). */
export function natsServerBinary(): string {
  const fromEnv = process.env.EDDY_NATS_SERVER;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!isExecutableFile(fromEnv)) throw new Error(`EDDY_NATS_SERVER=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  // Debian installs it in /usr/sbin, which is not on a non-root user's PATH.
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== ''), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new Error('nats-server not found on PATH: run `make install` (scripts/ensure-nats-server.sh), or set EDDY_NATS_SERVER to its path');
}

function isExecutableFile(path: string): boolean {
  try {
    return existsSync(path) && statSync(path).isFile() && (statSync(path).mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const jetstream = options.jetstream ?? true;
  const binary = natsServerBinary();
  const storeDir = await mkdtemp(join(tmpdir(), 'eddy-nats-'));
  const authDir = join(storeDir, 'auth');
  const perWorker = options.auth === 'per-worker';
  // Per-worker users mean reloads: JetStream must then be in the config, not in flags.
  const jetstreamInConfig = perWorker && jetstream;
  const authOptions = (workerIds: string[]) => ({ workerIds, ...(jetstreamInConfig && { jetstreamStoreDir: storeDir }) });
  let auth = options.auth ? prepareNatsAuth(authDir, perWorker ? authOptions([]) : {}) : undefined;
  const loginOf = (role: NatsRole, workerId: string | undefined) => {
    if (role !== 'worker' || !perWorker) return auth!.logins[role];
    const l = workerId === undefined ? undefined : auth!.workerLogins.get(workerId);
    if (l === undefined) throw new Error(`worker ${workerId ?? '(no id)'} has no NATS user: grantWorker() it first`);
    return l;
  };
  const login = (role: NatsRole, workerId?: string): NatsLogin | Record<string, never> => {
    if (!auth) return {};
    const prefix = role === 'worker' ? inboxPrefixes.worker(workerId ?? 'test') : inboxPrefixes[role];
    const l = loginOf(role, workerId);
    return { user: l.user, pass: readFileSync(l.passwordFile, 'utf8').trim(), inboxPrefix: prefix };
  };
  const loginEnv = (role: NatsRole, workerId?: string): Record<string, string> => {
    if (!auth) return {};
    const l = loginOf(role, workerId);
    return { EDDY_NATS_USER: l.user, EDDY_NATS_PASSWORD_FILE: l.passwordFile };
  };
  // Grants one after the other: each rewrites the config with every id so far, then reloads.
  let granting: Promise<void> = Promise.resolve();
  const grantWith = (current: () => ChildHandle) => (workerId: string): Promise<void> => {
    if (!perWorker) return Promise.resolve();
    const next = granting.then(async () => {
      if (auth!.workerLogins.has(workerId)) return;
      auth = prepareNatsAuth(authDir, authOptions([...auth!.workerLogins.keys(), workerId]));
      const child = current();
      const since = child.lineCount();
      child.kill('SIGHUP');
      await child.waitForLine(/Reloaded server configuration/, 10_000, { since });
    });
    granting = next.catch(() => undefined);
    return next;
  };
  if (options.maxPendingBytes !== undefined && auth) throw new Error('startNatsServer: maxPendingBytes is not combined with auth');
  const limitsFile = join(storeDir, 'limits.conf');
  if (options.maxPendingBytes !== undefined) await writeFile(limitsFile, `max_pending: ${options.maxPendingBytes}\n`);
  const config = auth ? ['-c', auth.configFile] : options.maxPendingBytes !== undefined ? ['-c', limitsFile] : [];
  const argsFor = (port: number) => [...config, '-a', '127.0.0.1', '-p', String(port), ...(jetstream && !jetstreamInConfig ? ['-js', '-sd', storeDir] : [])];
  // Starts the server on `port` and waits until it is usable; stops it again if it is not.
  const launch = async (port: number, deadline: number): Promise<ChildHandle> => {
    const child = await startProcess({ name: `nats-server :${port}`, command: binary, args: argsFor(port), readyLine: /Server is ready/, readyTimeoutMs: Math.max(1_000, deadline - Date.now()) });
    const url = `nats://127.0.0.1:${port}`;
    try {
      const usable = waitFor(() => isUsable(url, jetstream, login('coordinator')), {
        timeoutMs: Math.max(1_000, deadline - Date.now()),
        what: `nats-server at ${url} to accept a client${jetstream ? ' and answer a JetStream account info request' : ''}`,
        intervalMs: 50,
      });
      const died = child.exited.then((status) => {
        throw new Error(`nats-server at ${url} exited (${JSON.stringify(status)}) before it was usable`);
      });
      await Promise.race([usable, died]);
    } catch (e) {
      await child.stop(STOP_TIMEOUT_MS);
      throw new Error(`${(e as Error).message}; server log tail:\n${child.output().slice(-4096)}`, { cause: e });
    }
    return child;
  };
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      let child: ChildHandle;
      try {
        child = await launch(port, deadline);
      } catch (e) {
        if (attempt < BIND_ATTEMPTS && /address already in use/i.test((e as Error).message)) continue;
        throw e;
      }
      let current = child;
      const restart = async (): Promise<void> => {
        current.kill('SIGKILL');
        await current.exited;
        // A JetStream store recovered after a crash takes longer than a fresh start.
        current = await launch(port, Date.now() + 3 * STARTUP_DEADLINE_MS);
      };
      return serverHandle(() => current, `nats://127.0.0.1:${port}`, port, storeDir, () => auth, login, loginEnv, grantWith(() => current), restart);
    }
  } catch (e) {
    await rm(storeDir, { recursive: true, force: true });
    throw e;
  }
}

async function isUsable(url: string, jetstream: boolean, login: object): Promise<boolean> {
  const nc = await connect({ servers: url, reconnect: false, timeout: 1_000, ...login });
  try {
    if (jetstream) {
      const jsm = await jetstreamManager(nc, { timeout: 1_000 });
      await jsm.getAccountInfo();
    } else {
      await nc.flush();
    }
    return true;
  } finally {
    await nc.close();
  }
}

function serverHandle(
  current: () => ChildHandle,
  url: string,
  port: number,
  storeDir: string,
  auth: () => NatsAuthSetup | undefined,
  login: NatsServer['login'],
  loginEnv: NatsServer['loginEnv'],
  grantWorker: NatsServer['grantWorker'],
  restart: NatsServer['restart'],
): NatsServer {
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await current().stop(STOP_TIMEOUT_MS);
      await rm(storeDir, { recursive: true, force: true });
    })());
  return {
    url,
    port,
    storeDir,
    get pid() {
      return current().pid;
    },
    get auth() {
      return auth();
    },
    login,
    loginEnv,
    grantWorker,
    output: () => current().output(),
    stop,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => current().kill(signal),
    restart,
    [Symbol.asyncDispose]: stop,
  };
}
