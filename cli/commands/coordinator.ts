// eddy coordinator (hidden): runs the coordinator role in this process. `eddy up`, the test kit
// and the container image start it this way.
import type { Command } from 'commander';
import { createLogger } from '../../core/logger.ts';
import { parseHostPort, parseHostPortOrOff, parsePositiveInt } from '../arguments.ts';
import { addGrpcServerSecurityOptions, addNatsAuthOptions, grpcServerSecurityFrom, natsAuthFrom, type GrpcServerCommandOptions, type NatsCommandOptions } from '../security-options.ts';
import { addS3Options, addTelemetryOptions, runRole, startTelemetry, storeOptionsFrom, withTelemetry, type S3CommandOptions, type TelemetryCommandOptions } from '../run-role.ts';

interface CoordinatorCommandOptions extends S3CommandOptions, TelemetryCommandOptions, NatsCommandOptions, GrpcServerCommandOptions {
  nats: string;
  grpc: string;
  http: string;
  store: string;
  workerTimeoutMs?: number;
  workerProbeMs?: number;
  checkpointIntervalMs?: number;
  checkpointWhenIdle?: boolean;
  checkpointTimeoutMs?: number;
  maxDeltaChain?: number;
  maxMovingKeyGroups?: number;
  leaderLeaseMs?: number;
  advertise?: string;
  natsReplicas?: number;
  logLevel: string;
}

export function registerCoordinator(program: Command): void {
  const command = program
    .command('coordinator', { hidden: true })
    .description('run a coordinator (membership, assignment, job lifecycle, gRPC API)')
    .requiredOption('--nats <urls>', 'NATS server URLs, comma-separated')
    .option('--grpc <host:port>', 'gRPC listen address', parseHostPort, '127.0.0.1:7400')
    .option('--http <host:port|off>', 'dashboard listen address (HTTP; loopback clients only for now), or off', parseHostPortOrOff, '127.0.0.1:7480')
    .requiredOption('--store <url|dir>', 'object store for bundles and checkpoints: s3://bucket/prefix, a file:// URL or a directory');
  addGrpcServerSecurityOptions(addNatsAuthOptions(addTelemetryOptions(addS3Options(command))))
    .option('--worker-timeout-ms <n>', 'a worker silent this long is dead, even with its connection open (default 10000)', parsePositiveInt)
    .option('--worker-probe-ms <n>', 'a worker silent this long is probed; "no responders" (its process is gone) makes it dead at once (default 2000)', parsePositiveInt)
    .option('--checkpoint-interval-ms <n>', 'how often a checkpoint starts (default 1000)', parsePositiveInt)
    .option('--checkpoint-when-idle', 'take a periodic checkpoint every interval even while a job is idle; by default none is taken while nothing was read, emitted or dead-lettered since the latest one')
    .option('--skip-idle-checkpoints', 'no periodic checkpoint while a job is idle: the default (kept for scripts that pass it)')
    .option('--checkpoint-timeout-ms <n>', 'a checkpoint not completed this long after it started is aborted (default 10000)', parsePositiveInt)
    .option('--max-delta-chain <n>', 'deltas a key group chains before it is re-materialized as a full snapshot (default 16)', parsePositiveInt)
    .option('--max-moving-key-groups <n>', 'key groups one rebalancing checkpoint moves when workers join or leave (default 32)', parsePositiveInt)
    .option('--leader-lease-ms <n>', 'with several coordinators: a leader silent this long is replaced by a standby (default 1500)', parsePositiveInt)
    .option('--advertise <host:port>', 'the gRPC address standbys send clients to while this coordinator leads (default: --grpc)', parseHostPort)
    .option('--nats-replicas <n>', 'replicas of the KV bucket and the streams Eddy creates (default: 3 on a NATS cluster of three or more servers, else 1)', parsePositiveInt)
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (options: CoordinatorCommandOptions) => {
      const logger = createLogger({ role: 'coordinator', level: options.logLevel });
      const security = grpcServerSecurityFrom(options);
      const nats = natsAuthFrom(options);
      // Imported here so that client commands do not load the coordinator.
      const { startCoordinator } = await import('../../coordinator/index.ts');
      await runRole('coordinator', logger, async () => {
        const telemetry = await startTelemetry('eddy-coordinator', options.grpc, options, logger);
        const coordinator = await startCoordinator({
          natsServers: options.nats,
          grpcAddress: options.grpc,
          httpAddress: options.http,
          ...security,
          nats,
          storeUrl: options.store,
          storeOptions: storeOptionsFrom(options, logger),
          ...(options.workerTimeoutMs !== undefined ? { workerTimeoutMs: options.workerTimeoutMs } : {}),
          ...(options.workerProbeMs !== undefined ? { workerProbeMs: options.workerProbeMs } : {}),
          ...(options.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: options.checkpointIntervalMs } : {}),
          ...(options.checkpointWhenIdle === true ? { skipIdleCheckpoints: false } : {}),
          ...(options.checkpointTimeoutMs !== undefined ? { checkpointTimeoutMs: options.checkpointTimeoutMs } : {}),
          ...(options.maxDeltaChain !== undefined ? { maxDeltaChain: options.maxDeltaChain } : {}),
          ...(options.maxMovingKeyGroups !== undefined ? { maxMovingKeyGroups: options.maxMovingKeyGroups } : {}),
          ...(options.leaderLeaseMs !== undefined ? { leaderLeaseMs: options.leaderLeaseMs } : {}),
          ...(options.advertise !== undefined ? { advertisedAddress: options.advertise } : {}),
          ...(options.natsReplicas !== undefined ? { natsReplicas: options.natsReplicas } : {}),
          // Fault injection for the takeover tests (CoordinatorOptions.holdJobCreateMs).
          ...(process.env.EDDY_TEST_HOLD_JOB_CREATE_MS ? { holdJobCreateMs: parsePositiveInt(process.env.EDDY_TEST_HOLD_JOB_CREATE_MS) } : {}),
          telemetry,
          logger,
        }).catch(async (e: unknown) => {
          await telemetry.close();
          throw e;
        });
        return withTelemetry(coordinator, telemetry);
      });
    });
}
