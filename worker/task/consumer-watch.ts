// When a source split's consumer must be replaced (worker/task/source-task.ts). An ordered
// consumer is replaced, from the next sequence to read, when:
// - it went silent: no message, no idle heartbeat and nothing buffered for SILENT_TICKS heartbeat
//   intervals (its server is gone: an ordered consumer is R1, on one server of the stream's);
// - the stream holds a message past the last one read, stored well before, and the consumer
//   delivered nothing for IDLE_TICKS intervals although it may still send heartbeats (a consumer
//   the client library stopped pulling for: after a failed consumer-info request it waits a whole
//   pull expiry, 30 s, before it asks again: a split stalled 27 s after a NATS node came back);
// - the connection reconnected (what nats.go does for its ordered consumers since 2024: the
//   consumer may be gone, and the library's own check is the request that can stall).

import { jetstreamManager, type MsgRequest, type StoredMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

/** Heartbeat intervals with no sign of life before a consumer counts as gone. */
export const SILENT_TICKS = 3;
/** Intervals without a message before the stream is asked whether there was one to read. */
export const IDLE_TICKS = 3;
/** Once a split has been idle for a while, the stream is asked every this many intervals. */
export const PROBE_EVERY_TICKS = 5;

/** What the source task saw in one heartbeat interval. */
export interface ConsumerTick {
  /** Idle heartbeats received so far (a running count). */
  beats: number;
  /** The last stream sequence read. */
  sequence: number;
  /** Messages the consumer delivered and the split has not read yet. */
  pending: number;
  /** The split is processing a message or waiting for room downstream. */
  busy: boolean;
}

export type WatchVerdict =
  /** Nothing to do. */
  | { kind: 'ok' }
  /** No sign of the consumer: replace it. */
  | { kind: 'silent'; ticks: number }
  /** Alive, but nothing delivered for `ticks` intervals: ask the stream whether it holds more. */
  | { kind: 'probe'; ticks: number };

/** Counts a consumer's silent and idle heartbeat intervals (no I/O: the source task acts on it). */
export class ConsumerWatch {
  #seen: { beats: number; sequence: number };
  #silentTicks = 0;
  #idleTicks = 0;

  constructor(sequence: number) {
    this.#seen = { beats: 0, sequence };
  }

  tick(t: ConsumerTick): WatchVerdict {
    const progressed = t.sequence !== this.#seen.sequence || t.pending > 0 || t.busy;
    const heard = progressed || t.beats !== this.#seen.beats;
    this.#seen = { beats: t.beats, sequence: t.sequence };
    this.#silentTicks = heard ? 0 : this.#silentTicks + 1;
    this.#idleTicks = progressed ? 0 : this.#idleTicks + 1;
    if (this.#silentTicks >= SILENT_TICKS) return { kind: 'silent', ticks: this.#silentTicks };
    const idle = this.#idleTicks;
    // At IDLE_TICKS and twice that, then every PROBE_EVERY_TICKS: an idle job's splits cost the
    // server a stream read every five seconds each.
    if (idle === IDLE_TICKS || idle === 2 * IDLE_TICKS || (idle > 2 * IDLE_TICKS && (idle - 2 * IDLE_TICKS) % PROBE_EVERY_TICKS === 0)) return { kind: 'probe', ticks: idle };
    return { kind: 'ok' };
  }
}

/**
 * The first message of `subject` after stream sequence `sequence`, when the stream stored it more
 * than `minAgeMs` ago: long enough that a live consumer would have delivered it. Undefined when
 * there is none, or only a newer one.
 */
export async function unreadMessage(nc: NatsConnection, stream: string, subject: string, sequence: number, minAgeMs: number): Promise<{ seq: number; ageMs: number } | undefined> {
  const stored = await nextStoredMessage(nc, stream, subject, sequence);
  if (stored === null) return undefined;
  const ageMs = Date.now() - stored.time.getTime();
  return ageMs > minAgeMs ? { seq: stored.seq, ageMs } : undefined;
}

/** The first message of `subject` after stream sequence `sequence`, or null. */
export async function nextStoredMessage(nc: NatsConnection, stream: string, subject: string, sequence: number): Promise<StoredMsg | null> {
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  // The stream message-get API takes next_by_subj (the first message of the subject at or after
  // seq) since nats-server 2.9; the client's type names it for direct gets only, which need
  // allow_direct on a stream that a user may have made without it.
  const query = { seq: sequence + 1, next_by_subj: subject } as unknown as MsgRequest;
  return jsm.streams.getMessage(stream, query);
}
