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
