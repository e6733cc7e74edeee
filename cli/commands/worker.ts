// eddy worker (hidden): runs the worker role (the actor host) in this process.
import type { Command } from 'commander';
import { createLogger } from '../../core/logger.ts';
import type { ServingOptions } from '../../worker/index.ts';
import { parseWorkerId } from '../../core/ids.ts';
import { defaultWorkerId, parseNonNegativeInt, parsePositiveInt } from '../arguments.ts';
import { UsageError } from '../errors.ts';
import { addGrpcServerSecurityOptions, addNatsAuthOptions, grpcServerSecurityFrom, natsAuthFrom, type GrpcServerCommandOptions, type NatsCommandOptions } from '../security-options.ts';
import { addS3Options, addTelemetryOptions, runRole, startTelemetry, storeOptionsFrom, withTelemetry, type S3CommandOptions, type TelemetryCommandOptions } from '../run-role.ts';

interface WorkerCommandOptions extends S3CommandOptions, TelemetryCommandOptions, NatsCommandOptions, GrpcServerCommandOptions {
  serve?: string;
  serveAdvertise?: string;
  nats: string;
  id?: string;
  data: string;
  store: string;
  maxOverlayBytes?: number;
  liveEntries?: number;
  readCacheEntries?: number;
  rocksdbWriteBufferMb?: number;
  handOverTimeoutMs?: number;
  jobIsolation: string;
  maxCallMs?: number;
  maxHeapMb?: number;
  watermarkLingerMs?: number;
  sourcePullBytes?: number;
  logLevel: string;
}

export function registerWorker(program: Command): void {
  const command = program
    .command('worker', { hidden: true })
    .description('run a worker (tasks, actors, local state, queries)')
    .requiredOption('--nats <urls>', 'NATS server URLs, comma-separated')
    .option('--id <workerId>', 'worker id (default: env EDDY_WORKER_ID, else the host name)')
    .requiredOption('--data <dir>', 'local directory for state and the bundle cache')
    .requiredOption('--store <url|dir>', 'object store for bundles and checkpoints: s3://bucket/prefix, a file:// URL or a directory');
  addGrpcServerSecurityOptions(addNatsAuthOptions(addTelemetryOptions(addS3Options(command))))
    .option('--serve <host:port>', 'serve feature reads of the key groups this worker owns at this address (eddy.v2.FeatureService.GetFeatures, port 0: any free port), with the --grpc-tls-*, --grpc-tokens and --insecure options of the coordinator (default: env EDDY_SERVE, else off)', process.env.EDDY_SERVE)
    .option('--serve-advertise <host:port>', 'the serving address clients are told (default: the bound address)', process.env.EDDY_SERVE_ADVERTISE)
    .option('--max-overlay-bytes <n>', 'changes held in memory before an early checkpoint is asked for (default 268435456)', parsePositiveInt)
    .option('--live-entries <n>', 'decoded state values each job keeps in memory on this worker, its working set (changed values stay until the next checkpoint) (default: env EDDY_LIVE_ENTRIES, else 500000)', parseNonNegativeInt, envInt('EDDY_LIVE_ENTRIES', parseNonNegativeInt))
    .option('--read-cache-entries <n>', 'committed values, as stored, each job keeps in its read cache on this worker; 0: none (default: env EDDY_READ_CACHE_ENTRIES, else 100000)', parseNonNegativeInt, envInt('EDDY_READ_CACHE_ENTRIES', parseNonNegativeInt))
    .option('--rocksdb-write-buffer-mb <n>', 'each job\'s RocksDB memtable size on this worker, of which RocksDB keeps up to two (default: env EDDY_ROCKSDB_WRITE_BUFFER_MB, else 64)', parsePositiveInt, envInt('EDDY_ROCKSDB_WRITE_BUFFER_MB', parsePositiveInt))
    .option('--hand-over-timeout-ms <n>', 'on SIGTERM, how long to wait for the key groups to move to other workers before stopping anyway (default 60000)', parsePositiveInt)
    .option('--job-isolation <mode>', 'where jobs run: "thread" (a worker thread per job, with a watchdog and a heap limit) or "none" (in the worker\'s thread: no watchdog, no heap limit) (default: env EDDY_JOB_ISOLATION, else thread)', process.env.EDDY_JOB_ISOLATION ?? 'thread')
    .option('--max-call-ms <n>', 'isolated jobs: how long user code may hold a job\'s thread, for jobs that set no limits.maxCallMs (default: env EDDY_MAX_CALL_MS, else 30000)', parsePositiveInt, envInt('EDDY_MAX_CALL_MS', parsePositiveInt))
    .option('--max-heap-mb <n>', 'isolated jobs: heap limit of a job\'s thread, for jobs that set no limits.maxHeapMb (default: env EDDY_MAX_HEAP_MB, else 1024)', parsePositiveInt, envInt('EDDY_MAX_HEAP_MB', parsePositiveInt))
    .option('--watermark-linger-ms <n>', 'how long a watermark may wait to ride on a data batch of its channel before it is sent alone; event time downstream lags by up to this on channels without records (0: every watermark alone, at once) (default: env EDDY_WATERMARK_LINGER_MS, else 200)', parseNonNegativeInt, envInt('EDDY_WATERMARK_LINGER_MS', parseNonNegativeInt))
    .option('--source-pull-bytes <n>', 'bytes a job\'s JetStream source splits on this worker may have asked for and not yet read, together; keep well below nats-server\'s max_pending (64 MB by default) (default: env EDDY_SOURCE_PULL_BYTES, else 16777216)', parsePositiveInt, envInt('EDDY_SOURCE_PULL_BYTES', parsePositiveInt))
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (options: WorkerCommandOptions) => {
      let workerId;
      try {
        workerId = parseWorkerId(options.id ?? defaultWorkerId());
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      if (options.jobIsolation !== 'thread' && options.jobIsolation !== 'none') throw new UsageError(`--job-isolation ${options.jobIsolation}: expected "thread" or "none"`);
      const logger = createLogger({ role: 'worker', level: options.logLevel });
      const nats = natsAuthFrom(options);
      let serve: ServingOptions | undefined;
      if (options.serve !== undefined && options.serve !== 'off') {
        const security = grpcServerSecurityFrom(options);
        serve = {
          address: options.serve,
          ...(options.serveAdvertise !== undefined && { advertisedAddress: options.serveAdvertise }),
          ...(security.grpcTls !== undefined && { tls: security.grpcTls }),
          tokens: security.grpcTokens,
          insecure: security.insecure,
        };
      }
      const { startWorker } = await import('../../worker/index.ts');
      await runRole('worker', logger, async () => {
        const telemetry = await startTelemetry('eddy-worker', workerId, options, logger);
        const worker = await startWorker({
          natsServers: options.nats,
          workerId,
          nats,
          dataDir: options.data,
          storeUrl: options.store,
          storeOptions: storeOptionsFrom(options, logger),
          ...(options.maxOverlayBytes ? { maxOverlayBytes: options.maxOverlayBytes } : {}),
          ...(options.liveEntries !== undefined && { liveEntries: options.liveEntries }),
          ...(options.readCacheEntries !== undefined && { readCacheEntries: options.readCacheEntries }),
          ...(options.rocksdbWriteBufferMb !== undefined && { rocksdbWriteBufferMb: options.rocksdbWriteBufferMb }),
          ...(options.handOverTimeoutMs ? { handOverTimeoutMs: options.handOverTimeoutMs } : {}),
          jobIsolation: options.jobIsolation as 'thread' | 'none',
          ...(options.maxCallMs ? { maxCallMs: options.maxCallMs } : {}),
          ...(options.maxHeapMb ? { maxHeapMb: options.maxHeapMb } : {}),
          ...(options.watermarkLingerMs !== undefined && { watermarkLingerMs: options.watermarkLingerMs }),
          ...(options.sourcePullBytes !== undefined && { sourcePullBytes: options.sourcePullBytes }),
          telemetry,
          ...(serve !== undefined && { serve }),
          logger,
        }).catch(async (e: unknown) => {
          await telemetry.close();
          throw e;
        });
        return withTelemetry(worker, telemetry);
      });
    });
}

/**
 * An option's default from the environment, parsed as the option is (undefined when unset). A bad
 * value is a usage error naming the variable: commander reports only what it parses itself.
 */
function envInt(name: string, parse: (value: string) => number): number | undefined {
  const value = process.env[name];
  if (!value) return undefined;
  try {
    return parse(value);
  } catch (e) {
    throw new UsageError(`${name}=${value}: ${(e as Error).message}`);
  }
}
