// A producer that publishes at a steady rate, so that the faults a test injects land while records
// flow (the windows-faults and customer-experience fixtures use it).
import type { NatsConnection } from '@nats-io/transport-node';
import { BulkPublisher } from '../../core/jetstream-publisher.ts';

/** How often a steady producer publishes its next `perTick` messages. */
const TICK_MS = 100;

/**
 * Publishes `perTick` of `messages` ([subject, payload], in order) every 100 ms. `done` resolves
 * once the stream has acknowledged every one; `stop()` ends it early.
 */
export function publishMessagesSteadily(nc: NatsConnection, messages: ReadonlyArray<readonly [string, string]>, perTick: number): { done: Promise<void>; stop(): void } {
  const publisher = new BulkPublisher(nc);
  const encoder = new TextEncoder();
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve, reject) => {
    timer = setInterval(() => {
      try {
        for (const end = Math.min(sent + perTick, messages.length); sent < end; sent++) publisher.publishNow(messages[sent]![0], encoder.encode(messages[sent]![1]));
        if (sent === messages.length) {
          clearInterval(timer);
          publisher.flush().then(resolve, reject).finally(() => publisher.close());
        }
      } catch (e) {
        clearInterval(timer);
        reject(e);
      }
    }, TICK_MS);
  });
  return { done, stop: () => clearInterval(timer) };
}
