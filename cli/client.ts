// The coordinator's gRPC API as the CLI uses it: promises, a deadline on every call, and gRPC
// statuses turned into one-line CliErrors (cli/errors.ts) where they enter.
import * as grpc from '@grpc/grpc-js';
import { loadGrpc } from '../core/proto.ts';
import { fromGrpcError, isGrpcError } from './errors.ts';
import { startAtToMessage, type StartAtSpec } from '../core/start-at.ts';
import type { JobServiceClient } from '../proto/gen/eddy/v1/JobService.ts';
import type { FeatureServiceClient } from '../proto/gen/eddy/v1/FeatureService.ts';
import type { ClusterServiceClient } from '../proto/gen/eddy/v1/ClusterService.ts';
import type { JobInfo__Output } from '../proto/gen/eddy/v1/JobInfo.ts';
import type { SubmitJobRequest } from '../proto/gen/eddy/v1/SubmitJobRequest.ts';
import type { SubmitJobResponse__Output } from '../proto/gen/eddy/v1/SubmitJobResponse.ts';
import type { FeatureValue__Output } from '../proto/gen/eddy/v1/FeatureValue.ts';
import type { FeatureChange__Output } from '../proto/gen/eddy/v1/FeatureChange.ts';
import type { WorkerInfo__Output } from '../proto/gen/eddy/v1/WorkerInfo.ts';
import type { ClientTls } from '../core/tls.ts';

export type { JobInfo__Output as JobInfo, FeatureValue__Output as FeatureValue, FeatureChange__Output as FeatureChange, WorkerInfo__Output as WorkerInfo };

/** Bundle bytes per SubmitJob message after the header. */
export const SUBMIT_CHUNK_BYTES = 64 * 1024;

export interface EddyClientOptions {
  /** host:port of the coordinator's gRPC server. */
  address: string;
  /** Deadline of every call, in ms. */
  timeoutMs: number;
  /** Bearer token sent with every call (the coordinator's tokens file holds its hash). @default none */
  token?: string;
  /** TLS to the coordinator: the CA to trust and, for mutual TLS, a client certificate. @default plaintext */
  tls?: ClientTls;
}

/** Adds `authorization: Bearer <token>` to every call; works on plaintext (loopback) channels too, unlike call credentials. */
function bearerInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

export type FeatureView = 'latest' | 'committed';

export interface FeatureReadOptions {
  /** As-of read: the value current at this event time (ms since the epoch). */
  asOfUnixMs?: number;
  /** This call's deadline. @default the client's timeoutMs */
  timeoutMs?: number;
}

export interface SubmitRequest {
  manifestJson: string;
  bundleSha256: string;
  code: Uint8Array;
  /** Called after each chunk is handed to gRPC, with the bytes sent so far. */
  onProgress?: (sentBytes: number) => void;
  /** Overrides the client's deadline: a submit waits for the job to be accepted. */
  timeoutMs?: number;
  /** Object-store key of a savepoint's _metadata to start from. */
  fromSavepoint?: string;
  /** Start even if some of the savepoint's state has no stage in the new bundle. */
  allowNonRestoredState?: boolean;
  /** Where sources start, overriding the manifest's startAt (a fresh start only). */
  startAt?: ReadonlyArray<{ source: string; startAt: StartAtSpec }>;
}

export class EddyClient implements Disposable {
  readonly address: string;
  readonly timeoutMs: number;
  readonly #jobs: JobServiceClient;
  readonly #features: FeatureServiceClient;
  readonly #cluster: ClusterServiceClient;

  constructor(options: EddyClientOptions) {
    this.address = options.address;
    this.timeoutMs = options.timeoutMs;
    const pkg = loadGrpc().eddy.v1;
    const { tls } = options;
    const credentials = tls ? grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null) : grpc.credentials.createInsecure();
    const interceptors = options.token ? [bearerInterceptor(options.token)] : [];
    this.#jobs = new pkg.JobService(options.address, credentials, { interceptors });
    // The three services share one channel (same address, same options): one connection.
    const channelOverride = this.#jobs.getChannel();
    this.#features = new pkg.FeatureService(options.address, credentials, { channelOverride, interceptors });
    this.#cluster = new pkg.ClusterService(options.address, credentials, { channelOverride, interceptors });
  }

  listJobs(): Promise<JobInfo__Output[]> {
    return this.#unary<{ jobs: JobInfo__Output[] }>((o, cb) => this.#jobs.ListJobs({}, o, cb)).then((r) => r.jobs);
  }

  getJob(jobId: string): Promise<JobInfo__Output> {
    return this.#unary((o, cb) => this.#jobs.GetJob({ jobId }, o, cb));
  }

  cancelJob(jobId: string): Promise<JobInfo__Output> {
    return this.#unary((o, cb) => this.#jobs.CancelJob({ jobId }, o, cb));
  }

  /** A savepoint waits for a checkpoint to complete: its deadline is at least 60 s. */
  savepoint(jobId: string, stop: boolean): Promise<{ path: string; checkpointId: string; job: JobInfo__Output | null }> {
    return this.#unary((o, cb) => this.#jobs.Savepoint({ jobId, stop }, { ...o, deadline: Date.now() + Math.max(this.timeoutMs, 60_000) }, cb));
  }

  batchGet(jobId: string, feature: string, entityIds: string[], view: FeatureView, options: FeatureReadOptions = {}): Promise<FeatureValue__Output[]> {
    const request = {
      jobId,
      feature,
      entityIds,
      view: view === 'committed' ? ('VIEW_COMMITTED' as const) : ('VIEW_LATEST' as const),
      ...(options.asOfUnixMs !== undefined ? { asOf: { unixMs: options.asOfUnixMs } } : {}),
    };
    return this.#unary<{ values: FeatureValue__Output[] }>((o, cb) => this.#features.BatchGet(request, o, cb), options.timeoutMs).then((r) => r.values);
  }

  get(jobId: string, feature: string, entityId: string, view: FeatureView, options: FeatureReadOptions = {}): Promise<FeatureValue__Output> {
    const request = {
      jobId,
      feature,
      entityId,
      view: view === 'committed' ? ('VIEW_COMMITTED' as const) : ('VIEW_LATEST' as const),
      ...(options.asOfUnixMs !== undefined ? { asOf: { unixMs: options.asOfUnixMs } } : {}),
    };
    return this.#unary<FeatureValue__Output>((o, cb) => this.#features.Get(request, o, cb), options.timeoutMs);
  }

  /**
   * WatchFeatures: calls onChange for the current values (initial) and then every change, until
   * the returned stop() or an error (the promise rejects; a cancel by stop() resolves it).
   */
  watch(jobId: string, feature: string, entityIds: string[], onChange: (change: FeatureChange__Output) => void): { done: Promise<void>; stop(): void } {
    const call = this.#features.WatchFeatures({ jobId, feature, entityIds, view: 'VIEW_LATEST' });
    let stopped = false;
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (change: FeatureChange__Output) => onChange(change));
      call.on('end', () => resolve());
      call.on('error', (err: grpc.ServiceError) => {
        if (stopped && err.code === grpc.status.CANCELLED) resolve();
        else reject(this.#error(err, this.timeoutMs));
      });
    });
    return {
      done,
      stop: () => {
        stopped = true;
        call.cancel();
      },
    };
  }

  listWorkers(): Promise<WorkerInfo__Output[]> {
    return this.#unary<{ workers: WorkerInfo__Output[] }>((o, cb) => this.#cluster.ListWorkers({}, o, cb)).then((r) => r.workers);
  }

  /** Client-streamed upload: the header, then the bundle in 64 KiB chunks, honouring backpressure. */
  async submitJob(request: SubmitRequest): Promise<SubmitJobResponse__Output> {
    const timeoutMs = request.timeoutMs ?? this.timeoutMs;
    let call!: grpc.ClientWritableStream<SubmitJobRequest>;
    const response = new Promise<SubmitJobResponse__Output>((resolve, reject) => {
      call = this.#jobs.SubmitJob({ deadline: Date.now() + timeoutMs }, (err, value) => {
        if (err) reject(this.#error(err, timeoutMs));
        else resolve(value!);
      });
    });
    // The call ends with the callback's error; a write after that must not throw elsewhere.
    call.on('error', () => {});
    const write = (message: SubmitJobRequest): Promise<void> =>
      new Promise((resolve) => {
        if (call.write(message)) resolve();
        else call.once('drain', resolve);
      });
    const { code } = request;
    const upload = (async () => {
      await write({
        header: {
          manifestJson: request.manifestJson,
          bundleSha256: request.bundleSha256,
          bundleSize: code.byteLength,
          fromSavepoint: request.fromSavepoint ?? '',
          allowNonRestoredState: request.allowNonRestoredState ?? false,
          startAt: (request.startAt ?? []).map((s) => startAtToMessage(s.source, s.startAt)),
        },
      });
      for (let offset = 0; offset < code.byteLength; offset += SUBMIT_CHUNK_BYTES) {
        const end = Math.min(offset + SUBMIT_CHUNK_BYTES, code.byteLength);
        await write({ chunk: Buffer.from(code.buffer, code.byteOffset + offset, end - offset) });
        request.onProgress?.(end);
      }
      call.end();
    })();
    // If the server rejects early, the response settles first and the upload is abandoned.
    const [result] = await Promise.all([response, Promise.race([upload, response])]);
    return result;
  }

  close(): void {
    this.#jobs.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #unary<T>(start: (options: grpc.CallOptions, callback: grpc.requestCallback<T>) => unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      start({ deadline: Date.now() + timeoutMs }, (err, value) => {
        if (err) reject(this.#error(err, timeoutMs));
        else resolve(value!);
      });
    });
  }

  #error(err: grpc.ServiceError, timeoutMs: number): Error {
    if (!isGrpcError(err)) return err;
    const connected = this.#jobs.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
    return fromGrpcError(err, this.address, connected, timeoutMs);
  }
}
