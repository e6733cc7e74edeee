// NATS with authentication and Eddy's permission set (deploy/nats-permissions.conf), with real
// processes: what each role is refused by the server, and what the control plane refuses of a
// holder of worker credentials, while the customer-experience job runs and stays exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { startCluster, waitFor, cxEvents, cxExpectation, submitCx, publishSteadily, assertCxExactlyOnce, clusterStore, CX_JOB, permissionViolations, refusedBy } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { codecs, leaderEpochHeaders, type CheckpointAck } from '../../core/control.ts';
import { subjects } from '../../core/subjects.ts';

test('nats security - each role is held to its permissions; forged control messages are rejected and logged; the job stays exact', { timeout: 240_000 }, async () => {
  // A generous worker timeout: on a loaded machine a missed heartbeat restarts the job, and a
  // forged acknowledgement must meet a checkpoint in flight to be judged, so a checkpoint every
  // interval, also once the input is processed.
  const cluster = await startCluster({ workers: 2, natsAuth: true, workerTimeoutMs: 15_000, skipIdleCheckpoints: false });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-nats-sec-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const url = cluster.nats.url;
  const conns: NatsConnection[] = [];
  const open = async (role: 'producer' | 'client' | 'worker' | 'coordinator') => {
    const nc = await connect({ servers: url, ...cluster.nats.login(role), name: `test-${role}` });
    conns.push(nc);
    return nc;
  };
  let producing: ReturnType<typeof publishSteadily> | undefined;
  try {
    // Without credentials nobody gets in.
    await assert.rejects(connect({ servers: url, reconnect: false, timeout: 3_000 }), /authorization violation/i);

    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 30_000, what: 'two live workers' });
    await submitCx(client, join(dir, 'cache'));
    await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 60_000, what: 'the job RUNNING' });
    // The job directory standbys route reads with is written and watched under the coordinator's permissions.
    const kv = await new Kvm(await open('coordinator')).open('eddy-cluster');
    await waitFor(async () => (await kv.get(`directory.${CX_JOB}`))?.operation === 'PUT', { timeoutMs: 10_000, what: "the job's directory entry" });
    assert.doesNotMatch(cluster.coordinator.output(), /job directory (publish failed|watch ended)/);
    const events = cxEvents(20_000, 500);
    const producerNc = await open('producer');
    producing = publishSteadily(producerNc, events, 1_000);

    // A producer publishes records and nothing else: no control subjects, no queries, no
    // shuffle channels, no KV bucket.
    const producer = await open('producer');
    const pv = permissionViolations(producer);
    producer.publish(subjects.cancel('worker-1' as never), codecs.cancel.encode({ jobId: CX_JOB }));
    await refusedBy(pv, 'publish', 'eddy.ctl.worker.worker-1.cancel');
    producer.subscribe('eddy.q.>');
    await refusedBy(pv, 'subscription', 'eddy.q.>');
    producer.subscribe(`eddy.${CX_JOB}.indicator-state.0`);
    await refusedBy(pv, 'subscription', `eddy.${CX_JOB}.indicator-state.0`);
    await assert.rejects(async () => {
      const kv = await new Kvm(producer).open('eddy-cluster');
      await kv.get(`jobs.${CX_JOB}`);
    });
    await waitFor(() => pv.some((v) => v.operation === 'publish' && v.subject.includes('KV_eddy-cluster')), { timeoutMs: 10_000, what: 'the KV read refused' });

    // A client that reads results cannot read queries or channels either.
    const reader = await open('client');
    const rv = permissionViolations(reader);
    reader.subscribe('eddy.>');
    await refusedBy(rv, 'subscription', 'eddy.>');

    // Worker credentials: control subjects of workers are the coordinator's alone.
    const intruder = await open('worker');
    const iv = permissionViolations(intruder);
    intruder.publish(subjects.cancel('worker-1' as never), codecs.cancel.encode({ jobId: CX_JOB }));
    await refusedBy(iv, 'publish', 'eddy.ctl.worker.worker-1.cancel');
    intruder.publish(subjects.deploy('worker-1' as never), new Uint8Array(0));
    await refusedBy(iv, 'publish', 'eddy.ctl.worker.worker-1.deploy');

    // A deploy with a path-like job id is refused by the worker itself, whoever sends it.
    const admin = await open('coordinator');
    const deploy = codecs.deploy.encode({
      jobId: '../../../etc',
      manifestJson: '{}',
      bundleSha256: 'f'.repeat(64),
      bundleKey: 'jobs/x/bundles/y.js',
      epoch: 99,
      keyGroups: [],
      sourceSplits: [],
      workers: [],
      restore: null,
      startPositions: [],
      checkpointIntervalMs: 1000,
    });
    // Without the leader epoch the worker refuses it as a deposed leader's command; with the
    // current epoch (forgeable by whoever holds these credentials) it is checked and refused.
    const unfenced = codecs.ack.decode((await admin.request(subjects.deploy('worker-1' as never), deploy, { timeout: 10_000 })).data);
    assert.equal(unfenced.ok, false);
    assert.match(unfenced.error, /deploy of leader epoch 0 refused/);
    const answer = codecs.ack.decode((await admin.request(subjects.deploy('worker-1' as never), deploy, { timeout: 10_000, headers: leaderEpochHeaders(1) })).data);
    assert.equal(answer.ok, false);
    assert.match(answer.error, /invalid job id/);

    // A spoofed query reply: answered before the owner, and refused by the router.
    // A spoofed query reply: a value for every entity asked for, before the owner answers.
    const spoofer = intruder.subscribe(`eddy.q.${CX_JOB}.*`, {
      callback: (_e, msg) => {
        const { entityIds } = codecs.queryRequest.decode(msg.data);
        const values = entityIds.map((entityId) => ({ entityId, found: true, valueJson: '666', eventTimeUnixMs: 0, hasEventTime: false, uncommitted: false, beyondRetention: false }));
        msg.respond(codecs.queryReply.encode({ values, error: '', checkpointId: 1, workerId: 'intruder', epoch: 1 }));
      },
    });

    // Forged control messages on the worker subjects the permissions allow: a failure report and
    // a checkpoint acknowledgement from a worker that is not assigned, one whose body names
    // another worker than its subject, and acknowledgements "from" worker-1 that claim a split
    // position of 10,000,000 and commit the job's bundle to exports/ as a files-sink part.
    const job = await client.getJob(CX_JOB);
    const epoch = Number(job.epoch);
    intruder.publish(subjects.fromWorker('intruder', 'failure'), codecs.failure.encode({ jobId: CX_JOB, workerId: 'intruder', stageId: 'x', keyGroup: 0, message: 'FORGED FAILURE', stack: '', atUnixMs: Date.now(), userCode: true, epoch }));
    const forgedAck = (workerId: string, checkpointId: number, epoch: number, parts: CheckpointAck['parts'], sources: CheckpointAck['sources'] = []) =>
      codecs.checkpointAck.encode({ jobId: CX_JOB, checkpointId, epoch, workerId, sources, parts, error: '' });
    const bundleKey = `jobs/${CX_JOB}/bundles/${job.bundleSha256}.js`;
    // Each kind of forgery until the coordinator has judged it against a checkpoint in flight.
    const judged = (what: RegExp) => what.test(cluster.coordinator.output());
    await waitFor(
      async () => {
        const now = await client.getJob(CX_JOB);
        const [e, latest] = [Number(now.epoch), Number(now.checkpoints?.latestId ?? 0)];
        for (let id = latest + 1; id <= latest + 2; id++) {
          intruder.publish(subjects.fromWorker('intruder', 'checkpoint-ack'), forgedAck('intruder', id, e, []));
          intruder.publish(subjects.fromWorker('worker-2', 'checkpoint-ack'), forgedAck('worker-1', id, e, []));
          intruder.publish(subjects.fromWorker('worker-1', 'checkpoint-ack'), forgedAck('worker-1', id, e, [], [{ split: 999, nextSequence: 10_000_000 }]));
          intruder.publish(
            subjects.fromWorker('worker-1', 'checkpoint-ack'),
            forgedAck('worker-1', id, e, [{ checkpointId: id, deltas: [], bases: [], outputKey: '', outputCount: 0, files: [{ stagedKey: bundleKey, finalKey: 'exports/bundle.js', records: 1 }] }]),
          );
        }
        return judged(/intruder.* is not assigned to the job/) && judged(/reports a position of split 999/) && judged(/stages a part file outside the job/);
      },
      { timeoutMs: 60_000, intervalMs: 150, what: 'every kind of forged acknowledgement judged against a checkpoint in flight' },
    );
    const coordinatorLog = () => cluster.coordinator.output();
    await waitFor(() => /"msg":"forged control message rejected"/.test(coordinatorLog()), { timeoutMs: 10_000, what: 'forged control messages in the coordinator log' });
    assert.match(coordinatorLog(), /worker \\"intruder\\" reports a failure of job customer-experience, which it is not assigned to/);
    assert.match(coordinatorLog(), /claims to come from worker \\"worker-1\\"/);
    const worker1 = cluster.workers.find((w) => w.name === 'worker worker-1')!;
    await waitFor(() => /"err":"deploy of an invalid job id[^\n]*"msg":"forged control message rejected"/.test(worker1.output()), { timeoutMs: 10_000, what: 'the refused deploy in worker-1\'s log' });

    await producing.done;
    const results = await open('client');
    await assertCxExactlyOnce(client, results, cxExpectation(events));
    assert.match(coordinatorLog(), /a reply for key group \d+ of job customer-experience from \\"intruder\\"/);
    spoofer.unsubscribe();

    const after = await client.getJob(CX_JOB);
    assert.equal(after.state, 'RUNNING');
    // The forged failure restarted nothing (a restart for a real reason, a checkpoint timing out
    // on a loaded machine, may happen and must not change the results above).
    assert.doesNotMatch(after.lastFailure?.message ?? '', /FORGED/);
    assert.doesNotMatch(cluster.coordinator.output(), /"failure":"FORGED FAILURE"/);
    assert.deepEqual(await clusterStore(cluster).list('exports/'), [], 'nothing was committed outside the job');
  } finally {
    // Stopped first: its timer publishing on a closed connection would hide the real failure.
    producing?.stop();
    for (const nc of conns) await nc.close().catch(() => undefined);
    client.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
