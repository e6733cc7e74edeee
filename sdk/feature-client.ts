// A feature-serving client for TypeScript services (model serving, APIs): eddy.v2.FeatureService
// with the same shape as the Python client in clients/python. Not part of '@eddy/sdk' (job code,
// which has no runtime dependencies): import it from this file.
//
//   using client = new FeatureClient({ address: '127.0.0.1:7070' });
//   const rows = await client.getFeatures('customer-experience', ['indicators', 'received'], ['e1', 'e2']);
//   // [{ entityId: 'e1', indicators: {...}, received: 12 }, { entityId: 'e2', ... }]
import * as grpc from '@grpc/grpc-js';
import { decodeRpcStatus, loadGrpc } from '../core/proto.ts';
import { fromProtoValue, fromTimestamp, toTimestamp } from '../core/proto-values.ts';
import type { FeatureServiceClient } from '../proto/gen/eddy/v2/FeatureService.ts';
import type { GetFeaturesRequest } from '../proto/gen/eddy/v2/GetFeaturesRequest.ts';
import type { GetFeaturesResponse__Output } from '../proto/gen/eddy/v2/GetFeaturesResponse.ts';

export interface FeatureClientOptions {
  /** host:port of a coordinator (or a load balancer in front of several). */
  address: string;
  /** TLS credentials. @default insecure (loopback) */
  credentials?: grpc.ChannelCredentials;
  /** A reader token (README, "Security"), sent as `authorization: Bearer <token>`. @default none */
  token?: string;
  /** Each call's deadline, retries on UNAVAILABLE included, in ms. @default 1000 */
  timeoutMs?: number;
}

export interface GetFeaturesOptions {
  /** @default 'latest' */
  view?: 'latest' | 'committed';
  /** An as-of read: the values current at this event time (ms since the epoch). */
  asOfUnixMs?: number;
  /** This call's deadline in ms. @default the client's timeoutMs */
  timeoutMs?: number;
}

/** One entity's features: entityId, then each requested feature's value (null: no state). */
export type FeatureRow = { entityId: string } & Record<string, unknown>;

/** One entity's features with each value's event time and checkpoint. */
export type TimedFeatureRow = { entityId: string } & Record<string, { value: unknown; eventTimeUnixMs: number | null; checkpointId: number }>;

export class FeatureClient implements Disposable {
  readonly #client: FeatureServiceClient;
  readonly #metadata: grpc.Metadata;
  readonly #timeoutMs: number;

  constructor(options: FeatureClientOptions) {
    const { FeatureService } = loadGrpc().eddy.v2;
    this.#client = new FeatureService(options.address, options.credentials ?? grpc.credentials.createInsecure());
    this.#metadata = new grpc.Metadata();
    if (options.token) this.#metadata.set('authorization', `Bearer ${options.token}`);
    this.#timeoutMs = options.timeoutMs ?? 1000;
  }

  /** One row per id, in order: `{ entityId, <feature>: value | null, ... }`. */
  async getFeatures(job: string, features: readonly string[], ids: readonly string[], options: GetFeaturesOptions = {}): Promise<FeatureRow[]> {
    const response = await this.getFeaturesResponse(job, features, ids, options);
    return response.rows.map((row) => {
      const out: FeatureRow = { entityId: row.entityId };
      for (const v of row.values) out[v.feature] = v.found ? fromProtoValue(v.value) : null;
      return out;
    });
  }

  /** Like getFeatures, each value with its event time and the checkpoint the answer is from. */
  async getFeaturesWithTimes(job: string, features: readonly string[], ids: readonly string[], options: GetFeaturesOptions = {}): Promise<TimedFeatureRow[]> {
    const response = await this.getFeaturesResponse(job, features, ids, options);
    return response.rows.map((row) => {
      const out = { entityId: row.entityId } as TimedFeatureRow;
      for (const v of row.values) {
        (out as Record<string, unknown>)[v.feature] = { value: v.found ? fromProtoValue(v.value) : null, eventTimeUnixMs: v.eventTime ? fromTimestamp(v.eventTime) : null, checkpointId: Number(v.checkpointId) };
      }
      return out;
    });
  }

  /**
   * The raw response. UNAVAILABLE (a key group moving or recovering, a redeploy) is retried after
   * the server's google.rpc.RetryInfo delay while the deadline allows; DEADLINE_EXCEEDED is not.
   */
  async getFeaturesResponse(job: string, features: readonly string[], ids: readonly string[], options: GetFeaturesOptions = {}): Promise<GetFeaturesResponse__Output> {
    const request: GetFeaturesRequest = {
      jobId: job,
      features: [...features],
      entityIds: [...ids],
      view: options.view === 'committed' ? 'VIEW_COMMITTED' : 'VIEW_LATEST',
      ...(options.asOfUnixMs !== undefined && { asOf: toTimestamp(options.asOfUnixMs) }),
    };
    const deadline = Date.now() + (options.timeoutMs ?? this.#timeoutMs);
    for (;;) {
      try {
        return await new Promise<GetFeaturesResponse__Output>((resolve, reject) =>
          this.#client.GetFeatures(request, this.#metadata, { deadline: Math.max(deadline, Date.now() + 1) }, (err, res) => (err ? reject(err) : resolve(res!))),
        );
      } catch (e) {
        const delayMs = retryDelayMs(e);
        if (delayMs === undefined || Date.now() + delayMs >= deadline) throw e;
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  }

  close(): void {
    this.#client.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The RetryInfo delay of an UNAVAILABLE error, or undefined for any other error. */
function retryDelayMs(e: unknown): number | undefined {
  const err = e as Partial<grpc.ServiceError>;
  if (err.code !== grpc.status.UNAVAILABLE || !err.metadata) return undefined;
  const bytes = err.metadata.get('grpc-status-details-bin')[0];
  if (!(bytes instanceof Buffer)) return undefined;
  for (const d of decodeRpcStatus(bytes).details) if (d.type === 'RetryInfo') return d.retryDelayMs;
  return undefined;
}
