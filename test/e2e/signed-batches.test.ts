// Signed record batches (worker/channel/batch-signing.ts; README, "Security"), with real processes
// and NATS with authentication: a holder of the shared worker credentials may publish on shuffle
// subjects and read every worker's control subjects, but the channel key reaches workers sealed to
// their own key pairs. Batches it forges (the next sequence of a sniffed channel, unsigned or
// signed with a key of its own), garbage on a channel subject, and batches it replays (of the
// current epoch, and of an earlier one after a recovery) are rejected or ignored: the job's
// results stay exact, and the worker logs the rejections (throttled) with their count. So are
// forged channel acknowledgements (worker/channel/channel-acks.ts): none frees or breaks a window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect, type Msg } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { checkpointsOrIdle, startCluster, waitFor, readStream, REPO_ROOT } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { buildBundle } from '../../core/bundle.ts';
import { keyGroupForKey, partitionForKey } from '../../core/key-groups.ts';
import { BatchKind, decodeHeader, encodeBatch } from '../../core/record-batch.ts';
import { BatchSigner, TAG_BYTES } from '../../worker/channel/batch-signing.ts';
import { encodeAck } from '../../worker/channel/channel-acks.ts';

const JOB = 'poison-throw';
const IDS = ['a', 'b', 'c', 'd', 'e'];

test('signed batches - forged, garbage and replayed batches on a shuffle subject, sent with worker credentials, are rejected and counted; the results stay exact', { timeout: 180_000 }, async () => {
  // A checkpoint after the forgeries (barriers through every channel) shows that none broke: a checkpoint every interval, idle or not.
  const cluster = await startCluster({ workers: 1, natsAuth: true, skipIdleCheckpoints: false });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-signed-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const producer = await connect({ servers: cluster.nats.url, ...cluster.nats.login('producer') });
  const intruder = await connect({ servers: cluster.nats.url, ...cluster.nats.login('worker'), name: 'intruder' });
  const reader = await connect({ servers: cluster.nats.url, ...cluster.nats.login('coordinator') });
  try {
    // The poison-records fixture: totals per id, one output per record; a record with
    // `poison` fails its task (used here only to force recoveries, i.e. new epochs).
    const bundle = await buildBundle(join(REPO_ROOT, 'test/fixtures/poison/throw-job.ts'), join(dir, 'cache'));
    await waitFor(async () => (await client.listWorkers()).some((w) => w.state === 'ALIVE'), { timeoutMs: 30_000, what: 'a live worker' });
    await client.submitJob({ manifestJson: JSON.stringify(bundle.manifest), bundleSha256: bundle.sha256, code: bundle.code, timeoutMs: 30_000 });
    await waitFor(async () => (await client.getJob(JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });

    // The intruder sniffs what worker credentials let it read: the channels and the deploys.
    const kg = keyGroupForKey('a');
    const sniffed: Msg[] = [];
    intruder.subscribe(`eddy.${JOB}.totals.${kg}`, { callback: (_e, m) => void sniffed.push(m) });
    const deploys: Msg[] = [];
    intruder.subscribe('eddy.ctl.worker.*.deploy', { callback: (_e, m) => void deploys.push(m) });
    await intruder.flush();

    const js = jetstream(producer);
    const totals = new Map<string, number>();
    const outputs: string[] = [];
    let seq = 0;
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++, seq++) {
        const id = IDS[seq % IDS.length]!;
        const n = (seq % 7) + 1;
        totals.set(id, (totals.get(id) ?? 0) + n);
        outputs.push(JSON.stringify({ id, total: totals.get(id), seq }));
        await js.publish(`poison-throw-in.${partitionForKey(id, 2)}`, JSON.stringify({ id, n, seq }));
      }
    };
    await publish(100);
    await waitFor(() => sniffed.some((m) => decodeHeader(m.data).kind === BatchKind.DATA), { timeoutMs: 30_000, what: 'a sniffed data batch' });

    // Forgeries on the channel of key "a": the sniffed sender's next sequence, a record that
    // would add 666 to a's total; unsigned (as a batch of an unsigned channel would be), then
    // signed with a key of the intruder's. (The intruder's subscription sees its own batches too:
    // each forgery takes the sequence after the previous one.)
    const forge = (tag: 'none' | 'own-key', n: number): Uint8Array => {
      const last = decodeHeader(sniffed[sniffed.length - 1]!.data);
      const batch = { kind: BatchKind.DATA, sequence: last.sequence + 1, keyGroup: kg, sender: last.sender, records: [{ key: 'a', timestamp: -1, value: { id: 'a', n, seq: -1 }, origin: -1 }] };
      return tag === 'none' ? encodeBatch(batch) : new BatchSigner(randomBytes(32)).sign(encodeBatch(batch, TAG_BYTES));
    };
    // The real batches so far (the intruder's subscription will also see its own forgeries).
    const epochOne = sniffed.slice();
    let forged = 0;
    const forgeFive = async (tag: 'none' | 'own-key') => {
      for (let i = 0; i < 5; i++) {
        intruder.publish(`eddy.${JOB}.totals.${kg}`, forge(tag, 666));
        forged++;
        await intruder.flush();
        await new Promise((r) => setImmediate(r));
      }
    };
    await forgeFive('none');
    // Two checkpoints later the committed totals are still those of the published records only
    // (unsigned, a forged batch with the next sequence would have added 666 to a's).
    await checkpointsOrIdle(client, JOB);
    await waitFor(async () => {
      const values = await client.batchGet(JOB, 'total', IDS, 'committed');
      return values.every((v) => v.found && JSON.parse(v.valueJson) === totals.get(v.entityId));
    }, { timeoutMs: 30_000, what: 'the committed totals of the published records (none forged)' });
    await forgeFive('own-key');
    // Garbage on the channel subject: not even a batch.
    intruder.publish(`eddy.${JOB}.totals.${kg}`, new TextEncoder().encode('INJECTED'));
    forged++;
    // Replays of this epoch's batches, byte for byte: already-seen sequences, acknowledged again only.
    for (const m of epochOne) intruder.publish(m.subject, m.data);
    // Forged acknowledgements on the sniffed sender's ack subject (the reply subject of its
    // batches): its next sequence unsigned (would free its window for a batch never taken), signed
    // with the intruder's key, and one of a batch never sent (unsigned, that broke the channel).
    const lastReal = decodeHeader(epochOne[epochOne.length - 1]!.data);
    const ackSubject = epochOne[0]!.reply!;
    const forgedAcks = [
      encodeAck(kg, lastReal.sequence + 1, lastReal.sender, undefined),
      encodeAck(kg, lastReal.sequence + 1, lastReal.sender, new BatchSigner(randomBytes(32))),
      encodeAck(kg, 1_000_000, lastReal.sender, undefined),
    ];
    for (const a of forgedAcks) intruder.publish(ackSubject, a);
    await intruder.flush();

    // None of it broke a channel (unsigned, a forged sequence collides with the real sender's next
    // batch, and garbage is undecodable: both restart the job).
    const checkpointAfter = Number((await client.getJob(JOB)).checkpoints?.latestId ?? 0);
    await waitFor(async () => Number((await client.getJob(JOB)).checkpoints?.latestId ?? 0) > checkpointAfter, { timeoutMs: 30_000, what: 'a checkpoint after the forgeries' });
    assert.equal(Number((await client.getJob(JOB)).restarts), 0, 'no restart caused by forged batches');

    // A recovery (a record that fails its task until it is skipped): new epochs, new channel keys.
    const epochBefore = Number((await client.getJob(JOB)).epoch);
    await js.publish(`poison-throw-in.${partitionForKey('b', 2)}`, JSON.stringify({ id: 'b', n: 1000, seq: -2, poison: true }));
    await waitFor(async () => {
      const j = await client.getJob(JOB);
      return j.state === 'RUNNING' && Number(j.epoch) > epochBefore + 2;
    }, { timeoutMs: 90_000, what: 'the job to recover into a later epoch' });
    // Replays of the first epoch's batches into the new one: a sender of an old epoch, fenced.
    for (const m of epochOne) intruder.publish(m.subject, m.data);
    await publish(100);

    const out = await waitFor(async () => {
      const m = await readStream(reader, 'POISON_THROW_OUT');
      return m.length >= outputs.length ? m : undefined;
    }, { timeoutMs: 60_000, what: `${outputs.length} outputs` });
    assert.deepEqual(out.map((m) => m.data).sort(), outputs.sort(), 'one output per published record, none forged or replayed');
    const values = await client.batchGet(JOB, 'total', IDS, 'committed');
    for (const v of values) assert.equal(JSON.parse(v.valueJson), totals.get(v.entityId), `total of ${v.entityId}`);

    // Logged throttled, with the count of every rejection so far.
    const worker = cluster.workers[0]!;
    const rejectedTotal = (): number => {
      let max = 0;
      for (const line of worker.output().split('\n')) {
        if (!line.includes('forged record batch rejected')) continue;
        max = Math.max(max, (JSON.parse(line) as { total: number }).total);
      }
      return max;
    };
    await waitFor(() => rejectedTotal() >= forged, { timeoutMs: 30_000, what: `${forged} rejections logged` });
    assert.equal(rejectedTotal(), forged);
    const lines = worker.output().split('\n').filter((l) => l.includes('forged record batch rejected')).length;
    assert.ok(lines <= 3, `${forged} rejections in ${lines} log lines (throttled)`);
    await waitFor(() => worker.output().includes('"msg":"forged channel acknowledgement rejected"'), { timeoutMs: 10_000, what: 'the forged acks in the log' });
    assert.ok(deploys.length > 0, 'worker credentials can read deploys (the key in them is sealed)');
  } finally {
    client.close();
    await Promise.all([producer.close(), intruder.close(), reader.close()]);
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
