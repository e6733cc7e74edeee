// A producer that survives NATS going away (a node of a cluster killed, a single server
// restarted): every event has a message id (the stream drops a repeat) and a publish that fails
// or times out is sent again until it is stored. Publishes run concurrently, so a retried event
// lands after later ones that got through: the stream's order, not the events' order, is what a
// job sees — compute expectations from storedCxEvents (cx-fixture.ts), not from the events.
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { partitionForKey } from '../../core/key-groups.ts';
import type { Indicator } from './cx-fixture.ts';

/** A retry's pause, in ms. */
const RETRY_MS = 100;
/** One publish's deadline, in ms. */
const PUBLISH_TIMEOUT_MS = 2_000;

/** Publishes `events` to `indicators.<partition>` at about `perSecond`, each until it is stored. */
export function publishCxResiliently(nc: NatsConnection, events: readonly Indicator[], perSecond: number): { done: Promise<void>; retries(): number } {
  const js = jetstream(nc);
  let retries = 0;
  const publishOne = async (i: number): Promise<void> => {
    const e = events[i]!;
    for (;;) {
      try {
        await js.publish(`indicators.${partitionForKey(e.entityId, 4)}`, JSON.stringify(e), { msgID: `ev-${i}`, timeout: PUBLISH_TIMEOUT_MS });
        return;
      } catch {
        retries++;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  };
  const done = (async () => {
    const batch = Math.max(1, Math.floor(perSecond / 10));
    for (let i = 0; i < events.length; i += batch) {
      const started = Date.now();
      await Promise.all(Array.from({ length: Math.min(batch, events.length - i) }, (_, k) => publishOne(i + k)));
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - started))));
    }
  })();
  return { done, retries: () => retries };
}
