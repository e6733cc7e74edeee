// Child processes, started and stopped the one way Eddy does it: by `eddy up` (cli/local-cluster.ts)
// and by the test kit (test/kit/processes.ts), which both build on this.
//
// A ChildSet tracks every child until it exits and SIGKILLs what is left when this process exits,
// however it exits (an exception, process.exit, a failed test): a supervisor never leaks a
// nats-server or a worker. Children are addressed by pid only, and a signal to a child that has
// already gone is not an error.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

/** "exited with code 1", "was killed by SIGKILL". */
export function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `was killed by ${status.signal}` : `exited with code ${String(status.code)}`;
}

/** Sends a signal to a pid; a process that has already exited is not an error. */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already exited
  }
}

/**
 * SIGTERM, then SIGKILL if the child still runs after graceMs; resolves once `exited` settles.
 * `running` says whether the child is still there (a stop after its exit sends nothing).
 */
export async function stopGracefully(pid: number, exited: Promise<unknown>, graceMs: number, running: () => boolean): Promise<void> {
  if (running()) {
    signalPid(pid, 'SIGTERM');
    const escalate = setTimeout(() => {
      if (running()) signalPid(pid, 'SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(escalate);
  }
  await exited;
}

export interface SpawnChildOptions {
  /** Names the process in errors ("coordinator", "worker w-1"). */
  name: string;
  command: string;
  args: string[];
  /** Added to, and overriding, this process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  stdio: StdioOptions;
  /** Its own process group, so that a Ctrl-C in the terminal reaches only the supervisor. */
  detached?: boolean;
}

/** The children of one supervisor, SIGKILLed when this process exits. */
export class ChildSet {
  readonly #live = new Set<ChildProcess>();
  readonly #onExit = (): void => this.killAll();

  constructor() {
    process.on('exit', this.#onExit);
  }

  /**
   * Starts a child and resolves once it has spawned (tracked until it exits); rejects with
   * "<name>: could not start <command>: <reason>" when it cannot start.
   */
  spawn(options: SpawnChildOptions): Promise<ChildProcess> {
    const { name, command } = options;
    const child = spawn(command, options.args, {
      cwd: options.cwd,
      env: options.env === undefined ? process.env : { ...process.env, ...options.env },
      stdio: options.stdio,
      detached: options.detached ?? false,
    });
    return new Promise((resolve, reject) => {
      child.once('spawn', () => {
        this.#live.add(child);
        child.once('exit', () => this.#live.delete(child));
        // Later errors (a failed kill) must not crash the supervisor.
        child.on('error', () => {});
        resolve(child);
      });
      child.once('error', (err) => reject(new Error(`${name}: could not start ${command}: ${err.message}`, { cause: err })));
    });
  }

  /** SIGKILLs every child still running. */
  killAll(): void {
    for (const child of this.#live) if (child.pid !== undefined) signalPid(child.pid, 'SIGKILL');
    this.#live.clear();
  }

  /** Stops watching this process's exit (once every child has been stopped). */
  dispose(): void {
    process.off('exit', this.#onExit);
  }
}
