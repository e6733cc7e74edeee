// The warning about nats-server releases whose filtered consumers replay slowly (core/nats.ts), and
// that the tests run on a server without that slowdown (scripts/ensure-nats-server.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { natsServerWarning } from '../../core/nats.ts';
import { startNatsServer } from '../kit/index.ts';

test('nats-server version - releases before 2.9.15 are warned about, later ones are not', () => {
  for (const old of ['2.9.10', 'v2.9.14', '2.8.4', '1.4.1']) assert.match(natsServerWarning(old) ?? '', new RegExp(`nats-server ${old} is older than 2\\.9\\.15`), old);
  for (const recent of ['2.9.15', '2.9.25', '2.10.27', '2.10.0-RC.1', '2.11.3', '3.0.0']) assert.equal(natsServerWarning(recent), undefined, recent);
  assert.equal(natsServerWarning(undefined), undefined, 'a server that does not say');
});

test('nats-server version - the test kit\'s server is one without the replay slowdown', async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    assert.equal(natsServerWarning(nc.info?.version), undefined, `nats-server ${nc.info?.version}: run scripts/ensure-nats-server.sh`);
  } finally {
    await nc.close();
  }
});
