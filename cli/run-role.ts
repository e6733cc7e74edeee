// How the long-running roles (coordinator, worker) live inside the eddy process: started once,
// closed on SIGTERM/SIGINT, then exit 0. A second signal while closing exits at once.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ensureError } from '../core/errors.ts';
import { CliError, EXIT } from './errors.ts';
import type { Logger } from '../core/logger.ts';
import type { OpenObjectStoreOptions } from '../core/object-store.ts';
import { DEFAULT_METRICS_HOST, Telemetry, otlpTracesUrlFromEnv } from '../core/telemetry.ts';
import { parseNonNegativeInt } from './arguments.ts';

/** What startCoordinator / startWorker resolve to. */
export interface Closeable {
  close(): Promise<void>;
}

/**
 * `eddy up` sets this to its own pid: a role whose supervisor is gone (killed with SIGKILL, so
 * it could not stop its children) closes itself instead of running on unsupervised.
 */
export const SUPERVISOR_PID_ENV = 'EDDY_SUPERVISOR_PID';
const SUPERVISOR_CHECK_INTERVAL_MS = 1_000;

export async function runRole(role: string, logger: Logger, start: () => Promise<Closeable>): Promise<void> {
  let component: Closeable;
  try {
    component = await start();
  } catch (e) {
    const err = ensureError(e);
    logger.error({ err }, `${role} failed to start`);
    // What the start opened before it failed (a NATS connection, a lease, the metrics endpoint)
    // would keep the process alive, doing nothing: it exits once main has printed the error.
    setImmediate(() => process.exit(process.exitCode ?? EXIT.failure)).unref();
    throw new CliError(`${role} failed to start: ${err.message}`, { cause: e });
  }
  let closing = false;
  const shutdown = (reason: string): void => {
    if (closing) {
      logger.warn({ reason }, `${role} exiting without finishing close`);
      process.exit(1);
    }
    closing = true;
    logger.info({ reason }, `${role} stopping`);
    component.close().then(
      () => {
        logger.info(`${role} stopped`);
        process.exit(0);
      },
      (e: unknown) => {
        logger.error({ err: ensureError(e) }, `${role} close failed`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  const supervisorPid = Number(process.env[SUPERVISOR_PID_ENV]);
  if (Number.isSafeInteger(supervisorPid) && supervisorPid > 0) {
    const timer = setInterval(() => {
      // process.ppid is read live: once the supervisor dies this process is re-parented.
      if (process.ppid !== supervisorPid) {
        clearInterval(timer);
        shutdown('supervisor gone');
      }
    }, SUPERVISOR_CHECK_INTERVAL_MS);
    timer.unref();
  }
}

/** The region an s3:// store is in when neither --s3-region nor EDDY_S3_REGION says. */
export const DEFAULT_S3_REGION = 'us-east-1';

/** What --s3-endpoint / --s3-region parse to (commander's camel-cased option names). */
export interface S3CommandOptions {
  s3Endpoint?: string;
  s3Region?: string;
}

function parseS3Endpoint(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidArgumentError('expected an http:// or https:// URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('expected an http:// or https:// URL.');
  return raw;
}

/**
 * --s3-endpoint and --s3-region, shared by the coordinator and worker roles. Credentials are not
 * flags: the AWS SDK's default chain reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or a
 * profile, SSO, instance metadata), which keeps secrets out of process listings.
 */
export function addS3Options(command: Command): Command {
  return command
    .addOption(new Option('--s3-endpoint <url>', 'S3-compatible endpoint for an s3:// store, e.g. http://127.0.0.1:9000 (default: AWS)').env('EDDY_S3_ENDPOINT').argParser(parseS3Endpoint))
    .addOption(new Option('--s3-region <region>', 'region of an s3:// store').env('EDDY_S3_REGION').default(DEFAULT_S3_REGION));
}

/** The object-store options of a role: where S3 is, and the role's logger for the HTTP client's warnings. */
export function storeOptionsFrom(options: S3CommandOptions, logger: Logger): OpenObjectStoreOptions {
  return {
    // An empty EDDY_S3_ENDPOINT / EDDY_S3_REGION (as compose files often leave them) means unset.
    ...(options.s3Endpoint ? { endpoint: options.s3Endpoint } : {}),
    region: options.s3Region || DEFAULT_S3_REGION,
    logger: logger.child({ component: 'object-store' }),
  };
}

/** What --metrics-port / --metrics-host parse to. */
export interface TelemetryCommandOptions {
  metricsPort: number;
  metricsHost: string;
}

function parseMetricsPort(raw: string): number {
  const n = parseNonNegativeInt(raw);
  if (n > 65_535) throw new InvalidArgumentError('expected a port number (1-65535), or 0 for off.');
  return n;
}

/**
 * --metrics-port and --metrics-host, shared by the coordinator and worker roles. Metrics are off
 * unless a port is given: a fixed default port would collide when several roles share a host
 * (`eddy up`, tests), and an endpoint nobody scrapes is work for nothing. Loopback by default:
 * exposing it is a decision (--metrics-host 0.0.0.0 in a container).
 */
export function addTelemetryOptions(command: Command): Command {
  return command
    .addOption(new Option('--metrics-port <port>', 'serve Prometheus metrics at http://<metrics-host>:<port>/metrics (0: off)').env('EDDY_METRICS_PORT').argParser(parseMetricsPort).default(0))
    .addOption(new Option('--metrics-host <host>', 'interface the metrics endpoint binds to').env('EDDY_METRICS_HOST').default(DEFAULT_METRICS_HOST));
}

/**
 * Starts a role's telemetry: metrics from the flags; traces over OTLP/HTTP when the standard
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
export function startTelemetry(serviceName: string, serviceInstanceId: string, options: TelemetryCommandOptions, logger: Logger): Promise<Telemetry> {
  return Telemetry.start({
    serviceName,
    serviceInstanceId,
    metricsPort: options.metricsPort,
    metricsHost: options.metricsHost || DEFAULT_METRICS_HOST,
    otlpTracesUrl: otlpTracesUrlFromEnv(process.env),
    logger: logger.child({ component: 'telemetry' }),
  });
}

/** A role and its telemetry, closed in that order (the role's last spans still get exported). */
export function withTelemetry(component: Closeable, telemetry: Telemetry): Closeable {
  return {
    close: async () => {
      try {
        await component.close();
      } finally {
        await telemetry.close();
      }
    },
  };
}
