// The 'jetstream-routed' sink: the subject comes from the record, under the sink's prefix.
// Manifest validation, the stream it needs (created over `<prefix>.>`, an existing stream with
// other subjects refused), and the per-record subject check, against a real nats-server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startNatsServer } from '../kit/index.ts';
import { ensureSinkStreams } from '../../core/nats.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { job, jetstreamRouted } from '../../sdk/index.ts';
import { isExactlyOnce, openSinks } from '../../worker/sink/sinks.ts';

function manifestWith(sink: ReturnType<typeof jetstreamRouted>) {
  const j = job('routed');
  j.source<{ k: string }>('in', { partitions: 1 })
    .keyBy((r) => r.k)
    .process<{ subject: string; value: unknown }>('route', (r, ctx) => ctx.emit({ subject: r.k, value: r }))
    .sink(sink);
  return j.manifest();
}

test('routed sink - the manifest accepts a subject prefix and refuses wildcards or a bad stream name', () => {
  const m = manifestWith(jetstreamRouted('out.routed', { stream: 'ROUTED' }));
  assert.deepEqual(m.stages[1]!.sinks, [{ kind: 'jetstream-routed', subjectPrefix: 'out.routed', stream: 'ROUTED', input: 0 }]);
  assert.throws(() => manifestWith(jetstreamRouted('out.*', { stream: 'ROUTED' })), (e: unknown) => e instanceof InvalidArgumentError && /subjectPrefix "out\.\*" is invalid/.test(e.message));
  assert.throws(() => manifestWith(jetstreamRouted('out', { stream: 'NO.DOTS' })), /sink stream "NO.DOTS" is invalid/);
});

test('routed sink - each record names its subject under the prefix; other subjects are refused; the stream must take <prefix>.>', { timeout: 30_000 }, async () => {
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    const spec = { kind: 'jetstream-routed', subjectPrefix: 'routed', stream: 'ROUTED' } as const;
    await ensureSinkStreams(nc, [spec]);
    const jsm = await jetstreamManager(nc);
    assert.deepEqual((await jsm.streams.info('ROUTED')).config.subjects, ['routed.>']);
    await jsm.streams.add({ name: 'OTHER', subjects: ['other.x'] });
    await assert.rejects(ensureSinkStreams(nc, [{ ...spec, stream: 'OTHER', subjectPrefix: 'other' }]), (e: unknown) => e instanceof InvalidArgumentError && /needs it to take other\.>/.test(e.message));

    const [sink] = openSinks(nc, [spec]);
    assert.ok(sink && isExactlyOnce(sink), 'exactly-once by default');
    sink.write({ subject: 'rentals', value: { id: 1 } });
    sink.write({ subject: 'audit.eu', value: { id: 2 } });
    for (const bad of [{ subject: 'a.*', value: 1 }, { subject: '>', value: 1 }, { subject: 'a..b', value: 1 }, { value: 1 }, 'text']) {
      assert.throws(() => sink.write(bad), (e: unknown) => e instanceof InvalidArgumentError && /routed sink record/.test(e.message), JSON.stringify(bad));
    }
    assert.deepEqual(sink.take(1), [
      { subject: 'routed.rentals', data: '{"id":1}' },
      { subject: 'routed.audit.eu', data: '{"id":2}' },
    ]);
    assert.deepEqual(sink.take(2), []);

    const [direct] = openSinks(nc, [{ ...spec, delivery: 'at-least-once' }]);
    assert.ok(direct && !isExactlyOnce(direct));
    direct.write({ subject: 'now', value: 'x' });
    await direct.flush();
    direct.close();
    const stored = await jsm.streams.getMessage('ROUTED', { last_by_subj: 'routed.now' });
    assert.equal(new TextDecoder().decode(stored!.data), '"x"');
  } finally {
    await nc.close();
    await nats.stop();
  }
});
