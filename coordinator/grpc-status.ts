// The one place that maps Eddy's errors to gRPC status codes.
import { status, type ServiceError } from '@grpc/grpc-js';
import { EddyError, LEADER_ADDRESS_METADATA, NotLeaderError, RetryableError, ensureError, type ErrorCode } from '../core/errors.ts';
import { Metadata } from '@grpc/grpc-js';

const CODES: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  UNAVAILABLE: status.UNAVAILABLE,
  INTERNAL: status.INTERNAL,
  DATA_LOSS: status.DATA_LOSS,
};

/**
 * Details longer than this are cut: a message may quote what the caller sent, and HTTP/2 trailers
 * past the peer's header-list limit (16 KiB by default) leave the call hanging to its deadline.
 */
const MAX_DETAILS_CHARS = 1024;

export function toServiceError(e: unknown): Partial<ServiceError> {
  const err = ensureError(e);
  const message = err.message.length > MAX_DETAILS_CHARS ? `${err.message.slice(0, MAX_DETAILS_CHARS)}… (cut)` : err.message;
  const code = err instanceof EddyError ? CODES[err.code] : status.INTERNAL;
  const metadata = new Metadata();
  // A retry hint clients can read (FeatureService answers UNAVAILABLE during moves).
  if (err instanceof RetryableError) metadata.set('retry-after-ms', String(err.retryAfterMs));
  // A standby names the leader: clients with several addresses go there (cli/client.ts).
  if (err instanceof NotLeaderError && err.leaderAddress) metadata.set(LEADER_ADDRESS_METADATA, err.leaderAddress);
  return { code, details: message, message, metadata };
}
