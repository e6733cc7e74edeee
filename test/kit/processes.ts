// Child processes for tests: started, watched for readiness, stopped by pid, never leaked.
//
// Every child is tracked (cli/child-processes.ts, the same supervision as `eddy up`) until it exits.
// If the test process exits (a failed assertion, process.exit, the test runner's own signal
// handling), what is left is SIGKILLed, so a failing test never leaves a nats-server or worker
// behind. Children are addressed by pid only.
import type { ChildProcess } from 'node:child_process';
import { ChildSet, describeExit, signalPid, stopGracefully, type ExitStatus } from '../../cli/child-processes.ts';

export type { ExitStatus };

/**
 * Retained output per child, in characters (stdout and stderr interleaved by line);
 * EDDY_TEST_OUTPUT_LIMIT raises it for a post-mortem of a long run (with EDDY_TEST_DUMP), or for
 * bench/profile.ts gc, which reads V8's GC trace from a worker's output (read when a line comes).
 */
const outputLimitChars = (): number => Number(process.env.EDDY_TEST_OUTPUT_LIMIT ?? 64 * 1024);
/** How much output an error message quotes. */
const ERROR_TAIL_CHARS = 4 * 1024;
/** After 'exit', how long to wait for the stdio pipes to close (a grandchild may hold them). */
const PIPE_CLOSE_GRACE_MS = 500;

export const DEFAULT_READY_TIMEOUT_MS = 30_000;
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;
export const DEFAULT_RUN_TIMEOUT_MS = 60_000;

export interface StartProcessOptions {
  /** Names the process in errors ("coordinator", "worker w1"). */
  name: string;
  command: string;
  args: string[];
  /** Added to, and overriding, this process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Ready once a line of stdout or stderr matches; without it, ready as soon as it has spawned. */
  readyLine?: RegExp;
  /** Deadline for readyLine, in ms. @default 30000 */
  readyTimeoutMs?: number;
}

export interface WaitForLineOptions {
  /**
   * Only consider lines after this many lines of output (a value of lineCount() taken before an
   * action). By default every retained line counts, so a line printed before the call is found.
   */
  since?: number;
}

export interface ChildHandle extends AsyncDisposable {
  readonly name: string;
  readonly pid: number;
  /** The last ~64 KB of stdout and stderr, interleaved by line. */
  output(): string;
  /** Complete lines printed so far (including those no longer retained). */
  lineCount(): number;
  /** Settles once the process has exited and its output is complete; never rejects. */
  readonly exited: Promise<ExitStatus>;
  /** The exit status once the process has exited, else undefined. */
  exitStatus(): ExitStatus | undefined;
  /** Sends a signal; no-op once exited. @default 'SIGKILL' (a crash; use stop() for a clean stop) */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if still running after timeoutMs; resolves once exited. @default 5000 */
  stop(timeoutMs?: number): Promise<void>;
  /** Resolves with the first line matching `re`; rejects on time-out or if the process exits first. */
  waitForLine(re: RegExp, timeoutMs: number, options?: WaitForLineOptions): Promise<string>;
}

const children = new ChildSet();
// A signal's default action ends the process without 'exit'. Kill the children first; then, if
// nobody else (such as the test runner) handles the signal, restore its default and re-raise it.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = (): void => {
    children.killAll();
    if (process.listenerCount(signal) === 1) {
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    }
  };
  process.on(signal, onSignal);
}

/** Lines of a child's stdout and stderr: a bounded history plus listeners for new lines. */
class OutputLog {
  private readonly lines: string[] = [];
  /** Absolute number of lines[0]. */
  private first = 0;
  private chars = 0;
  private readonly partial = { stdout: '', stderr: '' };
  private readonly listeners = new Set<(line: string, lineNumber: number) => void>();

  append(stream: 'stdout' | 'stderr', chunk: string): void {
    let text = this.partial[stream] + chunk;
    let nl = text.indexOf('\n');
    while (nl !== -1) {
      this.push(text.slice(0, nl));
      text = text.slice(nl + 1);
      nl = text.indexOf('\n');
    }
    // A child that never prints a newline must not grow the buffer without bound.
    if (text.length > outputLimitChars()) {
      this.push(text);
      text = '';
    }
    this.partial[stream] = text;
  }

  /** The streams ended: what is left without a newline becomes a line. */
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream] !== '') this.push(this.partial[stream]);
      this.partial[stream] = '';
    }
  }

  lineCount(): number {
    return this.first + this.lines.length;
  }

  text(): string {
    const partials = [this.partial.stdout, this.partial.stderr].filter((p) => p !== '');
    return [...this.lines, ...partials].join('\n');
  }

  tail(chars: number): string {
    const text = this.text();
    return text.length <= chars ? text : `…${text.slice(text.length - chars)}`;
  }

  find(re: RegExp, since: number): string | undefined {
    for (let i = Math.max(0, since - this.first); i < this.lines.length; i++) {
      const line = this.lines[i]!;
      // search() ignores lastIndex, so a /g regex behaves like any other.
      if (line.search(re) !== -1) return line;
    }
    return undefined;
  }

  onLine(listener: (line: string, lineNumber: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private push(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const lineNumber = this.lineCount();
    this.lines.push(line);
    this.chars += line.length + 1;
    while (this.chars > outputLimitChars() && this.lines.length > 1) {
      this.chars -= this.lines.shift()!.length + 1;
      this.first++;
    }
    for (const listener of this.listeners) listener(line, lineNumber);
  }
}

type LineOutcome = { line: string } | { timedOut: true } | { exited: ExitStatus };

function withTail(message: string, log: OutputLog): string {
  const tail = log.tail(ERROR_TAIL_CHARS);
  return tail === '' ? `${message} (no output)` : `${message}; output tail:\n${tail}`;
}

function spawnTracked(name: string, command: string, args: string[], env: Record<string, string> | undefined, cwd: string | undefined, stdin: 'ignore' | 'pipe'): Promise<ChildProcess> {
  return children.spawn({ name, command, args, env, cwd, stdio: [stdin, 'pipe', 'pipe'] });
}

/** Starts a long-running child and resolves once it is ready (see StartProcessOptions.readyLine). */
export async function startProcess(options: StartProcessOptions): Promise<ChildHandle> {
  const { name } = options;
  const child = await spawnTracked(name, options.command, options.args, options.env, options.cwd, 'ignore');
  const pid = child.pid!;
  const log = new OutputLog();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => log.append('stdout', chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => log.append('stderr', chunk));

  let status: ExitStatus | undefined;
  let resolveExited!: (status: ExitStatus) => void;
  const exited = new Promise<ExitStatus>((resolve) => (resolveExited = resolve));
  let finished = false;
  const exitListeners = new Set<(status: ExitStatus) => void>();
  const finish = (): void => {
    if (finished || status === undefined) return;
    finished = true;
    log.flush();
    for (const listener of exitListeners) listener(status);
    resolveExited(status);
  };
  child.once('exit', (code, signal) => {
    status = { code, signal };
    setTimeout(() => {
      child.stdout?.destroy();
      child.stderr?.destroy();
      finish();
    }, PIPE_CLOSE_GRACE_MS).unref();
  });
  child.once('close', finish);

  const awaitLine = (re: RegExp, timeoutMs: number, since: number): Promise<LineOutcome> => {
    const seen = log.find(re, since);
    if (seen !== undefined) return Promise.resolve({ line: seen });
    if (finished) return Promise.resolve({ exited: status! });
    return new Promise<LineOutcome>((resolve) => {
      const done = (outcome: LineOutcome): void => {
        clearTimeout(timer);
        removeLineListener();
        exitListeners.delete(onExit);
        resolve(outcome);
      };
      const timer = setTimeout(() => done({ timedOut: true }), timeoutMs);
      const removeLineListener = log.onLine((line, lineNumber) => {
        if (lineNumber >= since && line.search(re) !== -1) done({ line });
      });
      const onExit = (s: ExitStatus): void => done({ exited: s });
      exitListeners.add(onExit);
    });
  };

  const signalChild = (signal: NodeJS.Signals): void => {
    if (status === undefined) signalPid(pid, signal);
  };

  const stop = (timeoutMs: number = DEFAULT_STOP_TIMEOUT_MS): Promise<void> => stopGracefully(pid, exited, timeoutMs, () => status === undefined);

  const handle: ChildHandle = {
    name,
    pid,
    output: () => log.text(),
    lineCount: () => log.lineCount(),
    exited,
    exitStatus: () => status,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => signalChild(signal),
    stop,
    async waitForLine(re, timeoutMs, lineOptions) {
      const outcome = await awaitLine(re, timeoutMs, lineOptions?.since ?? 0);
      if ('line' in outcome) return outcome.line;
      if ('exited' in outcome) throw new Error(withTail(`${name} (pid ${pid}) ${describeExit(outcome.exited)} before printing a line matching ${re}`, log));
      throw new Error(withTail(`${name} (pid ${pid}) printed no line matching ${re} within ${timeoutMs}ms`, log));
    },
    [Symbol.asyncDispose]: () => stop(),
  };

  if (options.readyLine !== undefined) {
    const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const outcome = await awaitLine(options.readyLine, readyTimeoutMs, 0);
    if (!('line' in outcome)) {
      signalChild('SIGKILL');
      await exited;
      const why = 'exited' in outcome ? `${describeExit(outcome.exited)} before it was ready` : `was not ready within ${readyTimeoutMs}ms`;
      throw new Error(withTail(`${name} (pid ${pid}) ${why} (waiting for a line matching ${options.readyLine})`, log));
    }
  }
  return handle;
}

export interface RunProcessOptions {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
  /** Deadline, in ms; the process is then SIGKILLed and the call rejects. @default 60000 */
  timeoutMs?: number;
}

export interface RunResult extends ExitStatus {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and collects its output. A non-zero exit is a result, not an error. */
export async function runProcess(options: RunProcessOptions): Promise<RunResult> {
  const { name } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
  const child = await spawnTracked(name, options.command, options.args, options.env, options.cwd, options.input === undefined ? 'ignore' : 'pipe');
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  if (options.input !== undefined) {
    // The child may exit without reading its input: an EPIPE then is not the test's failure.
    child.stdin!.on('error', () => {});
    child.stdin!.end(options.input);
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    signalPid(child.pid!, 'SIGKILL');
  }, timeoutMs);
  const status = await new Promise<ExitStatus>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  clearTimeout(timer);
  if (timedOut) {
    const tail = (s: string): string => (s.length <= ERROR_TAIL_CHARS ? s : `…${s.slice(s.length - ERROR_TAIL_CHARS)}`);
    throw new Error(`${name} (pid ${child.pid}) did not finish within ${timeoutMs}ms and was killed; stdout tail:\n${tail(stdout)}\nstderr tail:\n${tail(stderr)}`);
  }
  return { ...status, stdout, stderr };
}
