// One structured logger (pino) for every process; constant messages, data in fields, child
// loggers bound to jobId / workerId / stage / keyGroup.
import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** Process role, e.g. "coordinator" or "worker". */
  role: string;
  /** pino level. @default "info" */
  level?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino({ base: { role: options.role, pid: process.pid }, level: options.level ?? 'info' });
}

/** A logger that drops everything, for libraries used inside tests and benchmarks. */
export const silentLogger: Logger = pino({ level: 'silent' });
