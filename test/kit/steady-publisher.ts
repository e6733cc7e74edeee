// A producer that publishes at a steady rate, so that the faults a test injects land while records
// flow (the windows-faults and customer-experience fixtures use it).
import type { NatsConnection } from '@nats-io/transport-node';
import { BulkPublisher } from '../../core/jetstream-publisher.ts';

/** How often a steady producer publishes its next `perTick` messages. */
const TICK_MS = 100;

export interface SteadyPublisherOptions {
  /**
   * The last `heldBack` messages go out at `trickle` per tick (their very last `kept` not at all)
   * until release() is called, then at the full rate: a test whose faults must land while records
   * still flow (and windows still fire) keeps the input going, however long its faults take on a
   * loaded machine, without pacing the whole input for the slowest machine. @default 0
   */
  heldBack?: number;
  /** Messages per tick while the held-back tail is not released. @default 1 */
  trickle?: number;
  /** The last messages (e.g. records that close every window) not published before release(). @default 0 */
  kept?: number;
}

export interface SteadyPublisher {
  /** Resolves once the stream has acknowledged every message. */
  done: Promise<void>;
  /** Ends it early. */
  stop(): void;
  /**
   * Publishes nothing more and resolves with how many messages were published, once the stream
   * has acknowledged every one of them: a test whose faults are done stops its input there and
   * compares the output with the expectation of that prefix, instead of waiting for the job to
   * work through input that no fault lands in.
   */
  finish(): Promise<number>;
  /** Publishes the held-back tail at the full rate (SteadyPublisherOptions.heldBack). */
  release(): void;
}

/**
 * Publishes `perTick` of `messages` ([subject, payload], in order) every 100 ms. `done` resolves
 * once the stream has acknowledged every one; `stop()` ends it early.
 */
export function publishMessagesSteadily(nc: NatsConnection, messages: ReadonlyArray<readonly [string, string]>, perTick: number, options: SteadyPublisherOptions = {}): SteadyPublisher {
  // The producer is not what a test examines: a JetStream that answers nothing for 10 s (the
  // product's default) while two test files and their clusters share 2 cores is slow, not gone
  // (seen with a compose stack's nats-server at load 37). A minute without any answer still fails.
  const publisher = new BulkPublisher(nc, { ackTimeoutMs: 60_000 });
  const encoder = new TextEncoder();
  const keptFrom = messages.length - (options.kept ?? 0);
  const heldFrom = Math.min(messages.length - (options.heldBack ?? 0), keptFrom);
  let released = (options.heldBack ?? 0) === 0 && (options.kept ?? 0) === 0;
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  let finishing: Promise<number> | undefined;
  const done = new Promise<void>((resolve, reject) => {
    timer = setInterval(() => {
      try {
        const end = released
          ? Math.min(sent + perTick, messages.length)
          : sent < heldFrom
            ? Math.min(sent + perTick, heldFrom)
            : Math.min(sent + (options.trickle ?? 1), keptFrom);
        for (; sent < end; sent++) publisher.publishNow(messages[sent]![0], encoder.encode(messages[sent]![1]));
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
  const finish = async (): Promise<number> => {
    clearInterval(timer);
    // Every message published: the last tick flushes and closes the publisher itself.
    if (sent === messages.length) {
      await done;
      return sent;
    }
    try {
      await publisher.flush();
    } finally {
      publisher.close();
    }
    return sent;
  };
  return {
    done,
    stop: () => clearInterval(timer),
    finish: () => (finishing ??= finish()),
    release: () => {
      released = true;
    },
  };
}
