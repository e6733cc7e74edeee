// Where a source starts reading on a job's first start (replay from a point in time,
// docs/ARCHITECTURE.md "Sources and sinks"). The coordinator resolves it once, at the first deploy,
// into a stream sequence per split; from then on the checkpoints' positions rule, so a restore
// never applies it again.
import { InvalidArgumentError } from './errors.ts';

/** The manifest's (and the submit override's) form: plain data, validated by startAtProblem. */
export type StartAtSpec =
  /** Every split reads its messages from this stream sequence on (>= 1). */
  | { kind: 'sequence'; sequence: number }
  /** Every split reads the messages JetStream stored at or after this time (ms since the epoch). */
  | { kind: 'time'; timeUnixMs: number }
  /** From the first message in the stream: what a source without startAt does. */
  | { kind: 'earliest' }
  /** Only messages stored after the job's first start. */
  | { kind: 'latest' };

/** What a job author writes in SourceOptions.startAt (sdk/options.ts). */
export type StartAtOption = { sequence: number } | { time: number | Date | string } | 'earliest' | 'latest';

/** Why `value` is not a valid StartAtSpec, or undefined when it is. */
export function startAtProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return `startAt ${JSON.stringify(value)} is not an object`;
  const v = value as Record<string, unknown>;
  switch (v.kind) {
    case 'sequence':
      return Number.isSafeInteger(v.sequence) && (v.sequence as number) >= 1 ? undefined : `startAt sequence ${JSON.stringify(v.sequence)} is not an integer >= 1`;
    case 'time':
      return Number.isSafeInteger(v.timeUnixMs) && (v.timeUnixMs as number) >= 0 ? undefined : `startAt timeUnixMs ${JSON.stringify(v.timeUnixMs)} is not an integer >= 0 (ms since the epoch)`;
    case 'earliest':
    case 'latest':
      return undefined;
    default:
      return `startAt kind ${JSON.stringify(v.kind)} is not "sequence", "time", "earliest" or "latest"`;
  }
}

/** The job author's option as a spec; throws TypeError naming the problem (a build-time error). */
export function compileStartAt(option: StartAtOption, where: string): StartAtSpec {
  let spec: StartAtSpec;
  if (option === 'earliest' || option === 'latest') spec = { kind: option };
  else if (typeof option === 'object' && option !== null && 'sequence' in option) spec = { kind: 'sequence', sequence: option.sequence };
  else if (typeof option === 'object' && option !== null && 'time' in option) {
    const t = option.time;
    let ms: number;
    try {
      ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? parseIsoTime(t) : t;
    } catch (e) {
      throw new TypeError(`${where}: startAt time ${(e as Error).message}`);
    }
    spec = { kind: 'time', timeUnixMs: ms };
  } else {
    throw new TypeError(`${where}: startAt must be { sequence }, { time }, "earliest" or "latest", got ${JSON.stringify(option)}`);
  }
  const problem = startAtProblem(spec);
  if (problem !== undefined) throw new TypeError(`${where}: ${problem}`);
  return spec;
}

/**
 * `<source>=<sequence|ISO time|earliest|latest>`, as `eddy submit --start-at` takes it. A bare
 * integer is a stream sequence; a time must be an ISO 8601 date-time (an integer of ms would be
 * ambiguous with a sequence). Throws InvalidArgumentError.
 */
export function parseStartAtOverride(raw: string): { source: string; startAt: StartAtSpec } {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`--start-at ${JSON.stringify(raw)}: expected <source>=<sequence|ISO time|earliest|latest>`);
  const source = raw.slice(0, eq).trim();
  const value = raw.slice(eq + 1).trim();
  return { source, startAt: parseStartAtValue(value, `--start-at ${source}`) };
}

function parseStartAtValue(value: string, where: string): StartAtSpec {
  if (value === 'earliest' || value === 'latest') return { kind: value };
  if (/^\d+$/.test(value)) {
    const sequence = Number(value);
    if (!Number.isSafeInteger(sequence) || sequence < 1) throw new InvalidArgumentError(`${where}: sequence ${value} is not an integer >= 1`);
    return { kind: 'sequence', sequence };
  }
  try {
    return { kind: 'time', timeUnixMs: parseIsoTime(value) };
  } catch {
    throw new InvalidArgumentError(`${where}: ${JSON.stringify(value)} is neither a stream sequence (an integer >= 1), an ISO 8601 time (2026-11-22T10:00:00Z), "earliest" nor "latest"`);
  }
}

// Date.parse accepts much (and reads a zone-less date-time as local time): insist on a date-time
// with an explicit zone, so one string names one instant wherever it is parsed.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function parseIsoTime(value: string): number {
  const ms = ISO_TIME.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms < 0) throw new TypeError(`${JSON.stringify(value)} is not an ISO 8601 date-time with a zone (e.g. 2026-11-22T10:00:00Z)`);
  return ms;
}

/** For logs and errors. */
export function describeStartAt(spec: StartAtSpec): string {
  switch (spec.kind) {
    case 'sequence':
      return `sequence ${spec.sequence}`;
    case 'time':
      return `time ${new Date(spec.timeUnixMs).toISOString()}`;
    default:
      return spec.kind;
  }
}

/** The gRPC SourceStartAt message (proto/eddy/v1/jobs.proto), as the loader gives and takes it. */
export interface StartAtMessage {
  source: string;
  position?: 'sequence' | 'timeUnixMs' | 'earliest' | 'latest';
  sequence?: string | number;
  timeUnixMs?: string | number;
  earliest?: boolean;
  latest?: boolean;
}

export function startAtToMessage(source: string, spec: StartAtSpec): StartAtMessage {
  switch (spec.kind) {
    case 'sequence':
      return { source, sequence: spec.sequence };
    case 'time':
      return { source, timeUnixMs: spec.timeUnixMs };
    case 'earliest':
      return { source, earliest: true };
    case 'latest':
      return { source, latest: true };
  }
}

/** Reads a SourceStartAt from the wire; throws InvalidArgumentError naming the problem. */
export function startAtFromMessage(m: StartAtMessage): { source: string; startAt: StartAtSpec } {
  let spec: StartAtSpec;
  switch (m.position) {
    case 'sequence':
      spec = { kind: 'sequence', sequence: Number(m.sequence) };
      break;
    case 'timeUnixMs':
      spec = { kind: 'time', timeUnixMs: Number(m.timeUnixMs) };
      break;
    case 'earliest':
      spec = { kind: 'earliest' };
      break;
    case 'latest':
      spec = { kind: 'latest' };
      break;
    default:
      throw new InvalidArgumentError(`start_at of source ${JSON.stringify(m.source)} has no position (sequence, time_unix_ms, earliest or latest)`);
  }
  const problem = startAtProblem(spec);
  if (problem !== undefined) throw new InvalidArgumentError(`start_at of source ${JSON.stringify(m.source)}: ${problem}`);
  return { source: m.source, startAt: spec };
}
