// The gRPC front door: JobService, FeatureService, ClusterService and the standard health
// service. Handlers translate to and from proto types and map errors in one place.
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import { loadGrpc, publicPackageDefinition } from '../core/proto.ts';
import { fromTimestamp, toProtoValue, toTimestamp } from '../core/proto-values.ts';
import { InvalidArgumentError, ensureError } from '../core/errors.ts';
import { checkFeatureRequest } from '../core/feature-limits.ts';
import { startAtFromMessage } from '../core/start-at.ts';
import type { Logger } from '../core/logger.ts';
import type { JobInfo } from '../proto/gen/eddy/v1/JobInfo.ts';
import type { SubmitJobRequest__Output } from '../proto/gen/eddy/v1/SubmitJobRequest.ts';
import type { SubmitJobResponse } from '../proto/gen/eddy/v1/SubmitJobResponse.ts';
import { BundleUploads, type BundleUpload } from './bundle-upload.ts';
import type { FeatureValue } from '../proto/gen/eddy/v1/FeatureValue.ts';
import type { FeatureChange } from '../proto/gen/eddy/v1/FeatureChange.ts';
import type { GetFeaturesRequest__Output } from '../proto/gen/eddy/v2/GetFeaturesRequest.ts';
import type { GetFeaturesResponse } from '../proto/gen/eddy/v2/GetFeaturesResponse.ts';
import type { FeatureValue as FeatureValueV2 } from '../proto/gen/eddy/v2/FeatureValue.ts';
import type { GetServingMapRequest__Output } from '../proto/gen/eddy/v2/GetServingMapRequest.ts';
import type { GetServingMapResponse } from '../proto/gen/eddy/v2/GetServingMapResponse.ts';
import type { WorkerId } from '../core/ids.ts';
import type { JobManager } from './job-manager.ts';
import type { Job } from './job.ts';
import type { FeatureAnswer, FeatureQuery, FeatureRouter } from './feature-router.ts';
import type { WorkerRegistry } from './worker-registry.ts';
import { toServiceError } from '../core/grpc-status.ts';
import { authInterceptor, lenientDecoding } from './auth.ts';
import type { Authenticator } from '../core/tokens.ts';

/** Bundle uploads (SubmitJob streams) in progress at once: one more is refused UNAVAILABLE. */
export const MAX_CONCURRENT_UPLOADS = 2;

/** Largest bundle accepted by SubmitJob. */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
const DEFAULT_QUERY_TIMEOUT_MS = 5000;
const MAX_QUERY_TIMEOUT_MS = 60_000;
export { MAX_FEATURES_PER_CALL } from '../core/feature-limits.ts';

export interface GrpcServerDeps {
  jobs: JobManager;
  features: FeatureRouter;
  registry: WorkerRegistry;
  logger: Logger;
  /** Checks every call (coordinator/auth.ts); an authenticator with no tokens lets everyone in. */
  authenticator: Authenticator;
}

type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>;

function unary<Req, Res>(logger: Logger, name: string, fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): Unary<Req, Res> {
  return (call, callback) => {
    fn(call.request, call).then(
      (res) => callback(null, res),
      (e) => {
        const err = toServiceError(e);
        if (err.code === grpc.status.INTERNAL) logger.error({ err: ensureError(e), rpc: name }, 'rpc failed');
        callback(err);
      },
    );
  };
}

/**
 * The absolute deadline of a call: the client's (no margin: a call either tries within its
 * deadline or fails with DEADLINE_EXCEEDED), and DEFAULT_QUERY_TIMEOUT_MS when the client set none
 * (a query never waits forever).
 */
function deadlineAtMs(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  const now = Date.now();
  if (!Number.isFinite(at)) return now + DEFAULT_QUERY_TIMEOUT_MS;
  return Math.min(now + MAX_QUERY_TIMEOUT_MS, Math.max(now + 1, at));
}

export function jobInfo(jobs: JobManager, job: Job): JobInfo {
  return {
    jobId: job.id,
    name: job.manifest.name,
    state: job.state,
    bundleSha256: job.sha256,
    submittedAtUnixMs: job.submittedAtMs,
    epoch: job.epoch,
    stages: jobs.stageStatus(job),
    lastFailure: job.lastFailure ?? null,
    features: job.manifest.stages.flatMap((s) => s.features.map((f) => f.name)),
    checkpoints: checkpointInfo(job),
    restarts: job.restarts,
    jobState: `JOB_STATE_${job.state}`,
  };
}

function checkpointInfo(job: Job) {
  const stats = job.checkpointStats;
  const latest = job.checkpoints[job.checkpoints.length - 1];
  return {
    completed: stats.completed,
    failed: stats.failed,
    lastFailure: stats.lastFailure,
    lastDurationMs: stats.lastDurationMs,
    lastBytes: stats.lastBytes,
    latestId: latest?.id ?? 0,
    inFlightId: stats.inFlight,
    idle: stats.idle,
  };
}

export function createGrpcServer(deps: GrpcServerDeps): { server: grpc.Server; health: HealthImplementation } {
  const { jobs, features, registry, logger } = deps;
  const pkg = loadGrpc().eddy.v1;
  const uploads = new BundleUploads({ maxBytes: MAX_BUNDLE_BYTES, maxConcurrent: MAX_CONCURRENT_UPLOADS });
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
    interceptors: [authInterceptor(deps.authenticator, logger.child({ component: 'grpc-auth' }))],
  });

  server.addService(lenientDecoding(pkg.JobService.service), {
    SubmitJob: (call: grpc.ServerReadableStream<SubmitJobRequest__Output, SubmitJobResponse>, callback: grpc.sendUnaryData<SubmitJobResponse>) => {
      // The bundle is streamed to a staged file (coordinator/bundle-upload.ts): hashed and
      // written chunk by chunk, the stream paused while a write is pending.
      let header: SubmitJobRequest__Output['header'] = null;
      let upload: BundleUpload | undefined;
      /** The write (or the upload's start) in progress; chunks wait for it. */
      let writing: Promise<void> = Promise.resolve();
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        call.destroy();
        void writing.catch(() => undefined).then(() => upload?.discard());
        callback(toServiceError(e));
      };
      const step = (work: () => Promise<void>) => {
        call.pause();
        writing = writing.then(work).then(
          () => {
            if (!failed) call.resume();
          },
          (e: unknown) => fail(e),
        );
      };
      call.on('data', (req: SubmitJobRequest__Output) => {
        if (failed) return;
        if (req.header) {
          if (header) return fail(new InvalidArgumentError('SubmitJob: the header must be sent once, first'));
          header = req.header;
          const declared = Number(header.bundleSize);
          step(async () => {
            upload = await uploads.begin(declared);
          });
        } else if (req.chunk) {
          if (!header) return fail(new InvalidArgumentError('SubmitJob: the first message must be the header'));
          const chunk = req.chunk;
          step(async () => upload!.write(chunk));
        }
      });
      call.on('error', (e) => fail(e));
      call.on('end', () => {
        if (failed) return;
        if (!header) return fail(new InvalidArgumentError('SubmitJob: no header received'));
        const h = header;
        void writing.then(async () => {
          if (failed) return;
          const staged = upload!;
          await staged.finish();
          const declared = Number(h.bundleSize);
          if (declared && declared !== staged.bytes) throw new InvalidArgumentError(`bundle truncated: the header declares ${declared} bytes, ${staged.bytes} arrived`);
          const options = { ...(h.fromSavepoint ? { fromSavepoint: h.fromSavepoint } : {}), allowNonRestoredState: h.allowNonRestoredState, startAt: h.startAt.map(startAtFromMessage) };
          try {
            const job = await jobs.submit(h.manifestJson, h.bundleSha256, staged, options);
            callback(null, { jobId: job.id, bundleSha256: job.sha256 });
          } finally {
            await staged.discard();
          }
        }).catch((e: unknown) => fail(e));
      });
    },
    // A standby holds no jobs: it refuses, naming the leader, rather than answer "none".
    ListJobs: unary(logger, 'ListJobs', async () => (jobs.requireLeader(), { jobs: jobs.list().map((j) => jobInfo(jobs, j)) })),
    GetJob: unary(logger, 'GetJob', async (req: { jobId: string }) => jobInfo(jobs, jobs.get(req.jobId))),
    CancelJob: unary(logger, 'CancelJob', async (req: { jobId: string }) => jobInfo(jobs, await jobs.cancel(req.jobId))),
    Savepoint: unary(logger, 'Savepoint', async (req: { jobId: string; stop: boolean }) => {
      const sp = await jobs.savepoint(req.jobId, req.stop);
      return { path: sp.path, checkpointId: sp.checkpointId, job: jobInfo(jobs, sp.job) };
    }),
  });

  const toValue = (a: FeatureAnswer): FeatureValue => ({
    entityId: a.entityId,
    found: a.found,
    valueJson: a.valueJson,
    keyGroup: a.keyGroup,
    eventTimeUnixMs: a.eventTimeUnixMs ?? 0,
    hasEventTime: a.eventTimeUnixMs !== undefined,
    checkpointId: a.checkpointId,
    uncommitted: a.uncommitted,
    beyondRetention: a.beyondRetention,
  });
  type FeatureRequest = { jobId: string; feature: string; view: string; asOf: { unixMs: string } | null };
  const query = (req: FeatureRequest, entityIds: string[], call: grpc.ServerUnaryCall<unknown, unknown>): FeatureQuery => ({
    jobId: req.jobId,
    feature: req.feature,
    entityIds,
    view: req.view === 'VIEW_COMMITTED' ? 'committed' : 'latest',
    ...(req.asOf ? { asOfUnixMs: Number(req.asOf.unixMs) } : {}),
    deadlineAtMs: deadlineAtMs(call),
  });
  server.addService(lenientDecoding(pkg.FeatureService.service), {
    Get: unary(logger, 'Get', async (req: FeatureRequest & { entityId: string }, call) => {
      const [a] = await features.get(query(req, [req.entityId], call));
      return toValue(a!);
    }),
    BatchGet: unary(logger, 'BatchGet', async (req: FeatureRequest & { entityIds: string[] }, call) => {
      const answers = await features.get(query(req, req.entityIds, call));
      return { values: answers.map(toValue) };
    }),
    WatchFeatures: (call: grpc.ServerWritableStream<{ jobId: string; feature: string; entityIds: string[]; view: string }, FeatureChange>) => {
      const req = call.request;
      let ended = false;
      const end = (e: unknown) => {
        if (ended) return;
        ended = true;
        call.emit('error', toServiceError(e));
      };
      try {
        if (req.view === 'VIEW_COMMITTED') throw new InvalidArgumentError('WatchFeatures serves the LATEST view only');
        const watch = features.watch(
          { jobId: req.jobId, feature: req.feature, entityIds: req.entityIds },
          { send: (change) => !ended && call.write({ value: toValue(change.value), initial: change.initial }), end },
          logger,
        );
        const stop = () => {
          ended = true;
          watch.stop();
        };
        call.on('cancelled', stop);
        call.on('close', stop);
      } catch (e) {
        end(e);
      }
    },
  });

  // v2: several features per call, typed values and times (proto/eddy/v2/feature_service.proto).
  // VALUE_FORMAT_JSON passes the owner's JSON text on as it is: no parse, no Value tree.
  const toValueV2 = (feature: string, a: FeatureAnswer, json: boolean): FeatureValueV2 => ({
    feature,
    found: a.found,
    value: a.found && !json ? toProtoValue(JSON.parse(a.valueJson)) : null,
    ...(a.found && json && { valueJson: a.valueJson }),
    eventTime: a.found && a.eventTimeUnixMs !== undefined ? toTimestamp(a.eventTimeUnixMs) : null,
    keyGroup: a.keyGroup,
    checkpointId: a.checkpointId,
    uncommitted: a.uncommitted,
    beyondRetention: a.beyondRetention,
  });
  server.addService(lenientDecoding(loadGrpc().eddy.v2.FeatureService.service), {
    GetFeatures: unary(logger, 'GetFeatures', async (req: GetFeaturesRequest__Output, call): Promise<GetFeaturesResponse> => {
      checkFeatureRequest(req.features, req.entityIds);
      const deadline = deadlineAtMs(call);
      const view = req.view === 'VIEW_COMMITTED' ? 'committed' : 'latest';
      const asOf = req.asOf ? { asOfUnixMs: fromTimestamp(req.asOf) } : {};
      // Each owning worker is asked once for every feature and id it holds.
      const answers = await features.getMany({ jobId: req.jobId, entityIds: req.entityIds, view, ...asOf, deadlineAtMs: deadline }, req.features);
      const json = req.valueFormat === 'VALUE_FORMAT_JSON';
      return { rows: req.entityIds.map((entityId, i) => ({ entityId, values: req.features.map((feature, j) => toValueV2(feature, answers[j]![i]!, json)) })) };
    }),
    // For clients that read from the owners directly (worker/query/serving-endpoint.ts): each
    // owner with the serving address its heartbeats give ('' when it serves none).
    GetServingMap: unary(logger, 'GetServingMap', async (req: GetServingMapRequest__Output): Promise<GetServingMapResponse> => {
      const map = features.servingMap(req.jobId);
      return {
        jobId: map.jobId,
        epoch: map.epoch,
        maxParallelism: map.maxParallelism,
        owners: map.owners.map((o) => ({ workerId: o.workerId, address: registry.get(o.workerId as WorkerId)?.servingAddress ?? '', keyGroups: o.keyGroups.map((r) => ({ start: r.start, end: r.end })) })),
      };
    }),
  });

  server.addService(lenientDecoding(pkg.ClusterService.service), {
    ListWorkers: unary(logger, 'ListWorkers', async () => (jobs.requireLeader(), {
      workers: registry.all().map((w) => ({
        workerId: w.id,
        state: w.state === 'ALIVE' && w.leaving ? 'LEAVING' : w.state,
        workerState: `WORKER_STATE_${w.state === 'ALIVE' && w.leaving ? 'LEAVING' : w.state}` as const,
        lastHeartbeatUnixMs: w.lastHeartbeatMs,
        registeredAtUnixMs: w.registeredAtMs,
        pid: w.pid,
        host: w.host,
        stateBytes: w.stateBytes,
        assignments: jobs
          .list()
          .filter((j) => (j.state === 'RUNNING' || j.state === 'DEPLOYING') && j.assignment.has(w.id))
          .map((j) => {
            const a = j.assignment.get(w.id)!;
            return { jobId: j.id, keyGroups: a.keyGroups, sourceSplits: a.splits, epoch: j.epoch };
          }),
      })),
    })),
  });

  const health = new HealthImplementation({
    '': 'NOT_SERVING',
    'eddy.v1.JobService': 'NOT_SERVING',
    'eddy.v1.FeatureService': 'NOT_SERVING',
    'eddy.v1.ClusterService': 'NOT_SERVING',
    'eddy.v2.FeatureService': 'NOT_SERVING',
  });
  health.addToServer(server);
  // Server reflection (grpc.reflection.v1 and v1alpha): grpcurl, grpcui and Postman list and call
  // the public services without the .proto files.
  new ReflectionService(publicPackageDefinition()).addToServer(server);
  return { server, health };
}
