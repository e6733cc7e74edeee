// Reading a JetStream stream back in full, for assertions on sinks and dead letters.
import { jetstream, jetstreamManager, DeliverPolicy } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

export interface StoredMessage {
  subject: string;
  seq: number;
  data: string;
}

/** Every message currently in `stream` (optionally only those on `subject`), in order. */
export async function readStream(nc: NatsConnection, stream: string, subject?: string): Promise<StoredMessage[]> {
  const jsm = await jetstreamManager(nc);
  let last: number;
  try {
    last = (await jsm.streams.info(stream)).state.last_seq;
  } catch (e) {
    if (/stream not found/i.test((e as Error).message)) return [];
    throw e;
  }
  if (last === 0) return [];
  const consumer = await jetstream(nc).consumers.get(stream, { deliver_policy: DeliverPolicy.All, ...(subject ? { filter_subjects: subject } : {}) });
  const out: StoredMessage[] = [];
  const messages = await consumer.consume({ max_messages: 1000 });
  // The ordered consumer delivers up to the last sequence that existed when we asked; with a
  // subject filter the last one may not match, so also stop when pending reaches zero.
  for await (const m of messages) {
    if (!subject || m.subject === subject) out.push({ subject: m.subject, seq: m.seq, data: m.string() });
    if (m.seq >= last || m.info.pending === 0) break;
  }
  await messages.close();
  return out;
}

/**
 * How many messages `stream` holds, from the stream's info (0 when it does not exist yet): what
 * to poll while waiting for output to arrive, then readStream once. Reading a stream of 15,000
 * results took the test and nats-server ~0.2 s of CPU per read.
 */
export async function streamCount(nc: NatsConnection, stream: string): Promise<number> {
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } catch (e) {
    if (/stream not found/i.test((e as Error).message)) return 0;
    throw e;
  }
}
