// Reads a small JetStream stream back message by message with direct gets: no consumer, so a
// check inside waitFor cannot stall on a consumer that the server is slow to feed (seen on a
// loaded machine with readStream). For streams of a few hundred messages.
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

/** The payloads of every message in `stream`, in sequence order ([] when it does not exist). */
export async function readStreamDirect(nc: NatsConnection, stream: string): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  let state: { messages: number; first_seq: number; last_seq: number };
  try {
    state = (await jsm.streams.info(stream)).state;
  } catch (e) {
    if (/stream not found/i.test((e as Error).message)) return [];
    throw e;
  }
  const out: string[] = [];
  if (state.messages === 0) return out;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m !== null) out.push(m.string());
  }
  return out;
}
