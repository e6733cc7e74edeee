// A feature-serving client for TypeScript services (model serving, APIs): eddy.v2.FeatureService
// with the same shape as the Python client in clients/python. Not part of '@eddy/sdk' (job code,
// which has no runtime dependencies): import it from this file.
//
//   using client = new FeatureClient({ address: '127.0.0.1:7070' });
//   const rows = await client.getFeatures('customer-experience', ['indicators', 'received'], ['e1', 'e2']);
//   // [{ entityId: 'e1', indicators: {...}, received: 12 }, { entityId: 'e2', ... }]
//
// With `direct: true` the client keeps each job's serving map (GetServingMap: which worker owns
// which key groups, and its serving address) and sends each owner the ids it owns, as a Redis
// Cluster client does: no coordinator and no NATS hop per read. An owner that does not serve a key
// group at the map's epoch (it moved, a recovery) answers UNAVAILABLE: the client fetches the map
// again and retries within the call's deadline, so it never returns another owner's or stale data.
import * as grpc from '@grpc/grpc-js';
import { decodeRpcStatus, loadGrpc } from '../core/proto.ts';
import { keyGroupForKey } from '../core/key-groups.ts';
import { SERVING_EPOCH_HEADER } from '../core/feature-limits.ts';
import { toTimestamp } from '../core/proto-values.ts';
import { decodeFeaturesResponse } from './feature-response-decoder.ts';
import type { FeatureServiceClient } from '../proto/gen/eddy/v2/FeatureService.ts';
import type { GetFeaturesRequest } from '../proto/gen/eddy/v2/GetFeaturesRequest.ts';
import type { GetFeaturesResponse__Output } from '../proto/gen/eddy/v2/GetFeaturesResponse.ts';
import type { GetServingMapResponse__Output } from '../proto/gen/eddy/v2/GetServingMapResponse.ts';

export interface FeatureClientOptions {
  /** host:port of a coordinator (or a load balancer in front of several). */
  address: string;
  /** TLS credentials. @default insecure (loopback) */
  credentials?: grpc.ChannelCredentials;
  /** A reader token (README, "Security"), sent as `authorization: Bearer <token>`. @default none */
  token?: string;
  /** Each call's deadline, retries on UNAVAILABLE included, in ms. @default 1000 */
  timeoutMs?: number;
  /**
   * Read from the workers that own the ids (their `--serve` endpoints), routed by each job's
   * serving map, instead of through the coordinator. Key groups whose owner serves no endpoint
   * are read through the coordinator. @default false
   */
  direct?: boolean;
  /** TLS credentials for the workers' serving endpoints. @default credentials */
  workerCredentials?: grpc.ChannelCredentials;
}

export interface GetFeaturesOptions {
  /** @default 'latest' */
  view?: 'latest' | 'committed';
  /** An as-of read: the values current at this event time (ms since the epoch). */
  asOfUnixMs?: number;
  /** This call's deadline in ms. @default the client's timeoutMs */
  timeoutMs?: number;
  /**
   * How values travel (eddy.v2 ValueFormat); the rows are the same either way. 'struct' (a
   * google.protobuf.Value) is the cheaper in JavaScript; 'json' (JSON text) serves other languages
   * better, and getFeaturesResponse then gives each value as valueJson. @default 'struct'
   */
  valueFormat?: 'struct' | 'json';
}

/** One entity's features: entityId, then each requested feature's value (null: no state). */
export type FeatureRow = { entityId: string } & Record<string, unknown>;

/** One entity's features with each value's event time and checkpoint. */
export type TimedFeatureRow = { entityId: string } & Record<string, { value: unknown; eventTimeUnixMs: number | null; checkpointId: number }>;

/** A job's serving map as the client routes with it: the owner's address per key group. */
interface Routing {
  epoch: string;
  maxParallelism: number;
  /** Per key group: its owner's serving address, or '' (read it through the coordinator). */
  addressOf: string[];
}

/** First pause before retrying an UNAVAILABLE direct read without a RetryInfo; doubled up to RETRY_MAX_DELAY_MS. */
const RETRY_FIRST_DELAY_MS = 10;
const RETRY_MAX_DELAY_MS = 200;

export class FeatureClient implements Disposable {
  readonly #client: FeatureServiceClient;
  readonly #metadata: grpc.Metadata;
  readonly #timeoutMs: number;
  readonly #direct: boolean;
  readonly #workerCredentials: grpc.ChannelCredentials;
  /** Serving maps by job, fetched once and again after an owner said UNAVAILABLE. */
  readonly #maps = new Map<string, Promise<Routing>>();
  /** One channel per worker serving endpoint. */
  readonly #workers = new Map<string, FeatureServiceClient>();

  constructor(options: FeatureClientOptions) {
    const { FeatureService } = loadGrpc().eddy.v2;
    const credentials = options.credentials ?? grpc.credentials.createInsecure();
    this.#client = new FeatureService(options.address, credentials);
    this.#metadata = new grpc.Metadata();
    if (options.token) this.#metadata.set('authorization', `Bearer ${options.token}`);
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#direct = options.direct ?? false;
    this.#workerCredentials = options.workerCredentials ?? credentials;
  }

  /** One row per id, in order: `{ entityId, <feature>: value | null, ... }`. */
  async getFeatures(job: string, features: readonly string[], ids: readonly string[], options: GetFeaturesOptions = {}): Promise<FeatureRow[]> {
    const rows = await this.#rows(job, features, ids, options, decodeFeaturesResponse);
    return rows.map((row) => {
      const out: FeatureRow = { entityId: row.entityId };
      for (const v of row.values) out[v.feature] = v.value;
      return out;
    });
  }

  /** Like getFeatures, each value with its event time and the checkpoint the answer is from. */
  async getFeaturesWithTimes(job: string, features: readonly string[], ids: readonly string[], options: GetFeaturesOptions = {}): Promise<TimedFeatureRow[]> {
    const rows = await this.#rows(job, features, ids, options, decodeFeaturesResponse);
    return rows.map((row) => {
      const out = { entityId: row.entityId } as TimedFeatureRow;
      for (const v of row.values) (out as Record<string, unknown>)[v.feature] = { value: v.value, eventTimeUnixMs: v.eventTimeUnixMs, checkpointId: v.checkpointId };
      return out;
    });
  }

  /**
   * The raw response. UNAVAILABLE (a key group moving or recovering, a redeploy) is retried after
   * the server's google.rpc.RetryInfo delay while the deadline allows; DEADLINE_EXCEEDED is not.
   */
  async getFeaturesResponse(job: string, features: readonly string[], ids: readonly string[], options: GetFeaturesOptions = {}): Promise<GetFeaturesResponse__Output> {
    return { rows: await this.#rows(job, features, ids, options, (bytes) => GET_FEATURES.responseDeserialize(bytes).rows) };
  }

  /** The response's rows, read by `decode` from its bytes (getFeatures reads them without proto-loader's objects). */
  async #rows<R extends { entityId: string }>(job: string, features: readonly string[], ids: readonly string[], options: GetFeaturesOptions, decode: (bytes: Buffer) => R[]): Promise<R[]> {
    const request: GetFeaturesRequest = {
      jobId: job,
      features: [...features],
      entityIds: [...ids],
      view: options.view === 'committed' ? 'VIEW_COMMITTED' : 'VIEW_LATEST',
      ...(options.asOfUnixMs !== undefined && { asOf: toTimestamp(options.asOfUnixMs) }),
      ...(options.valueFormat === 'json' && { valueFormat: 'VALUE_FORMAT_JSON' as const }),
    };
    const deadline = Date.now() + (options.timeoutMs ?? this.#timeoutMs);
    if (this.#direct) return this.#directly(request, deadline, decode);
    for (;;) {
      try {
        return await call(this.#client, request, this.#metadata, deadline, decode);
      } catch (e) {
        const delayMs = retryDelayMs(e);
        if (delayMs === undefined || Date.now() + delayMs >= deadline) throw e;
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  }

  /**
   * Each owner asked for its ids at its serving endpoint, by the job's serving map. Any
   * UNAVAILABLE (an owner that no longer serves a key group at the map's epoch, a worker gone, the
   * job recovering) drops the map: it is fetched again and the whole call retried while the
   * deadline allows. Only complete answers are returned.
   */
  async #directly<R extends { entityId: string }>(request: GetFeaturesRequest, deadline: number, decode: (bytes: Buffer) => R[]): Promise<R[]> {
    const ids = request.entityIds ?? [];
    let backoffMs = RETRY_FIRST_DELAY_MS;
    for (;;) {
      const routing = this.#routing(request.jobId!, deadline);
      try {
        const map = await routing;
        const parts = new Map<string, string[]>();
        for (const id of new Set(ids)) {
          const address = map.addressOf[keyGroupForKey(id, map.maxParallelism)] ?? '';
          const part = parts.get(address);
          if (part === undefined) parts.set(address, [id]);
          else part.push(id);
        }
        // One owner for every id (and no repeats): its rows are the answer as they are.
        if (parts.size === 1 && ids.length === parts.values().next().value!.length) {
          const [address] = parts.keys();
          return await (address === '' ? call(this.#client, request, this.#metadata, deadline, decode) : call(this.#worker(address!), request, this.#epochMetadata(map), deadline, decode));
        }
        const metadata = this.#epochMetadata(map);
        const answers = await Promise.all(
          [...parts].map(([address, partIds]) =>
            address === '' ? call(this.#client, { ...request, entityIds: partIds }, this.#metadata, deadline, decode) : call(this.#worker(address), { ...request, entityIds: partIds }, metadata, deadline, decode),
          ),
        );
        const byId = new Map<string, R>();
        for (const answer of answers) for (const row of answer) byId.set(row.entityId, row);
        return ids.map((id) => byId.get(id)!);
      } catch (e) {
        if ((e as Partial<grpc.ServiceError>).code !== grpc.status.UNAVAILABLE) throw e;
        // Fetched again on the next attempt (unless another call already did).
        if (this.#maps.get(request.jobId!) === routing) this.#maps.delete(request.jobId!);
        const delayMs = retryDelayMs(e) ?? backoffMs;
        backoffMs = Math.min(backoffMs * 2, RETRY_MAX_DELAY_MS);
        if (Date.now() + delayMs >= deadline) throw e;
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  }

  /** The client's metadata with the serving map's epoch, which an owner checks its key groups against. */
  #epochMetadata(map: Routing): grpc.Metadata {
    const metadata = this.#metadata.clone();
    metadata.set(SERVING_EPOCH_HEADER, map.epoch);
    return metadata;
  }

  /** The job's serving map, fetched from the coordinator when not known. */
  #routing(jobId: string, deadline: number): Promise<Routing> {
    let routing = this.#maps.get(jobId);
    if (routing === undefined) {
      routing = new Promise<GetServingMapResponse__Output>((resolve, reject) =>
        this.#client.GetServingMap({ jobId }, this.#metadata, { deadline: Math.max(deadline, Date.now() + 1) }, (err, res) => (err ? reject(err) : resolve(res!))),
      ).then((map) => {
        const addressOf = new Array<string>(map.maxParallelism).fill('');
        for (const owner of map.owners) for (const r of owner.keyGroups) for (let kg = r.start; kg <= r.end; kg++) addressOf[kg] = owner.address;
        return { epoch: String(map.epoch), maxParallelism: map.maxParallelism, addressOf };
      });
      // A failed fetch is not kept: the next call asks again.
      routing.catch(() => {
        if (this.#maps.get(jobId) === routing) this.#maps.delete(jobId);
      });
      this.#maps.set(jobId, routing);
    }
    return routing;
  }

  #worker(address: string): FeatureServiceClient {
    let client = this.#workers.get(address);
    if (client === undefined) {
      const { FeatureService } = loadGrpc().eddy.v2;
      client = new FeatureService(address, this.#workerCredentials);
      this.#workers.set(address, client);
    }
    return client;
  }

  close(): void {
    this.#client.close();
    for (const client of this.#workers.values()) client.close();
    this.#workers.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** GetFeatures' definition: its path and proto-loader's request and response codecs. */
const GET_FEATURES = loadGrpc().eddy.v2.FeatureService.service.GetFeatures;
const asBytes = (bytes: Buffer): Buffer => bytes;

/** One GetFeatures call, its response's rows read from the bytes by `decode`. */
function call<R>(client: FeatureServiceClient, request: GetFeaturesRequest, metadata: grpc.Metadata, deadline: number, decode: (bytes: Buffer) => R[]): Promise<R[]> {
  return new Promise<R[]>((resolve, reject) =>
    client.makeUnaryRequest(GET_FEATURES.path, GET_FEATURES.requestSerialize, asBytes, request, metadata, { deadline: Math.max(deadline, Date.now() + 1) }, (err, bytes) => {
      if (err) return reject(err);
      try {
        resolve(decode(bytes!));
      } catch (e) {
        reject(e);
      }
    }),
  );
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
