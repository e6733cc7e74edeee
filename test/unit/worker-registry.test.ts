// Worker liveness (coordinator/worker-registry.ts) against a real nats-server: a worker whose
// process is gone is dead as soon as it is probed, long before the silence time-out; a worker that
// is only slow to heartbeat (a loaded machine) but still answers the probe stays alive until the
// time-out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { silentLogger } from '../../core/logger.ts';
import { codecs } from '../../core/control.ts';
import { subjects } from '../../core/subjects.ts';
import { parseWorkerId } from '../../core/ids.ts';
import { WorkerRegistry, type WorkerRecord } from '../../coordinator/worker-registry.ts';
import { startNatsServer, waitFor } from '../kit/index.ts';

const HEARTBEAT_MS = 200;
const PROBE_MS = 600;
const TIMEOUT_MS = 5_000;

/** A stand-in for a worker process: registers, heartbeats until told to stop, answers probes. */
async function fakeWorker(url: string, id: string) {
  const nc = await connect({ servers: url });
  nc.subscribe(subjects.ping(parseWorkerId(id)), { callback: (_e, m) => void m.respond(new Uint8Array(0)) });
  await nc.request(subjects.fromWorker(id, 'register'), codecs.register.encode({ workerId: id, pid: 4242, host: 'test' }), { timeout: 2_000 });
  const beat = () => nc.publish(subjects.fromWorker(id, 'heartbeat'), codecs.heartbeat.encode({ workerId: id, sentAtUnixMs: Date.now(), jobs: [], runningJobs: [], stateBytes: 0 }));
  let timer: NodeJS.Timeout | undefined = setInterval(beat, HEARTBEAT_MS);
  return {
    nc,
    stopHeartbeats() {
      clearInterval(timer);
      timer = undefined;
    },
    async close() {
      clearInterval(timer);
      await nc.close();
    },
  };
}

test('worker registry - a worker whose connection is gone is dead at the first probe; one that only stops heartbeating but answers probes stays alive until the time-out', { timeout: 60_000 }, async () => {
  await using nats = await startNatsServer();
  const nc: NatsConnection = await connect({ servers: nats.url });
  const dead = new Map<string, number>();
  const registry = new WorkerRegistry({
    nc,
    heartbeatIntervalMs: HEARTBEAT_MS,
    workerTimeoutMs: TIMEOUT_MS,
    workerProbeMs: PROBE_MS,
    logger: silentLogger,
    onWorkerDead: (w: WorkerRecord) => dead.set(w.id, Date.now()),
    onWorkerJoined: () => undefined,
    onWorkerLeaving: () => '',
    onHeartbeat: () => undefined,
  });
  registry.start();
  await nc.flush();
  const killed = await fakeWorker(nats.url, 'killed');
  const busy = await fakeWorker(nats.url, 'busy');
  try {
    await waitFor(() => registry.alive().length === 2, { timeoutMs: 5_000, what: 'both workers registered' });

    // A SIGKILLed worker: its connection closes, its heartbeats stop.
    const killedAt = Date.now();
    await killed.close();
    // A busy worker: no heartbeat, but its subscription is there.
    const silentSince = Date.now();
    busy.stopHeartbeats();

    await waitFor(() => dead.has('killed'), { timeoutMs: TIMEOUT_MS, what: 'the killed worker to be declared dead' });
    const detectedMs = dead.get('killed')! - killedAt;
    assert.ok(detectedMs < TIMEOUT_MS / 2, `the gone worker was found by the probe in ${detectedMs} ms, not by the ${TIMEOUT_MS} ms time-out`);
    assert.ok(detectedMs >= PROBE_MS - 50, `not before ${PROBE_MS} ms of silence (${detectedMs} ms)`);
    assert.ok(!dead.has('busy'), 'the busy worker, still answering probes, is alive');
    assert.deepEqual(registry.alive().map((w) => w.id), ['busy']);

    await waitFor(() => dead.has('busy'), { timeoutMs: TIMEOUT_MS + 5_000, what: 'the silent worker to time out' });
    const silentMs = dead.get('busy')! - silentSince;
    assert.ok(silentMs >= TIMEOUT_MS - 100, `a worker that answers probes is dead only after ${TIMEOUT_MS} ms of silence (${silentMs} ms)`);
  } finally {
    registry.stop();
    await busy.close();
    await nc.close();
  }
});
