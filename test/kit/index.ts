// Eddy's test kit: real dependencies (nats-server, Eddy's own processes) as disposables, and
// waitFor instead of sleeps (STYLE.md §11).
export { freePort, freePorts } from './free-port.ts';
export { waitFor, type WaitForOptions } from './wait-for.ts';
export { permissionViolations, refusedBy, type PermissionViolation } from './permission-violations.ts';
export { startNatsServer, natsServerBinary, type NatsServer, type NatsServerOptions } from './nats-server.ts';
export {
  startProcess,
  runProcess,
  DEFAULT_READY_TIMEOUT_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  DEFAULT_RUN_TIMEOUT_MS,
  type ChildHandle,
  type ExitStatus,
  type RunProcessOptions,
  type RunResult,
  type StartProcessOptions,
  type WaitForLineOptions,
} from './processes.ts';
export {
  REPO_ROOT,
  CLI_MAIN,
  cliArgs,
  startCoordinator,
  startWorker,
  startCluster,
  s3Store,
  runCli,
  waitForWorkers,
  type Cluster,
  type ClusterOptions,
  type CoordinatorHandle,
  type EddyProcess,
  type CoordinatorOptions,
  type RunCliOptions,
  type WorkerOptions,
} from './eddy.ts';
export { readStream, streamCount, type StoredMessage } from './streams.ts';
export { startS3Server, S3RVER_CREDENTIALS, S3RVER_REGION, type S3Server, type S3ServerOptions } from './s3-server.ts';
export * from './cx-fixture.ts';
export { soakEvents, soakOnly, soakSize, soakTimeoutMs } from './soak.ts';
export { clusterStore, readPartFiles, listPartFiles, type PartFile } from './part-files.ts';
export { makeTestPki, type TestPki, type KeyPair } from './certificates.ts';
export { checkpointsOrIdle, committedSourcePositions } from './checkpoints.ts';
export { publishMessagesSteadily } from './steady-publisher.ts';
export { publishCxResiliently } from './resilient-publisher.ts';
