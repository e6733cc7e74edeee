// How the CLI fails: one line on stderr, `eddy: <message>`, and an exit code that says whose
// fault it was (2: the command line, 1: everything else). Never a stack trace: the user acts on
// the message, so the message must say what to do next.
import * as grpc from '@grpc/grpc-js';
import { EddyError } from '../core/errors.ts';

/** Exit codes of the eddy command. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
} as const;

/** A failure the CLI reports as is, with its exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, options?: { exitCode?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = options?.exitCode ?? EXIT.failure;
  }
}

/** A bad command line found after commander parsed it (e.g. a file that is neither .ts nor .js). */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: EXIT.usage });
    this.name = 'UsageError';
  }
}

export function isGrpcError(e: unknown): e is grpc.ServiceError {
  return e instanceof Error && typeof (e as Partial<grpc.ServiceError>).code === 'number' && 'details' in e;
}

/** The one place that turns a gRPC status into what the user reads. */
export function fromGrpcError(e: grpc.ServiceError, address: string, connected: boolean, timeoutMs: number): CliError {
  const unreachable = new CliError(`cannot reach the coordinator at ${address} (is it running? set --addr or EDDY_ADDR)`, { cause: e });
  switch (e.code) {
    case grpc.status.UNAVAILABLE: {
      // The coordinator answered, but the data is not servable right now (FeatureService during a
      // move or recovery): its retry hint, not "unreachable".
      const retryAfter = e.metadata?.get('retry-after-ms')[0];
      if (retryAfter !== undefined) return new CliError(`${e.details || e.message} (retry in ${String(retryAfter)} ms)`, { cause: e });
      // On a live connection UNAVAILABLE without a hint is still the server's answer: say it.
      return connected && e.details ? new CliError(`unavailable, retry: ${e.details}`, { cause: e }) : unreachable;
    }
    case grpc.status.DEADLINE_EXCEEDED:
      // A deadline on a connection that never came up is the same as unreachable; on a live
      // connection the coordinator is there but slow, which calls for a different remedy.
      return connected
        ? new CliError(`the coordinator at ${address} did not answer within ${timeoutMs} ms (raise --timeout-ms)`, { cause: e })
        : unreachable;
    default:
      return new CliError(e.details || e.message, { cause: e });
  }
}

/** One line, whatever the error: newlines folded, no stack. */
export function describeError(e: unknown): { message: string; exitCode: number } {
  if (e instanceof CliError) return { message: oneLine(e.message), exitCode: e.exitCode };
  if (e instanceof EddyError) return { message: oneLine(e.message), exitCode: EXIT.failure };
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    const path = (e as NodeJS.ErrnoException).path;
    if (code === 'ENOENT' && path) return { message: `no such file: ${path}`, exitCode: EXIT.failure };
    if (code === 'EACCES' && path) return { message: `permission denied: ${path}`, exitCode: EXIT.failure };
    return { message: oneLine(e.message || e.name), exitCode: EXIT.failure };
  }
  return { message: oneLine(String(e)), exitCode: EXIT.failure };
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
