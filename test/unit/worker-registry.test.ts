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
import { SealingKeyPair } from '../../core/channel-key.ts';
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

/** A worker process with a channel key pair: answers probes with its public key, registers and heartbeats with it. */
async function keyedWorker(url: string, id: string, options: { answerProbes?: Uint8Array | 'none'; pid?: number } = {}) {
  const pair = new SealingKeyPair();
  const nc = await connect({ servers: url });
  const answer = options.answerProbes ?? pair.publicKey;
  if (answer !== 'none') nc.subscribe(subjects.ping(parseWorkerId(id)), { callback: (_e, m) => void m.respond(answer) });
  await nc.flush();
  const register = () => nc.request(subjects.fromWorker(id, 'register'), codecs.register.encode({ workerId: id, pid: options.pid ?? 4242, host: 'test', channelPublicKey: pair.publicKey }), { timeout: 1_000 });
  const beat = () => nc.publish(subjects.fromWorker(id, 'heartbeat'), codecs.heartbeat.encode({ workerId: id, sentAtUnixMs: Date.now(), jobs: [], runningJobs: [], stateBytes: 0, channelPublicKey: pair.publicKey }));
  const timer = setInterval(beat, HEARTBEAT_MS);
  return {
    publicKey: pair.publicKey,
    register,
    async close() {
      clearInterval(timer);
      await nc.close();
    },
  };
}

test('worker registry - a live id keeps its channel key: a re-registration or heartbeats with another key are refused; an id nobody listens for is not admitted; a restarted worker takes its id over once the old process is found gone', { timeout: 60_000 }, async () => {
  await using nats = await startNatsServer();
  const nc: NatsConnection = await connect({ servers: nats.url });
  const dead: string[] = [];
  const joined: string[] = [];
  const registry = new WorkerRegistry({
    nc,
    heartbeatIntervalMs: HEARTBEAT_MS,
    workerTimeoutMs: TIMEOUT_MS,
    workerProbeMs: PROBE_MS,
    logger: silentLogger,
    onWorkerDead: (w: WorkerRecord) => void dead.push(w.id),
    onWorkerJoined: (w: WorkerRecord) => void joined.push(w.id),
    onWorkerLeaving: () => '',
    onHeartbeat: () => undefined,
  });
  registry.start();
  await nc.flush();
  const closing: Array<{ close(): Promise<void> }> = [];
  try {
    const real = await keyedWorker(nats.url, 'w1');
    closing.push(real);
    await real.register();
    await waitFor(() => registry.get(parseWorkerId('w1'))?.state === 'ALIVE', { timeoutMs: 5_000, what: 'w1 registered' });
    const realKey = Buffer.from(real.publicKey);

    // An impersonator with the same (shared) credentials: registers w1 with a key pair of its own
    // (it does not answer probes: the real w1 does) and heartbeats with it.
    const forger = await keyedWorker(nats.url, 'w1', { answerProbes: 'none', pid: 666 });
    closing.push(forger);
    const w1Seen = Date.now();
    await assert.rejects(forger.register(), /timeout/i, 'the forged registration gets no answer');
    // Its heartbeats go on: they must not count for w1, nor change its key.
    await waitFor(() => Date.now() - w1Seen > PROBE_MS * 2, { timeoutMs: 5_000, what: 'forged heartbeats for a while' });
    const w1 = registry.get(parseWorkerId('w1'))!;
    assert.equal(w1.state, 'ALIVE');
    assert.ok(realKey.equals(Buffer.from(w1.channelPublicKey!)), 'w1 keeps the key it registered');
    assert.equal(w1.pid, 4242);
    assert.deepEqual(dead, []);

    // An id nobody listens for, and one whose listener holds another key: not admitted.
    const ghost = await keyedWorker(nats.url, 'ghost', { answerProbes: 'none' });
    closing.push(ghost);
    await assert.rejects(ghost.register(), /timeout/i);
    const liar = await keyedWorker(nats.url, 'liar', { answerProbes: new Uint8Array(32).fill(7) });
    closing.push(liar);
    await assert.rejects(liar.register(), /timeout/i);
    assert.equal(registry.get(parseWorkerId('ghost')), undefined, 'an id nobody listens for is not admitted');
    assert.equal(registry.get(parseWorkerId('liar')), undefined, 'an id whose listener holds another key is not admitted');
    await forger.close();

    // w1 restarts: the old process is gone, a new one (new key) listens, registers and heartbeats.
    await real.close();
    const restarted = await keyedWorker(nats.url, 'w1', { pid: 4343 });
    closing.push(restarted);
    const restartedAt = Date.now();
    await waitFor(async () => (await restarted.register().then(() => true, () => false)), { timeoutMs: TIMEOUT_MS, intervalMs: 200, what: 'the restarted w1 to be admitted' });
    assert.ok(Date.now() - restartedAt < TIMEOUT_MS, 'found gone by the probe (another key answers), not by the time-out');
    assert.deepEqual(dead, ['w1'], 'the old w1 was declared dead first');
    assert.ok(Buffer.from(restarted.publicKey).equals(Buffer.from(registry.get(parseWorkerId('w1'))!.channelPublicKey!)), 'the new key is taken');
  } finally {
    registry.stop();
    for (const c of closing) await c.close().catch(() => undefined);
    await nc.close();
  }
});
