// The query responder (worker/query/query-responder.ts) on a real RocksDB and a real nats-server:
// a key group that a move lets go while its reads are under way is answered unavailable (the
// router asks its new owner), never "not found" from state that the move dropped meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { startNatsServer, waitFor } from '../kit/index.ts';
import { withBackends } from '../kit/state-backends.ts';
import { QueryResponder } from '../../worker/query/query-responder.ts';
import { natsInbox } from '../../worker/query/query-inbox.ts';
import type { StateBackend } from '../../worker/state/state-backend.ts';
import { keyGroupForKey } from '../../core/key-groups.ts';
import { silentLogger } from '../../core/logger.ts';
import { customerExperience } from '../../jobs/customer-experience/job.ts';
import type { JobId } from '../../core/ids.ts';

const manifest = customerExperience({ historyPath: null }).manifest();
const STAGE = 'indicator-state';

/** The backend, with its value reads held until `open()`: a read under way for as long as a test needs. */
function gatedReads(backend: StateBackend): { backend: StateBackend; waiting(): number; open(): void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let waiting = 0;
  const proxy = new Proxy(backend, {
    get(target, name) {
      const value = Reflect.get(target, name, target) as unknown;
      // Feature reads take a value through getValueNow: gated, each is a read under way.
      if (name === 'getValueNow') {
        return async (...args: Parameters<StateBackend['getValueNow']>) => {
          waiting++;
          await gate;
          return target.getValueNow(...args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { backend: proxy, waiting: () => waiting, open: release };
}

test('query responder - a key group let go and dropped while its reads are under way is answered unavailable, not "not found"', async () => {
  await using nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    await withBackends(1, async ([real]) => {
      // Entities in more than one key group, each counted 7.
      const ids = ['entity-a', 'entity-b', 'entity-c', 'entity-d'];
      const groups = ids.map((id) => keyGroupForKey(id, manifest.maxParallelism));
      const moving = groups[0]!;
      const staying = ids.filter((_, i) => groups[i] !== moving);
      assert.ok(staying.length > 0, 'the entities span more than one key group');
      for (let i = 0; i < ids.length; i++) real!.putValue(STAGE, groups[i]!, 'received', ids[i]!, 7);

      const gated = gatedReads(real!);
      const responder = new QueryResponder({ inbox: natsInbox(nc), jobId: 'j' as JobId, manifest, keyGroups: [...new Set(groups)], backend: gated.backend, logger: silentLogger, epoch: 1, workerId: 'w1' });
      responder.start();
      const answer = responder.answer({ feature: 'received', features: [], entityIds: ids, view: 0, epoch: 1, asOfUnixMs: 0, hasAsOf: false, owner: 'w1', valueJson: false });
      await waitFor(() => gated.waiting() >= ids.length, { timeoutMs: 5_000, what: 'every read under way' });
      // The move's barrier lets the key group go, its completion stops serving it and drops its state.
      responder.release([moving]);
      responder.remove([moving]);
      await real!.dropKeyGroup(STAGE, moving);
      gated.open();

      const reply = await answer;
      assert.equal(reply.error, '');
      assert.deepEqual(reply.unavailableKeyGroups, [moving]);
      assert.deepEqual(reply.values.map((v) => [v.entityId, v.found, v.valueJson]), staying.map((id) => [id, true, '7']));
      responder.stop();
    });
  } finally {
    await nc.close();
  }
});
