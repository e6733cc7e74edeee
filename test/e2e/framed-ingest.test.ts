// Framed ingest (core/record-frame.ts, README "Framed ingest"): records published several to a
// JetStream message, as `eddy publish --frame` and the SDK's FramedProducer do. A frame is one
// position for checkpoints, so a worker SIGKILLed while frames flow must replay whole frames:
// every record counted once, every trigger and history record once. A malformed record inside a
// frame is dead-lettered alone, naming its frame's sequence and its line, and the rest of its frame
// goes through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers } from '@nats-io/transport-node';
import { checkpointsOrIdle, startCluster, startNatsServer, waitFor, readStream, cxEvents, cxExpectation, submitCx, assertCxExactlyOnce, clusterStore, CX_JOB, type ChildHandle } from '../kit/index.ts';
import { EddyClient } from '../../cli/client.ts';
import { BulkPublisher } from '../../core/jetstream-publisher.ts';
import { FRAME_FORMAT_NDJSON, FRAME_HEADER, FrameBuilder, countFrameRecords, encodeFrame, forEachFrameRecord } from '../../core/record-frame.ts';
import { partitionForKey } from '../../core/key-groups.ts';
import { FramedProducer } from '../../sdk/framed-producer.ts';
import { ensureSourceStream } from '../../core/nats.ts';
import { jetstreamManager } from '@nats-io/jetstream';

test('framed ingest - a frame splits into its lines; frames are cut by records and bytes, per subject', () => {
  const payload = encodeFrame(['{"a":1}', 'not json', '{"b":2}']);
  const lines: string[] = [];
  const n = forEachFrameRecord(payload, (s, e, i) => lines.push(`${i}:${new TextDecoder().decode(payload.subarray(s, e))}`));
  assert.equal(n, 3);
  assert.deepEqual(lines, ['0:{"a":1}', '1:not json', '2:{"b":2}']);
  assert.equal(countFrameRecords(new TextEncoder().encode('{"a":1}\n{"b":2}')), 2, 'the last newline may be left out');
  assert.equal(countFrameRecords(new Uint8Array(0)), 0);

  const frames = new FrameBuilder({ maxRecords: 3, maxBytes: 100 });
  assert.equal(frames.add('s.0', '"x"'), undefined);
  assert.equal(frames.add('s.1', '"y"'), undefined);
  assert.equal(frames.add('s.0', '"x"'), undefined);
  assert.equal(new TextDecoder().decode(frames.add('s.0', '"x"')), '"x"\n"x"\n"x"\n', 'full at 3 records');
  const long = `"${'z'.repeat(30)}"`;
  assert.equal(new TextDecoder().decode(frames.add('s.1', long)), '"y"\n', 'a frame that would pass 100 bytes (counted as 3 per character) goes first');
  assert.equal(new TextDecoder().decode(frames.add('s.1', long)), `${long}\n`);
  assert.deepEqual(frames.drain().map(([s, p]) => [s, countFrameRecords(p)]), [['s.1', 1]]);
  assert.throws(() => frames.add('s.0', '{"a":\n1}'), /one line/);
});

test('framed ingest - a worker SIGKILLed while frames flow: every record once, malformed lines dead-lettered alone with their place', { timeout: 240_000 }, async () => {
  const cluster = await startCluster({ workers: 2, workerTimeoutMs: 4000 });
  const dir = await mkdtemp(join(tmpdir(), 'eddy-framed-'));
  const client = new EddyClient({ address: cluster.address, timeoutMs: 10_000 });
  const nc = await connect({ servers: cluster.nats.url });
  const publisher = new BulkPublisher(nc, { window: 64 });
  let timer: NodeJS.Timeout | undefined;
  try {
    await waitFor(async () => (await client.listWorkers()).filter((w) => w.state === 'ALIVE').length === 2, { timeoutMs: 30_000, what: 'two live workers' });
    await submitCx(client, join(dir, 'cache'));
    await waitFor(async () => (await client.getJob(CX_JOB)).state === 'RUNNING', { timeoutMs: 30_000, what: 'the job to run' });

    // 20,000 events in frames of up to 100 records per partition, and every 1,000th line
    // malformed (a cut-off record), in a frame with good ones.
    const events = cxEvents(20_000, 1_000);
    const frames = new FrameBuilder({ maxRecords: 100 });
    const messages: Array<[string, Uint8Array]> = [];
    const malformed: string[] = [];
    for (const [i, e] of events.entries()) {
      const subject = `indicators.${partitionForKey(e.entityId, 4)}`;
      if (i % 1000 === 500) {
        const bad = JSON.stringify(e).slice(0, 25);
        malformed.push(bad);
        const full = frames.add(subject, bad);
        if (full) messages.push([subject, full]);
      }
      const full = frames.add(subject, JSON.stringify(e));
      if (full) messages.push([subject, full]);
    }
    messages.push(...frames.drain());
    const hdrs = headers();
    hdrs.set(FRAME_HEADER, FRAME_FORMAT_NDJSON);
    // Paced (2 frames each 100 ms, ~2,000 records/s: ~10 s) so that the kill lands while frames flow.
    // Past three quarters it waits for the kill, however slowly a loaded machine checkpoints.
    let sent = 0;
    let killed = false;
    const published = new Promise<void>((resolve, reject) => {
      timer = setInterval(() => {
        if (!killed && sent >= (messages.length * 3) / 4) return;
        try {
          for (const end = Math.min(sent + 2, messages.length); sent < end; sent++) publisher.publishNow(messages[sent]![0], messages[sent]![1], hdrs);
          if (sent === messages.length) {
            clearInterval(timer);
            publisher.flush().then(resolve, reject);
          }
        } catch (e) {
          clearInterval(timer);
          reject(e);
        }
      }, 100);
    });

    const before = await client.getJob(CX_JOB);
    // A quarter of the frames sent, then two more checkpoints, or the job idle with everything in
    // its latest one (no checkpoints while idle: the frames stop at three quarters until the kill).
    await waitFor(() => sent > messages.length / 4, { timeoutMs: 60_000, what: 'a quarter of the frames sent' });
    await checkpointsOrIdle(client, CX_JOB, { timeoutMs: 60_000 });
    const victim = cluster.workers[0] as ChildHandle;
    victim.kill('SIGKILL');
    killed = true;
    const sentAtKill = sent;
    assert.ok(sentAtKill < messages.length, `the kill landed while frames flowed (${sentAtKill} of ${messages.length} sent)`);
    await cluster.addWorker('replacement');
    await waitFor(async () => (await client.getJob(CX_JOB)).restarts > before.restarts, { timeoutMs: 60_000, what: 'the job to restart after the kill' });
    await published;

    await assertCxExactlyOnce(client, nc, cxExpectation(events), 120_000, clusterStore(cluster));

    const dead = await waitFor(async () => {
      const d = await readStream(nc, 'EDDY_DLQ', `eddy.dlq.${CX_JOB}`);
      return d.length >= malformed.length ? d : undefined;
    }, { timeoutMs: 60_000, what: `${malformed.length} dead letters` });
    const letters = dead.map((m) => JSON.parse(m.data) as { record: string; reason: string; source: { stream: string; sequence: number; index?: number } });
    assert.deepEqual(letters.map((l) => l.record).sort(), [...malformed].sort(), 'each malformed line once, alone');
    for (const l of letters) {
      assert.equal(l.source.stream, 'indicators');
      assert.ok(Number.isInteger(l.source.index) && l.source.index! >= 0 && l.source.index! < 100, `a line in its frame: ${JSON.stringify(l.source)}`);
      assert.match(l.reason, /JSON/i);
    }
    const job = await client.getJob(CX_JOB);
    const source = job.stages!.find((s) => s.kind === 'source')!;
    assert.equal(Number(source.deadLetters), malformed.length, 'counted once each');
  } finally {
    clearInterval(timer);
    publisher.close();
    client.close();
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('framed ingest - the SDK producer frames records by their key\'s partition, in order, each record once', { timeout: 60_000 }, async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    await ensureSourceStream(nc, { stream: 'indicators', partitions: 4, partitionKey: 'entityId' });
    const events = cxEvents(5_000, 200, 11);
    {
      await using producer = new FramedProducer<(typeof events)[number]>(nc, { stream: 'indicators', partitions: 4, key: (e) => e.entityId, maxRecords: 64 });
      for (const e of events) await producer.publish(e);
      await producer.flush();
      assert.equal(producer.records, events.length);
    }
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info('indicators');
    assert.ok(state.messages < events.length / 10, `frames, not one message per record (${state.messages} messages)`);
    const byPartition = new Map<string, string[]>();
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const m = (await jsm.streams.getMessage('indicators', { seq }))!;
      assert.equal(m.header?.get(FRAME_HEADER), FRAME_FORMAT_NDJSON, `message ${seq} is marked a frame`);
      const lines = byPartition.get(m.subject) ?? [];
      forEachFrameRecord(m.data, (start, end) => lines.push(new TextDecoder().decode(m.data.subarray(start, end))));
      byPartition.set(m.subject, lines);
    }
    for (let p = 0; p < 4; p++) {
      const expected = events.filter((e) => partitionForKey(e.entityId, 4) === p).map((e) => JSON.stringify(e));
      assert.deepEqual(byPartition.get(`indicators.${p}`) ?? [], expected, `partition ${p}: its records once each, in order`);
    }
  } finally {
    await nc.close();
  }
});
