// A worker's feature-serving endpoint: eddy.v2.FeatureService.GetFeatures answered by the owner of
// the ids' key groups, with no coordinator and no NATS on the way (docs/ARCHITECTURE.md,
// "Queries"). A client that keeps a job's serving map (GetServingMap on any coordinator;
// sdk/feature-client.ts) sends each owner the ids it owns, as Redis Cluster clients do.
//
// Security is the coordinator's: TLS (optionally mutual) and bearer tokens, checked for every call
// by the one interceptor (core/grpc-auth.ts); GetFeatures needs the reader role, every other
// method is closed (admin), health checks are public.
//
// Never wrong or stale data: the job's query responder answers only for key groups this worker
// serves right now, at the epoch the client names ("eddy-serving-epoch"). Anything else (a key
// group moved away or moving, a recovery, a job not here) fails the whole call UNAVAILABLE with
// ErrorInfo reason KEY_GROUP_NOT_SERVED and a RetryInfo: the client fetches the map again and
// retries. A call is never answered in part.
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { loadGrpc } from '../../core/proto.ts';
import { fromTimestamp } from '../../core/proto-values.ts';
import { authInterceptor, lenientDecoding, serverCredentials } from '../../core/grpc-auth.ts';
import { toServiceError } from '../../core/grpc-status.ts';
import { NOT_SERVED_REASON, SERVING_EPOCH_HEADER, checkFeatureRequest } from '../../core/feature-limits.ts';
import { EddyError, NotFoundError, RetryableError, ensureError, excerpt } from '../../core/errors.ts';
import { hostOf } from '../../core/tls.ts';
import { Authenticator, type Role } from '../../core/tokens.ts';
import type { QueryReply } from '../../core/control.ts';
import type { Logger } from '../../core/logger.ts';
import type { ServerTls } from '../../core/tls.ts';
import type { TokenEntry } from '../../core/tokens.ts';
import type { GetFeaturesRequest__Output } from '../../proto/gen/eddy/v2/GetFeaturesRequest.ts';
import type { HostedJob } from '../hosted-job.ts';

/** The RetryInfo of NOT_SERVED_REASON: a refreshed map usually names the new owner at once. */
const NOT_SERVED_RETRY_MS = 20;

/** What each method needs; a method not listed needs admin (closed to readers). */
const SERVING_ROLES: Readonly<Record<string, Role | 'public'>> = {
  '/eddy.v2.FeatureService/GetFeatures': 'reader',
  '/grpc.health.v1.Health/Check': 'public',
  '/grpc.health.v1.Health/Watch': 'public',
};

export interface ServingEndpointOptions {
  /** host:port to listen on; port 0 takes a free one. */
  address: string;
  /** The address to advertise. @default the bound address (the host name for a wildcard host) */
  advertisedAddress?: string;
  tls?: ServerTls;
  tokens: readonly TokenEntry[];
  workerId: string;
  /** The job this worker runs under that id, if any (worker/worker.ts). */
  job(jobId: string): HostedJob | undefined;
  logger: Logger;
}

export class ServingEndpoint implements AsyncDisposable {
  readonly #server: grpc.Server;
  readonly #health: HealthImplementation;
  /** host:port clients are told (GetServingMap). */
  readonly address: string;

  private constructor(server: grpc.Server, health: HealthImplementation, address: string) {
    this.#server = server;
    this.#health = health;
    this.address = address;
  }

  static async start(o: ServingEndpointOptions): Promise<ServingEndpoint> {
    const authenticator = new Authenticator({ tokens: [...o.tokens], certificates: o.tls?.clientCa !== undefined });
    const server = new grpc.Server({ interceptors: [authInterceptor(authenticator, o.logger.child({ component: 'serving-auth' }), SERVING_ROLES)] });
    server.addService(encodedResponses(lenientDecoding(loadGrpc().eddy.v2.FeatureService.service)), {
      GetFeatures: (call: grpc.ServerUnaryCall<GetFeaturesRequest__Output, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        getFeatures(o, call).then(
          (res) => callback(null, res),
          (e: unknown) => {
            const err = toServiceError(e);
            if (err.code === grpc.status.INTERNAL) o.logger.error({ err: ensureError(e), rpc: 'GetFeatures' }, 'direct read failed');
            callback(err);
          },
        );
      },
    });
    const health = new HealthImplementation({ '': 'SERVING', 'eddy.v2.FeatureService': 'SERVING' });
    health.addToServer(server);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync(o.address, serverCredentials(o.tls), (err, p) => (err ? reject(err) : resolve(p))));
    const host = hostOf(o.address);
    const advertised = o.advertisedAddress ?? `${host === '0.0.0.0' || host === '::' ? (await import('node:os')).hostname() : o.address.replace(/:\d+$/, '')}:${port}`;
    o.logger.info({ address: o.address, advertised, tls: o.tls !== undefined, mutualTls: o.tls?.clientCa !== undefined, tokens: o.tokens.length }, 'serving feature reads');
    return new ServingEndpoint(server, health, advertised);
  }

  async close(): Promise<void> {
    this.#health.setStatus('', 'NOT_SERVING');
    // In-flight calls finish (their jobs answer or say UNAVAILABLE); a stuck one is cut after a while.
    const forced = setTimeout(() => this.#server.forceShutdown(), 2_000);
    await new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
    clearTimeout(forced);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * The response's bytes, encoded by the job's query responder in its thread (QueryResponder.serve,
 * feature-response-encoder.ts): this thread decodes the request and passes the bytes on, no value
 * crosses the thread boundary as an object.
 */
/** The service with GetFeatures' responses sent as they come: bytes already encoded (getFeatures). */
function encodedResponses<T extends grpc.ServiceDefinition>(definition: T): T {
  const method = definition.GetFeatures as grpc.MethodDefinition<unknown, unknown> | undefined;
  if (method === undefined) throw new Error('the FeatureService definition has no GetFeatures');
  return { ...definition, GetFeatures: { ...method, responseSerialize: (bytes: Buffer) => bytes } };
}

async function getFeatures(o: ServingEndpointOptions, call: grpc.ServerUnaryCall<GetFeaturesRequest__Output, Buffer>): Promise<Buffer> {
  const req = call.request;
  checkFeatureRequest(req.features, req.entityIds);
  const job = o.job(req.jobId);
  if (job === undefined) throw notServed(`job ${excerpt(req.jobId)} has no key groups on worker ${o.workerId}`);
  const epochHeader = call.metadata.get(SERVING_EPOCH_HEADER)[0];
  const epoch = typeof epochHeader === 'string' && /^\d+$/.test(epochHeader) ? Number(epochHeader) : 0;
  const { reply, response } = await job.serve({
    feature: req.features[0]!,
    // Always the list: every value then names its feature.
    features: req.features,
    // In the request's order, repeats included: the responder reads each id once, answers each row.
    entityIds: req.entityIds,
    view: req.view === 'VIEW_COMMITTED' ? 1 : 0,
    // 0 (a client without the map): any epoch; the responder still answers only what it serves now.
    epoch,
    asOfUnixMs: req.asOf ? fromTimestamp(req.asOf) : 0,
    hasAsOf: req.asOf !== null,
    owner: o.workerId,
    valueJson: req.valueFormat === 'VALUE_FORMAT_JSON',
  });
  throwReplyError(reply);
  if (response === undefined) throw new EddyError('INTERNAL', `worker ${o.workerId} gave no answer for job ${excerpt(req.jobId)}`);
  return Buffer.from(response.buffer, response.byteOffset, response.byteLength);
}

/** The responder's error, or its unavailable key groups, as the call's error; nothing when it answered all. */
function throwReplyError(reply: QueryReply): void {
  if ((reply.unavailableKeyGroups?.length ?? 0) > 0) throw notServed(reply.unavailableReason || `key groups ${reply.unavailableKeyGroups!.join(', ')} are not served here`, reply.unavailableKeyGroups);
  if (reply.error === '') return;
  const colon = reply.error.indexOf(':');
  const code = colon < 0 ? reply.error : reply.error.slice(0, colon);
  const message = colon < 0 ? reply.error : reply.error.slice(colon + 1);
  if (code === 'UNAVAILABLE') throw notServed(message);
  if (code === 'NOT_FOUND') throw new NotFoundError(message);
  if (code === 'FAILED_PRECONDITION') throw new EddyError('FAILED_PRECONDITION', message);
  throw new EddyError('INTERNAL', message || reply.error);
}

function notServed(message: string, keyGroups?: readonly number[]): RetryableError {
  return new RetryableError(`${message}: fetch the serving map again (GetServingMap) and retry`, NOT_SERVED_RETRY_MS, {
    reason: NOT_SERVED_REASON,
    ...(keyGroups !== undefined && { metadata: { keyGroups: keyGroups.slice(0, 16).join(',') } }),
  });
}
