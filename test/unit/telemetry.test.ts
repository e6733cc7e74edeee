// core/telemetry.ts: options, the Prometheus endpoint a role serves, and spans exported over
// OTLP/HTTP to a real HTTP receiver standing in for a collector.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Telemetry, compileTelemetryOptions, otlpTracesUrlFromEnv } from '../../core/telemetry.ts';
import { silentLogger } from '../../core/logger.ts';
import { CoordinatorMetrics } from '../../coordinator/coordinator-metrics.ts';
import { freePort } from '../kit/index.ts';

test('telemetry - options: metrics off by default on loopback; bad ports and URLs are refused', () => {
  const c = compileTelemetryOptions({ serviceName: 'eddy-test', logger: silentLogger });
  assert.equal(c.metricsPort, 0);
  assert.equal(c.metricsHost, '127.0.0.1');
  assert.equal(c.otlpTracesUrl, '');
  assert.throws(() => compileTelemetryOptions({ serviceName: 'x', metricsPort: 70_000, logger: silentLogger }), /metricsPort 70000/);
  assert.throws(() => compileTelemetryOptions({ serviceName: 'x', metricsPort: -1, logger: silentLogger }), /metricsPort -1/);
  assert.throws(() => compileTelemetryOptions({ serviceName: 'x', otlpTracesUrl: 'collector:4318', logger: silentLogger }), /otlpTracesUrl/);
});

test('telemetry - the OTLP traces URL follows the OpenTelemetry environment variables', () => {
  assert.equal(otlpTracesUrlFromEnv({}), '');
  assert.equal(otlpTracesUrlFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }), 'http://collector:4318/v1/traces');
  assert.equal(otlpTracesUrlFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9999/traces' }), 'http://b:9999/traces');
});

test('telemetry - a role with a metrics port serves its instruments at /metrics and frees the port on close', async () => {
  const port = await freePort();
  const telemetry = await Telemetry.start({ serviceName: 'eddy-test', metricsPort: port, logger: silentLogger });
  try {
    assert.equal(telemetry.metricsUrl, `http://127.0.0.1:${port}/metrics`);
    telemetry.meter.createCounter('eddy_test_things').add(3, { job: 'j' });
    telemetry.meter.createObservableGauge('eddy_test_gauge').addCallback((r) => r.observe(42, { job: 'j' }));
    const text = await (await fetch(telemetry.metricsUrl)).text();
    assert.match(text, /^eddy_test_things_total\{job="j",otel_scope_name="eddy"\} 3$/m);
    assert.match(text, /^eddy_test_gauge\{job="j",otel_scope_name="eddy"\} 42$/m);
    assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
  } finally {
    await telemetry.close();
  }
  await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'nothing listens after close');
  // Off: the no-op meter, no endpoint.
  const off = await Telemetry.start({ serviceName: 'eddy-test', logger: silentLogger });
  assert.equal(off.metricsUrl, '');
  await off.close();
});

test('telemetry - submit, checkpoint and recovery spans reach an OTLP/HTTP receiver', async () => {
  const bodies: Array<{ url: string; body: Buffer }> = [];
  const receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push({ url: req.url ?? '', body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const { port } = receiver.address() as AddressInfo;
  try {
    const telemetry = await Telemetry.start({ serviceName: 'eddy-test', otlpTracesUrl: `http://127.0.0.1:${port}/v1/traces`, logger: silentLogger });
    const metrics = new CoordinatorMetrics(telemetry);
    assert.equal(await metrics.traceSubmit('job-a', async () => 'submitted'), 'submitted');
    await assert.rejects(metrics.traceSubmit('job-b', async () => {
      throw new Error('bundle refused');
    }), /bundle refused/);
    metrics.checkpointCompleted(metrics.checkpointStarted('job-a', 7, 3), 'job-a', 12, 4096);
    metrics.checkpointFailed(metrics.checkpointStarted('job-a', 8, 3), 'job-a', 'store down');
    metrics.recoveryEnded(metrics.recoveryStarted('job-a', 'worker-lost', 'worker w1 stopped heartbeating'), 'job-a', { epoch: 4 });
    await telemetry.close(); // flushes the batch span processor
    const all = Buffer.concat(bodies.map((b) => b.body)).toString('latin1');
    assert.ok(bodies.length >= 1 && bodies.every((b) => b.url === '/v1/traces'), `POSTs to /v1/traces: ${bodies.map((b) => b.url).join(', ')}`);
    for (const name of ['eddy.job.submit', 'eddy.checkpoint', 'eddy.job.recovery', 'job-b', 'bundle refused', 'store down', 'worker-lost']) assert.ok(all.includes(name), `the export carries ${name}`);
  } finally {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
});
