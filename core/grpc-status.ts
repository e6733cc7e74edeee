// The one place that maps Eddy's errors to gRPC status codes.
import { status, type ServiceError } from '@grpc/grpc-js';
import { EddyError, InvalidArgumentError, LEADER_ADDRESS_METADATA, NotLeaderError, RetryableError, ensureError, type ErrorCode } from './errors.ts';
import { Metadata } from '@grpc/grpc-js';
import { encodeRpcStatus, type RpcStatusDetail } from './proto.ts';

/** google.rpc.ErrorInfo.domain of Eddy's errors. */
export const ERROR_DOMAIN = 'eddy.dev';

const CODES: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  UNAVAILABLE: status.UNAVAILABLE,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
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
  // The standard rich error model: a google.rpc.Status in grpc-status-details-bin, with ErrorInfo
  // always, RetryInfo on UNAVAILABLE (moves, recoveries, redeploys) and BadRequest for a bad field.
  const details: RpcStatusDetail[] = [];
  if (err instanceof EddyError) details.push({ type: 'ErrorInfo', reason: err.reason, domain: ERROR_DOMAIN, metadata: { ...err.metadata } });
  if (err instanceof RetryableError) {
    details.push({ type: 'RetryInfo', retryDelayMs: err.retryAfterMs });
    // The same hint as a plain header, for clients that do not decode the status details.
    metadata.set('retry-after-ms', String(err.retryAfterMs));
  }
  if (err instanceof InvalidArgumentError && err.field !== undefined) details.push({ type: 'BadRequest', fieldViolations: [{ field: err.field, description: message }] });
  if (details.length > 0) metadata.set('grpc-status-details-bin', encodeRpcStatus(code, message, details));
  // A standby names the leader: clients with several addresses go there (cli/client.ts).
  if (err instanceof NotLeaderError && err.leaderAddress) metadata.set(LEADER_ADDRESS_METADATA, err.leaderAddress);
  return { code, details: message, message, metadata };
}
