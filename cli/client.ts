// The coordinator's gRPC API as the CLI uses it: promises, a deadline on every call, and gRPC
// statuses turned into one-line CliErrors (cli/errors.ts) where they enter.
//
// With several coordinators (one leads, the others stand by: docs/ARCHITECTURE.md, "Standby
// coordinators") the client takes their addresses, "a,b,c", and fails over within each call's
// deadline: a standby's refusal names the leader, which is tried next; an unreachable coordinator
// passes the call to the next address. A call is repeated only when it surely was not carried out
// (refused by a standby, or never delivered); a deadline on a live connection is not retried.
import * as grpc from '@grpc/grpc-js';
import { loadGrpc } from '../core/proto.ts';
import { fromGrpcError, isGrpcError } from './errors.ts';
import { LEADER_ADDRESS_METADATA } from '../core/errors.ts';
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
  /** host:port of the coordinator's gRPC server; several, comma-separated, for standby coordinators. */
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

/** The three services of one coordinator, over one channel. */
interface Connection {
  address: string;
  jobs: JobServiceClient;
  features: FeatureServiceClient;
  cluster: ClusterServiceClient;
}

/** Pause before going round the addresses again (no leader yet: a takeover is under way). */
const FAILOVER_PAUSE_MS = 100;

export class EddyClient implements Disposable {
  /** The coordinator the client talks to now (the leader, once found). */
  get address(): string {
    return this.#current.address;
  }
  readonly timeoutMs: number;
  readonly #options: EddyClientOptions;
  readonly #addresses: string[];
  readonly #connections = new Map<string, Connection>();
  #current: Connection;
  /** Calls that went to another coordinator than first asked (failovers and redirects), for tests and figures. */
  failovers = 0;

  constructor(options: EddyClientOptions) {
    this.#options = options;
    this.#addresses = options.address.split(',').map((a) => a.trim()).filter((a) => a !== '');
    if (this.#addresses.length === 0) throw new Error('EddyClient: no coordinator address');
    this.timeoutMs = options.timeoutMs;
    this.#current = this.#connect(this.#addresses[0]!);
  }

  #connect(address: string): Connection {
    const known = this.#connections.get(address);
    if (known) return known;
    const pkg = loadGrpc().eddy.v1;
    const { tls } = this.#options;
    const credentials = tls ? grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null) : grpc.credentials.createInsecure();
    const interceptors = this.#options.token ? [bearerInterceptor(this.#options.token)] : [];
    const jobs = new pkg.JobService(address, credentials, { interceptors }) as JobServiceClient;
    // The three services share one channel (same address, same options): one connection.
    const channelOverride = jobs.getChannel();
    const connection: Connection = {
      address,
      jobs,
      features: new pkg.FeatureService(address, credentials, { channelOverride, interceptors }) as FeatureServiceClient,
      cluster: new pkg.ClusterService(address, credentials, { channelOverride, interceptors }) as ClusterServiceClient,
    };
    this.#connections.set(address, connection);
    return connection;
  }

  get #jobs(): JobServiceClient {
    return this.#current.jobs;
  }

  get #features(): FeatureServiceClient {
    return this.#current.features;
  }

  get #cluster(): ClusterServiceClient {
    return this.#current.cluster;
  }

  /**
   * Where to go after a failed call, or undefined to give up: the leader a standby named, else
   * (a standby that knows no leader yet, a coordinator unreachable) the next address.
   */
  #failover(err: grpc.ServiceError, connected: boolean): Connection | undefined {
    if (err.code !== grpc.status.UNAVAILABLE) return undefined;
    const leader = err.metadata?.get(LEADER_ADDRESS_METADATA)[0];
    if (typeof leader === 'string' && leader !== '' && leader !== this.#current.address) {
      // Learnt, not given: it joins the round, so that the client can come back from it.
      if (!this.#addresses.includes(leader)) this.#addresses.push(leader);
      return this.#connect(leader);
    }
    const standingBy = err.metadata?.get('retry-after-ms')[0] !== undefined && /stands by/.test(err.details);
    // UNAVAILABLE with an answer that is not a standby's (FeatureService during a move): the caller's to retry.
    if (connected && !standingBy && err.details) return undefined;
    if (this.#addresses.length < 2 && !standingBy) return undefined;
    return this.#connect(this.#nextAddress());
  }

  #nextAddress(): string {
    return this.#addresses[(this.#addresses.indexOf(this.#current.address) + 1) % this.#addresses.length]!;
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

  /**
   * Client-streamed upload: the header, then the bundle in 64 KiB chunks, honouring backpressure.
   * Sent again to the leader when a standby refused it, or to the next address when unreachable.
   */
  async submitJob(request: SubmitRequest): Promise<SubmitJobResponse__Output> {
    const deadline = Date.now() + (request.timeoutMs ?? this.timeoutMs);
    for (let tried = 1; ; tried++) {
      const attempt = this.#current;
      try {
        return await this.#submitOnce(request, deadline - Date.now());
      } catch (e) {
        const err = (e as { cause?: unknown }).cause;
        const connected = attempt.jobs.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
        const next = isGrpcError(err) ? this.#failover(err, connected) : undefined;
        if (next === undefined || Date.now() >= deadline || tried > 2 * this.#addresses.length) throw e;
        this.#current = next;
        this.failovers++;
      }
    }
  }

  async #submitOnce(request: SubmitRequest, timeoutMs: number): Promise<SubmitJobResponse__Output> {
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
    for (const c of this.#connections.values()) c.jobs.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * One call, failed over within its deadline (see the top of this file). `start` reads the
   * current connection's services each attempt.
   */
  async #unary<T>(start: (options: grpc.CallOptions, callback: grpc.requestCallback<T>) => unknown, timeoutMs = this.timeoutMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let tried = 0;
    for (;;) {
      const attempt = this.#current;
      const result = await new Promise<{ value: T } | { err: grpc.ServiceError }>((resolve) => {
        start({ deadline }, (err, value) => resolve(err ? { err } : { value: value! }));
      });
      if ('value' in result) return result.value;
      const { err } = result;
      const connected = attempt.jobs.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
      const next = isGrpcError(err) ? this.#failover(err, connected) : undefined;
      if (next === undefined || Date.now() >= deadline) {
        // A coordinator that let a call run out its deadline may be paused or cut off (a deposed
        // leader): the next call starts at the next address. This one is not repeated.
        if (err.code === grpc.status.DEADLINE_EXCEEDED && this.#addresses.length > 1) this.#current = this.#connect(this.#nextAddress());
        throw this.#error(err, timeoutMs, attempt, connected);
      }
      this.#current = next;
      this.failovers++;
      // Once round every address: a takeover is under way; give it a moment.
      if (++tried % this.#addresses.length === 0) await new Promise((r) => setTimeout(r, Math.min(FAILOVER_PAUSE_MS, Math.max(0, deadline - Date.now()))));
    }
  }

  #error(err: grpc.ServiceError, timeoutMs: number, attempt = this.#current, connected?: boolean): Error {
    if (!isGrpcError(err)) return err;
    const ready = connected ?? attempt.jobs.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
    return fromGrpcError(err, attempt.address, ready, timeoutMs);
  }
}
