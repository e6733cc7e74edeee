// Parsers for command-line values, and the environment defaults. Only cli/ reads the environment
// (STYLE.md §4). A parser throws commander's InvalidArgumentError, which commander reports with
// the option's name and main.ts turns into usage + exit code 2.
import os from 'node:os';
import { InvalidArgumentError } from 'commander';

export const DEFAULT_ADDR = '127.0.0.1:7400';
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
export const DEFAULT_TIMEOUT_MS = 5_000;

/** --addr: the coordinator's gRPC address. */
export function defaultAddr(): string {
  return process.env.EDDY_ADDR || DEFAULT_ADDR;
}

/** --nats: NATS server URLs for commands that talk to NATS directly. */
export function defaultNatsUrl(): string {
  return process.env.EDDY_NATS || DEFAULT_NATS_URL;
}

/** The worker's identity: EDDY_WORKER_ID, else the host name (a container's identity). */
export function defaultWorkerId(): string {
  if (process.env.EDDY_WORKER_ID) return process.env.EDDY_WORKER_ID;
  // A fully qualified host name has dots, which are not allowed in ids (they are subject tokens).
  return os.hostname().split('.')[0] ?? os.hostname();
}

function integer(raw: string, min: number, what: string): number {
  const n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected ${what}.`);
  return n;
}

export const parsePositiveInt = (raw: string): number => integer(raw, 1, 'a positive integer');
export const parseNonNegativeInt = (raw: string): number => integer(raw, 0, 'a non-negative integer');

export function parsePort(raw: string): number {
  const n = integer(raw, 1, 'a port number (1-65535)');
  if (n > 65_535) throw new InvalidArgumentError('expected a port number (1-65535).');
  return n;
}

/** host:port, as gRPC takes it. */
export function parseHostPort(raw: string): string {
  const m = /^([^:\s]+|\[[0-9a-fA-F:]+\]):(\d+)$/.exec(raw.trim());
  if (!m) throw new InvalidArgumentError('expected host:port.');
  parsePort(m[2]!);
  return raw.trim();
}

/** --http: host:port, or "off". */
/** --addr: one host:port, or several comma-separated (standby coordinators), each checked. */
export function parseHostPorts(raw: string): string {
  return raw
    .split(',')
    .map((a) => parseHostPort(a))
    .join(',');
}

export function parseHostPortOrOff(raw: string): string {
  return raw.trim() === 'off' ? '' : parseHostPort(raw);
}
