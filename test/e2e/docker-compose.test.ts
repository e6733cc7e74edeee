// deploy/docker-compose.yml with a real Docker engine: the stack comes up, the customer-experience
// job runs while events are published steadily and workers are scaled 1 → 3 → 2 with
// `--scale worker=N`, and the end result equals an expectation computed here: every entity's
// features (committed state, read over gRPC) and the exactly-once triggers, without gap or
// duplicate. Then the monitoring profile's monitor prints the job and the workers.
//
// Skipped, saying why, when no Docker engine answers (.ci/run starts one: scripts/ensure-docker.sh).
// No image registry is reachable here, so the images are built locally (test/kit/docker.ts): Eddy's
// from deploy/Dockerfile on a base image made from this machine's node, nats from Debian's
// nats-server binary, and — TEST ONLY — s3rver standing in for MinIO through the override
// test/docker/docker-compose.s3rver.yml (MinIO is not in Debian and cannot be pulled). Every
// container uses the host network and listens on 127.0.0.1, on free ports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { EddyClient } from '../../cli/client.ts';
import { REPO_ROOT, checkpointsOrIdle, freePorts, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, CX_JOB, S3RVER_CREDENTIALS } from '../kit/index.ts';
import { buildTestImages, Compose, composeNatsPasswords, describeStack, dockerUnavailable, run, takeDownStack } from '../kit/docker.ts';

const COMPOSE_FILE = join(REPO_ROOT, 'deploy/docker-compose.yml');
const S3RVER_OVERRIDE = join(REPO_ROOT, 'test/docker/docker-compose.s3rver.yml');
/** A cold build (base image, npm ci in the build stage, s3rver's npm install) takes ~1 min here. */
const BUILD_TIMEOUT_MS = 600_000;

const unavailable = await dockerUnavailable();
/** The stack's NATS passwords (deploy/docker-compose.yml requires them). */
const NATS_PASSWORDS = composeNatsPasswords();

test('docker compose - deploy/docker-compose.yml validates (docker-compose config), with the monitoring profile and the test override', { timeout: 60_000 }, async (t) => {
  if (unavailable?.startsWith('docker-compose')) {
    t.diagnostic(`skipped: ${unavailable}`);
    t.skip(unavailable);
    return;
  }
  const env = { ...process.env, ...NATS_PASSWORDS, EDDY_S3RVER_IMAGE: 'unused' };
  await run('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q'], { env, timeoutMs: 30_000 });
  const services = (await run('docker-compose', ['-f', COMPOSE_FILE, 'config', '--services'], { env, timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean).sort();
  assert.deepEqual(services, ['coordinator', 'minio', 'minio-init', 'monitor', 'nats', 'worker']);
  const config = (await run('docker-compose', ['-f', COMPOSE_FILE, 'config'], { env, timeoutMs: 30_000 })).stdout;
  // Only the monitor belongs to a profile (started with --profile monitoring), and it is that one.
  assert.equal(config.match(/profiles:/g)?.length, 1, 'one service with profiles');
  assert.match(config, /\n  monitor:\n(    .*\n)*    profiles:\n    - monitoring\n/, 'monitor is in the monitoring profile');
  // Every service of the shipped file is on the host network, listening on 127.0.0.1 by default.
  assert.equal(config.match(/network_mode: host/g)?.length, 6, 'network_mode: host on all six services');
  assert.doesNotMatch(config, /0\.0\.0\.0/);
  assert.match(config, /image: minio\/minio/, 'the shipped file runs MinIO');
  await run('docker-compose', ['-f', COMPOSE_FILE, '-f', S3RVER_OVERRIDE, 'config', '-q'], { env, timeoutMs: 30_000 });
});

test('docker compose - scale workers 1 → 3 → 2 while the customer-experience job runs: exact features, exactly-once triggers; the monitoring profile', { timeout: 900_000 }, async (t) => {
  if (unavailable !== undefined) {
    t.diagnostic(`skipped: ${unavailable}`);
    t.skip(unavailable);
    return;
  }
  const buildStarted = Date.now();
  const images = await buildTestImages(BUILD_TIMEOUT_MS);
  t.diagnostic(`images ${images.built.length === 0 ? 'cached' : `built (${images.built.join(', ')})`} in ${((Date.now() - buildStarted) / 1000).toFixed(1)} s`);

  const stackOnFreePorts = async () => {
    const [nats, natsMonitor, s3, s3Console, grpc, http] = (await freePorts(6)) as [number, number, number, number, number, number];
    const ports = { nats, natsMonitor, s3, s3Console, grpc, http };
    assert.equal(new Set(Object.values(ports)).size, 6, 'six distinct free ports');
    const compose = new Compose(`eddytest${process.pid}${randomBytes(3).toString('hex')}`, [COMPOSE_FILE, S3RVER_OVERRIDE], {
      ...process.env,
      EDDY_IMAGE: images.eddy,
      EDDY_NATS_IMAGE: images.nats,
      EDDY_S3RVER_IMAGE: images.s3rver,
      EDDY_BIND: '127.0.0.1',
      EDDY_NATS_PORT: String(ports.nats),
      EDDY_NATS_MONITOR_PORT: String(ports.natsMonitor),
      EDDY_MINIO_PORT: String(ports.s3),
      EDDY_MINIO_CONSOLE_PORT: String(ports.s3Console),
      EDDY_GRPC_PORT: String(ports.grpc),
      EDDY_HTTP_PORT: String(ports.http),
      EDDY_S3_ENDPOINT: `http://127.0.0.1:${ports.s3}`,
      EDDY_S3_ACCESS_KEY: S3RVER_CREDENTIALS.accessKeyId,
      EDDY_S3_SECRET_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      EDDY_MONITOR_INTERVAL_S: '2',
      ...NATS_PASSWORDS,
    }, ['monitoring']);
    return { ports, compose };
  };
  // The ports are free when picked, but they are ephemeral ports: before a container binds one,
  // another process may take it for a connection of its own (a nats-server seen exiting at once,
  // in a restart loop, right after a cold image build). Docker reports a container that exits as
  // "unhealthy", and compose gives up on the services that depend on it. So a failed `up` is
  // described in full (every service's state, health probes and logs), taken down, and tried once
  // more on other ports; a second failure fails the test with that description.
  let { ports, compose } = await stackOnFreePorts();
  const up = ['up', '-d', '--no-build', '--scale', 'worker=1'];
  try {
    await compose.run(up);
  } catch (e) {
    t.diagnostic(`up failed, retrying once on other ports: ${(e as Error).message.slice(0, 1_000)}\n${await describeStack(compose)}`);
    await compose.down();
    ({ ports, compose } = await stackOnFreePorts());
    try {
      await compose.run(up);
    } catch (again) {
      const description = await describeStack(compose);
      await compose.down();
      throw new Error(`docker-compose up failed twice; the second time:\n${(again as Error).message.slice(0, 1_000)}\n${description}`, { cause: again });
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'eddy-compose-'));
  const client = new EddyClient({ address: `127.0.0.1:${ports.grpc}`, timeoutMs: 10_000 });
  let nc: NatsConnection | undefined;
  let reader: NatsConnection | undefined;
  let producer: ReturnType<typeof publishSteadily> | undefined;
  const started = Date.now();
  let passed = false;
  const step = (what: string) => t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
  try {
    step('stack up');
    const liveWorkers = async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE');
    // Workers take their ids from their containers: the short container ids.
    const ids = async () => (await compose.containers('worker')).map((id) => id.slice(0, 12)).sort();
    const scaleTo = async (n: number) => {
      await compose.run(['up', '-d', '--no-build', '--no-recreate', '--scale', `worker=${n}`]);
      const expected = await ids();
      assert.equal(expected.length, n, `${n} worker containers`);
      await waitFor(async () => JSON.stringify((await liveWorkers()).map((w) => w.workerId).sort()) === JSON.stringify(expected), { timeoutMs: 60_000, what: `the live workers to be the ${n} worker containers ${expected.join(', ')}` });
      step(`scaled to ${n} workers`);
    };
    await waitFor(async () => (await liveWorkers()).length === 1, { timeoutMs: 60_000, what: 'one live worker' });
    assert.deepEqual((await liveWorkers()).map((w) => w.workerId), await ids(), 'the worker id is its container id');

    // NATS has authentication on: publish as the producer, read results as a client.
    nc = await connect({ servers: `nats://127.0.0.1:${ports.nats}`, user: 'eddy-producer', pass: NATS_PASSWORDS.EDDY_NATS_PRODUCER_PASSWORD, inboxPrefix: '_INBOX.producer' });
    reader = await connect({ servers: `nats://127.0.0.1:${ports.nats}`, user: 'eddy-client', pass: NATS_PASSWORDS.EDDY_NATS_CLIENT_PASSWORD, inboxPrefix: '_INBOX.client' });
    const events = cxEvents(40_000, 1_000);
    await submitCx(client, join(dir, 'cache'));
    // 2,000 events/s: publishing lasts ~20 s, so on a quiet machine the scale steps land while
    // records flow (on a busy one they may come later; the expected result is the same).
    producer = publishSteadily(nc, events, 200);
    step('job submitted, publishing');
    // Each scale step waits for the job to be running and to complete checkpoints first, so that
    // scaling lands on a job that is processing and has state to move.
    // (Or, once the input is processed, for the job to be idle with everything in its latest
    // checkpoint: the stack runs the coordinator's default, no checkpoints while idle.)
    const checkpointsProgress = async (what: string) => {
      await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 90_000, what: `the job running ${what}` });
      await checkpointsOrIdle(client, CX_JOB, { timeoutMs: 90_000 });
    };
    // The coordinator moves key groups to joining workers and away from leaving ones while the
    // job runs: each step ends with the key groups balanced over the live workers.
    const balanced = async (n: number) =>
      waitFor(async () => {
        const counts = (await liveWorkers()).map((w) => w.assignments.find((a) => a.jobId === CX_JOB)?.keyGroups.reduce((k, r) => k + r.end - r.start + 1, 0) ?? 0);
        return counts.length === n && counts.reduce((a, b) => a + b, 0) === 128 && Math.max(...counts) - Math.min(...counts) <= 1;
      }, { timeoutMs: 120_000, what: `key groups balanced over ${n} workers` });
    await checkpointsProgress('before scaling to 3');
    await scaleTo(3);
    await balanced(3);
    step('key groups balanced over 3 workers');
    await checkpointsProgress('before scaling to 2');
    await scaleTo(2);
    await balanced(2);
    step('key groups balanced over 2 workers');
    await producer.done;
    step('all events published');
    await assertCxExactlyOnce(client, reader, cxExpectation(events), 120_000);
    step('exact results checked');
    const job = await client.getJob(CX_JOB);
    assert.equal(job.state, 'RUNNING');
    assert.equal(job.restarts, 0, `scaling moved key groups without a recovery: ${job.lastFailure?.message ?? ''}`);
    const owners = (await liveWorkers()).filter((w) => w.assignments.some((a) => a.jobId === CX_JOB)).map((w) => w.workerId);
    t.diagnostic(`job restarts ${job.restarts}; key groups on ${owners.join(', ')}`);

    // The monitoring profile's monitor prints the jobs and the workers table.
    await compose.run(['up', '-d', '--no-build', '--no-recreate', 'monitor'], 120_000, ['monitoring']);
    await waitFor(async () => {
      const logs = (await compose.run(['logs', '--no-color', 'monitor'], 30_000, ['monitoring'])).stdout;
      return logs.includes(CX_JOB) && /WORKER\s+STATE\s+HEARTBEAT.*KEY GROUPS\s+STATE SIZE\s+EPOCH/.test(logs);
    }, { timeoutMs: 60_000, what: 'the monitor to print the job and the workers', intervalMs: 1_000 });
    step('monitor printed the job and the workers');
    passed = true;
  } catch (e) {
    t.diagnostic(await describeStack(compose));
    throw e;
  } finally {
    producer?.stop();
    client.close();
    await nc?.close();
    await reader?.close();
    await rm(dir, { recursive: true, force: true });
    await takeDownStack(compose, passed, (m) => t.diagnostic(m));
    step('stack down');
  }
});
