// Errors say what should happen next (STYLE.md §5): terminal (fail the job or skip the
// record), retryable (with a delay), fenced (a stale epoch). gRPC status mapping is in
// core/grpc-status.ts, the one place that knows about gRPC codes.

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'INTERNAL'
  | 'DATA_LOSS';

export interface EddyErrorOptions {
  cause?: unknown;
  /** A stable reason in UPPER_SNAKE_CASE for programs (gRPC: google.rpc.ErrorInfo.reason); default the code. */
  reason?: string;
  /** Facts about this occurrence (gRPC: ErrorInfo.metadata), e.g. job_id, key_group. */
  metadata?: Record<string, string>;
}

export class EddyError extends Error {
  readonly code: ErrorCode;
  readonly reason: string;
  readonly metadata: Readonly<Record<string, string>>;
  constructor(code: ErrorCode, message: string, options?: EddyErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = options?.reason ?? code;
    this.metadata = options?.metadata ?? {};
    this.name = new.target.name;
  }
}

/** Do not retry: the input or the request is wrong. */
export class TerminalError extends EddyError {}

export class NotFoundError extends TerminalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, options);
  }
}

export class InvalidArgumentError extends TerminalError {
  /** The request field at fault, e.g. "entity_ids" (gRPC: google.rpc.BadRequest), when known. */
  readonly field: string | undefined;
  constructor(message: string, options?: EddyErrorOptions & { field?: string }) {
    super('INVALID_ARGUMENT', message, options);
    this.field = options?.field;
  }
}

/** Try again after retryAfterMs. */
export class RetryableError extends EddyError {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options?: EddyErrorOptions) {
    super('UNAVAILABLE', message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Acting on an authority that has passed to somebody else: a coordinator whose leader lease ran
 * out or was taken over, a command of an older leader epoch. Stop acting; never retry as is.
 */
export class FencedError extends EddyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FAILED_PRECONDITION', message, options);
  }
}

/** The gRPC metadata key that names the leading coordinator's address in a NotLeaderError. */
export const LEADER_ADDRESS_METADATA = 'eddy-leader';

/**
 * Asked of a standby coordinator what only the leader does (job and cluster calls): try the
 * leader, at leaderAddress when it is known ('' while none leads), or again shortly.
 */
export class NotLeaderError extends RetryableError {
  readonly leaderAddress: string;
  constructor(leaderAddress: string) {
    super(leaderAddress ? `this coordinator stands by; the leader is at ${leaderAddress}` : 'this coordinator stands by and no leader is known yet', 250);
    this.leaderAddress = leaderAddress;
  }
}

/**
 * The caller's deadline passed before an answer: asking again with the same deadline would fail
 * the same way (unlike RetryableError, which says the service itself is briefly unable).
 */
export class DeadlineExceededError extends EddyError {
  constructor(message: string, options?: EddyErrorOptions) {
    super('DEADLINE_EXCEEDED', message, options);
  }
}

/**
 * A channel lost or reordered a batch (sequence gap) or stopped acknowledging: core NATS drops
 * messages of a consumer it cut off, so this is how a silent loss becomes a loud failure.
 */
export class ChannelBrokenError extends EddyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DATA_LOSS', message, options);
  }
}

/** A user function threw; carries where. */
export class UserFunctionError extends EddyError {
  readonly jobId: string;
  readonly stageId: string;
  readonly operator: string;
  readonly keyGroup: number;
  /**
   * The source record the failing record derives from, set by the task that caught it (core/
   * record-origin.ts): the coordinator counts failures per position and skips a poison record.
   */
  sourcePosition: { split: number; sequence: number } | undefined;
  constructor(where: { jobId: string; stageId: string; operator: string; keyGroup: number }, cause: unknown) {
    const e = ensureError(cause);
    super('FAILED_PRECONDITION', `user function ${where.operator} of stage ${where.stageId} (job ${where.jobId}, key group ${where.keyGroup}) threw: ${e.message}`, { cause: e });
    this.jobId = where.jobId;
    this.stageId = where.stageId;
    this.operator = where.operator;
    this.keyGroup = where.keyGroup;
  }
}

export function ensureError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value));
}

/**
 * A checkpoint object (delta, snapshot or _metadata) failed a check: magic, version, checksum,
 * bounds or stage. The restore must fail loudly; the message names the object.
 */
export class CheckpointCorruptError extends EddyError {
  readonly objectKey: string;
  constructor(objectKey: string, detail: string, options?: { cause?: unknown }) {
    super('DATA_LOSS', `checkpoint object ${objectKey} is corrupt: ${detail}`, options);
    this.objectKey = objectKey;
  }
}

/**
 * What a caller sent, quoted short enough for an error message or a log line: an id of a megabyte
 * must not come back in the reply (README, "Security").
 */
export function excerpt(value: unknown, maxChars = 80): string {
  const text = typeof value === 'string' ? value : String(value);
  const quoted = JSON.stringify(text.length > maxChars ? text.slice(0, maxChars) : text);
  return text.length > maxChars ? `${quoted}… (${text.length} chars)` : quoted;
}
