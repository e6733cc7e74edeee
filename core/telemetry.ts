// OpenTelemetry for every Eddy process: metrics served on a Prometheus endpoint, traces exported
// over OTLP/HTTP when an endpoint is configured. Each role builds one Telemetry at start and hands
// its meter and tracer to the components it instruments (worker/worker-metrics.ts,
// coordinator/coordinator-metrics.ts). When metrics are off the meter is OpenTelemetry's no-op
// meter: instruments cost a function call that does nothing and observable callbacks never run.
// When traces are off the tracer is the no-op tracer.
//
// Only cli/ and the test kit read the environment (STYLE.md rule 4): OTEL_EXPORTER_OTLP_ENDPOINT
// is turned into `otlpTracesUrl` there.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createNoopMeter, trace, type Meter, type Tracer } from '@opentelemetry/api';
import type { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { InvalidArgumentError, ensureError } from './errors.ts';
import type { Logger } from './logger.ts';

/** Instrumentation scope of every Eddy metric and span. */
export const TELEMETRY_SCOPE = 'eddy';

export interface TelemetryOptions {
  /** service.name of the resource, e.g. "eddy-coordinator" or "eddy-worker". */
  serviceName: string;
  /** service.instance.id: the worker id, or the coordinator's host:port. @default "" */
  serviceInstanceId?: string;
  /**
   * TCP port of the Prometheus endpoint (`GET /metrics`). 0 turns metrics off: the role then uses
   * the no-op meter and pays nothing for its instruments. @default 0
   */
  metricsPort?: number;
  /** Interface the Prometheus endpoint binds to. Loopback unless asked. @default "127.0.0.1" */
  metricsHost?: string;
  /**
   * OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces). Empty: spans are not recorded.
   * cli/ derives it from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT.
   * @default ""
   */
  otlpTracesUrl?: string;
  logger: Logger;
}

export type CompiledTelemetryOptions = Required<TelemetryOptions>;

export const DEFAULT_METRICS_HOST = '127.0.0.1';

export function compileTelemetryOptions(o: TelemetryOptions): CompiledTelemetryOptions {
  const c: CompiledTelemetryOptions = {
    serviceName: o.serviceName,
    serviceInstanceId: o.serviceInstanceId ?? '',
    metricsPort: o.metricsPort ?? 0,
    metricsHost: o.metricsHost ?? DEFAULT_METRICS_HOST,
    otlpTracesUrl: o.otlpTracesUrl ?? '',
    logger: o.logger,
  };
  if (!Number.isInteger(c.metricsPort) || c.metricsPort < 0 || c.metricsPort > 65_535) throw new InvalidArgumentError(`metricsPort ${c.metricsPort} must be an integer from 0 (off) to 65535`);
  if (c.metricsHost === '') throw new InvalidArgumentError('metricsHost must not be empty');
  if (c.otlpTracesUrl !== '') {
    let url: URL;
    try {
      url = new URL(c.otlpTracesUrl);
    } catch (e) {
      throw new InvalidArgumentError(`otlpTracesUrl ${c.otlpTracesUrl} is not a URL`, { cause: e });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`otlpTracesUrl ${c.otlpTracesUrl} must be http:// or https://`);
  }
  return c;
}

/**
 * The OTLP traces URL from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or
 * OTEL_EXPORTER_OTLP_ENDPOINT (a base URL: /v1/traces is appended), as the OpenTelemetry
 * specification defines them; "" when neither is set. For cli/ and the test kit.
 */
export function otlpTracesUrlFromEnv(env: NodeJS.ProcessEnv): string {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!base) return '';
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/** Histogram bucket bounds, in milliseconds, for latencies from 50 µs to 10 s. */
export const LATENCY_BUCKETS_MS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];
/** Histogram bucket bounds for records per batch (channel batches close at 512 by default). */
export const BATCH_RECORDS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
/** Histogram bucket bounds, in bytes, for checkpoint sizes from 1 KiB to 1 GiB. */
export const BYTES_BUCKETS = [1024, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864, 268_435_456, 1_073_741_824];

/**
 * The OpenTelemetry SDK, imported only when metrics or traces are on (Telemetry.start): it is
 * several megabytes of modules that a process without telemetry, or a job's thread
 * (worker/job-thread-main.ts, which builds Telemetry.disabled()), should not load at start.
 */
interface Sdk {
  MeterProvider: typeof import('@opentelemetry/sdk-metrics').MeterProvider;
  PrometheusExporter: typeof import('@opentelemetry/exporter-prometheus').PrometheusExporter;
  NodeTracerProvider: typeof import('@opentelemetry/sdk-trace-node').NodeTracerProvider;
  BatchSpanProcessor: typeof import('@opentelemetry/sdk-trace-node').BatchSpanProcessor;
  OTLPTraceExporter: typeof import('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter;
  resourceFromAttributes: typeof import('@opentelemetry/resources').resourceFromAttributes;
}

async function loadSdk(): Promise<Sdk> {
  const [metrics, prometheus, traceNode, otlp, resources] = await Promise.all([
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/exporter-prometheus'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  return {
    MeterProvider: metrics.MeterProvider,
    PrometheusExporter: prometheus.PrometheusExporter,
    NodeTracerProvider: traceNode.NodeTracerProvider,
    BatchSpanProcessor: traceNode.BatchSpanProcessor,
    OTLPTraceExporter: otlp.OTLPTraceExporter,
    resourceFromAttributes: resources.resourceFromAttributes,
  };
}

export class Telemetry {
  /** Instruments are created on this meter; the no-op meter when metrics are off. */
  readonly meter: Meter;
  /** Spans (submit, checkpoint, recovery); the no-op tracer when traces are off. */
  readonly tracer: Tracer;
  /** True when metrics are served (a metrics port was given). */
  readonly metricsEnabled: boolean;
  /** http://host:port/metrics once the endpoint listens; "" when metrics are off. */
  metricsUrl = '';
  readonly #meterProvider: MeterProvider | undefined;
  readonly #exporter: PrometheusExporter | undefined;
  readonly #server: http.Server | undefined;
  readonly #tracerProvider: NodeTracerProvider | undefined;
  readonly #o: CompiledTelemetryOptions;

  /** `sdk` is required when metrics or traces are on (Telemetry.start loads it). */
  private constructor(o: CompiledTelemetryOptions, sdk: Sdk | undefined) {
    this.#o = o;
    this.metricsEnabled = o.metricsPort > 0;
    if (sdk === undefined) {
      if (o.metricsPort > 0 || o.otlpTracesUrl !== '') throw new Error('Telemetry with metrics or traces needs the OpenTelemetry SDK: use Telemetry.start()');
      this.meter = createNoopMeter();
      this.tracer = trace.getTracer(TELEMETRY_SCOPE);
      return;
    }
    const { MeterProvider, PrometheusExporter, NodeTracerProvider, BatchSpanProcessor, OTLPTraceExporter, resourceFromAttributes } = sdk;
    const resource = resourceFromAttributes({ 'service.name': o.serviceName, ...(o.serviceInstanceId ? { 'service.instance.id': o.serviceInstanceId } : {}) });
    if (o.metricsPort > 0) {
      // The exporter's own server cannot take port 0 and always starts on its own; Eddy serves
      // its handler from a server it binds itself, so a bind error fails the role's start.
      this.#exporter = new PrometheusExporter({ preventServerStart: true });
      this.#meterProvider = new MeterProvider({ resource, readers: [this.#exporter] });
      this.meter = this.#meterProvider.getMeter(TELEMETRY_SCOPE);
      const exporter = this.#exporter;
      this.#server = http.createServer((req, res) => {
        if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) return exporter.getMetricsRequestHandler(req, res);
        res.statusCode = 404;
        res.end('not found: metrics are at /metrics\n');
      });
    } else {
      this.meter = createNoopMeter();
    }
    if (o.otlpTracesUrl !== '') {
      this.#tracerProvider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: o.otlpTracesUrl }))] });
      this.tracer = this.#tracerProvider.getTracer(TELEMETRY_SCOPE);
    } else {
      this.tracer = trace.getTracer(TELEMETRY_SCOPE);
    }
  }

  /** Telemetry that records nothing: the default of components built without one (tests, benchmarks). */
  static disabled(logger: Logger): Telemetry {
    return new Telemetry(compileTelemetryOptions({ serviceName: 'eddy', logger }), undefined);
  }

  /** Builds the providers and, when metrics are on, binds the Prometheus endpoint. */
  static async start(options: TelemetryOptions): Promise<Telemetry> {
    const o = compileTelemetryOptions(options);
    const t = new Telemetry(o, o.metricsPort > 0 || o.otlpTracesUrl !== '' ? await loadSdk() : undefined);
    const server = t.#server;
    if (server) {
      await new Promise<void>((resolve, reject) => {
        const onError = (e: Error) => reject(new InvalidArgumentError(`metrics endpoint cannot listen on ${t.#o.metricsHost}:${t.#o.metricsPort}: ${e.message}`, { cause: e }));
        server.once('error', onError);
        server.listen({ port: t.#o.metricsPort, host: t.#o.metricsHost }, () => {
          server.off('error', onError);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      t.metricsUrl = `http://${host}:${address.port}/metrics`;
      t.#o.logger.info({ metricsUrl: t.metricsUrl }, 'metrics endpoint listening');
    }
    if (t.#tracerProvider) t.#o.logger.info({ otlpTracesUrl: t.#o.otlpTracesUrl }, 'traces exported over OTLP');
    return t;
  }

  /** Flushes pending spans and closes the endpoint. Never throws: telemetry must not block a shutdown. */
  async close(): Promise<void> {
    const server = this.#server;
    await Promise.all([
      server?.listening
        ? new Promise<void>((resolve) => {
            server.close(() => resolve());
            // A scraper's keep-alive connection would hold close() open until it times out.
            server.closeAllConnections();
          })
        : undefined,
      this.#meterProvider?.shutdown(),
      this.#tracerProvider?.shutdown(),
    ].map((p) => Promise.resolve(p).catch((e: unknown) => this.#o.logger.warn({ err: ensureError(e).message }, 'telemetry shutdown failed'))));
  }
}
