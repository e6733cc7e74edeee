// Per-worker NATS users (cli/nats-auth-setup.ts; README, "Security"), with real processes: each
// worker logs in as a user of its own, and the server refuses what worker-1's credentials would
// do as another worker — publish its control messages, subscribe to its control subjects — also
// for a worker that joins later (the config is rewritten and the server reloaded). The coordinator
// admits no id whose control subjects nobody may listen on, and keeps a live worker's channel key
// against a re-registration with another one. A recovery afterwards seals the new epoch's channel
// key to every worker's registered key: the customer-experience job stays exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startCluster, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, CX_JOB, permissionViolations, refusedBy } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { codecs } from '../../core/control.ts';
import { subjects } from '../../core/subjects.ts';
import { SealingKeyPair } from '../../core/channel-key.ts';

test('nats per-worker users - a worker cannot publish or subscribe as another worker, an id without a user is not admitted, a live worker keeps its key; the job stays exact across a recovery', { timeout: 300_000 }, async () => {
  const cluster = await startCluster({ workers: 2, natsAuth: 'per-worker', workerTimeoutMs: 15_000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-per-worker-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const conns: NatsConnection[] = [];
  const open = async (role: 'producer' | 'client' | 'worker', workerId?: string) => {
    const nc = await connect({ servers: cluster.nats.url, ...cluster.nats.login(role, workerId), name: `test-${role}` });
    conns.push(nc);
    return nc;
  };
  let producing: ReturnType<typeof publishSteadily> | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 30_000, what: 'two live workers' });
    await submitCx(client, join(dir, 'cache'));
    await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 60_000, what: 'the job RUNNING' });
    const events = cxEvents(20_000, 500);
    producing = publishSteadily(await open('producer'), events, 1_000);

    // worker-1's credentials, as a job running on worker-1 could use them.
    const w1 = await open('worker', 'worker-1');
    const seen = permissionViolations(w1);
    const heartbeatAs = (id: string) => codecs.heartbeat.encode({ workerId: id, sentAtUnixMs: Date.now(), jobs: [], runningJobs: [], stateBytes: 0 });
    w1.publish(subjects.fromWorker('worker-2', 'heartbeat'), heartbeatAs('worker-2'));
    await refusedBy(seen, 'publish', 'eddy.ctl.from.worker-2.heartbeat');
    w1.publish(subjects.fromWorker('worker-2', 'deregister'), codecs.leave.encode({ workerId: 'worker-2' }));
    await refusedBy(seen, 'publish', 'eddy.ctl.from.worker-2.deregister');
    w1.subscribe('eddy.ctl.worker.worker-2.>');
    await refusedBy(seen, 'subscription', 'eddy.ctl.worker.worker-2.>');
    w1.subscribe('eddy.ctl.worker.*.deploy');
    await refusedBy(seen, 'subscription', 'eddy.ctl.worker.*.deploy');

    // A worker that joins later: after the reload, worker-1's open connection may not publish as it either.
    await cluster.addWorker('worker-3');
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 3, { timeoutMs: 30_000, what: 'worker-3 alive' });
    w1.publish(subjects.fromWorker('worker-3', 'heartbeat'), heartbeatAs('worker-3'));
    await refusedBy(seen, 'publish', 'eddy.ctl.from.worker-3.heartbeat');

    // An id nobody has a user for yet: the server lets worker-1 publish its registration, but no
    // process may listen on its control subjects, so the coordinator does not admit it.
    const register = (id: string, pid: number) =>
      w1.request(subjects.fromWorker(id, 'register'), codecs.register.encode({ workerId: id, pid, host: 'intruder', channelPublicKey: new SealingKeyPair().publicKey }), { timeout: 3_000 });
    await assert.rejects(register('phantom', 666), /timeout/i);
    // worker-1's own id, with a key pair of the intruder's: refused while worker-1 lives.
    await assert.rejects(register('worker-1', 667), /timeout/i);
    const log = () => cluster.coordinator.output();
    await waitFor(() => /worker phantom, but nobody listens on its control subjects/.test(log()), { timeoutMs: 10_000, what: 'the phantom registration refused' });
    await waitFor(() => /live worker worker-1 with another channel key/.test(log()), { timeoutMs: 10_000, what: 'the re-registration refused' });
    assert.equal((await client.listWorkers()).find((w) => w.workerId === 'phantom'), undefined, 'no phantom worker');

    // A recovery: worker-3 is killed once it runs part of the job. The new epoch's channel key is
    // sealed to each worker's registered key; had worker-1's been swapped, it could not open it.
    await waitFor(async () => (await client.listWorkers()).some((w) => w.workerId === 'worker-3' && w.assignments.some((a) => a.jobId === CX_JOB && a.keyGroups.length > 0)), { timeoutMs: 90_000, what: 'key groups moved to worker-3' });
    const before = await client.getJob(CX_JOB);
    cluster.workers.find((w) => w.name === 'worker worker-3')!.kill('SIGKILL');
    await waitFor(async () => {
      const j = await client.getJob(CX_JOB);
      return j.state === 'RUNNING' && Number(j.epoch) > Number(before.epoch);
    }, { timeoutMs: 60_000, what: 'the job recovered into a new epoch' });

    await producing.done;
    await assertCxExactlyOnce(client, await open('client'), cxExpectation(events));
    assert.doesNotMatch(cluster.workers[0]!.output(), /could not open|Unsupported state or unable to authenticate data/, 'worker-1 opened every channel key');
  } finally {
    producing?.stop();
    for (const nc of conns) await nc.close().catch(() => undefined);
    client.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
