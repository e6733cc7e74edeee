// Channel acknowledgements (docs/ARCHITECTURE.md, "Actors, tasks and channels"): the receiver of
// a channel tells its sender, on eddy.ack.<job>.<sender>, up to which sequence it has taken a key
// group's batches, and the sender frees its window up to there.
//
// One acknowledgement message covers every key group of the sender that the receiver took batches
// of in one turn of its event loop (channel-receiver.ts coalesces them): one message and one tag a
// turn, not one a batch. The acknowledgement was a message and an HMAC of its own per batch, and
// with one channel per key group (~20 records a batch on Nexmark q4) its signing and verifying were
// half of the worker's HMAC time (docs/BENCHMARKS.md, "q4 and q5"). Payload: u16 entry count, then
// per entry u16 key group and u32 sequence (each cumulative, as before), then (signed channels)
// the tag of batch-signing.ts over all of it, bound to the sender's name.
//
// Signed for the same reason as the batches (README, "Security"): any holder of worker
// credentials may publish on an ack subject, and a forged ack with the next sequence would free a
// sender's window for a batch the receiver never took. A sender drops an ack that does not
// verify, counts it and goes on; it never breaks the channel for it (that would let a forger
// restart the job at will). The tag covers every entry: none of a message's entries is taken
// unless all of them are the receiver's.
import { timingSafeEqual } from 'node:crypto';
import { TAG_BYTES, type BatchSigner } from './batch-signing.ts';

/** Bytes of the entry count. */
const COUNT_BYTES = 2;
/** Bytes of one entry: u16 key group, u32 sequence. */
const ENTRY_BYTES = 6;
/** Most entries in one acknowledgement message (48 KiB; a receiver with more sends several). */
export const MAX_ACK_ENTRIES = 8192;

/** One key group's acknowledgement: every batch of the channel up to `sequence` is taken. */
export interface AckEntry {
  keyGroup: number;
  sequence: number;
}

/**
 * The acknowledgement of `entries` on `sender`'s channels (signed when `signer` is given).
 * At most MAX_ACK_ENTRIES entries, each key group once.
 */
export function encodeAcks(entries: readonly AckEntry[], sender: string, signer: BatchSigner | undefined): Uint8Array {
  if (entries.length === 0 || entries.length > MAX_ACK_ENTRIES) throw new RangeError(`an acknowledgement holds 1 to ${MAX_ACK_ENTRIES} entries, not ${entries.length}`);
  const bodyBytes = COUNT_BYTES + entries.length * ENTRY_BYTES;
  const b = Buffer.allocUnsafe(signer === undefined ? bodyBytes : bodyBytes + TAG_BYTES);
  b.writeUInt16BE(entries.length, 0);
  let at = COUNT_BYTES;
  for (const e of entries) {
    b.writeUInt16BE(e.keyGroup, at);
    b.writeUInt32BE(e.sequence, at + 2);
    at += ENTRY_BYTES;
  }
  if (signer !== undefined) signer.ackTag(sender, b.subarray(0, bodyBytes)).copy(b, bodyBytes);
  return b;
}

/** The acknowledgement of `sequence` on `sender`'s channel to `keyGroup` alone (signed when `signer` is given). */
export function encodeAck(keyGroup: number, sequence: number, sender: string, signer: BatchSigner | undefined): Uint8Array {
  return encodeAcks([{ keyGroup, sequence }], sender, signer);
}

export type DecodedAck = { entries: AckEntry[]; rejected?: undefined } | { rejected: string };

/** Reads an acknowledgement sent to `sender`; `rejected` says why it is none (malformed, or a tag that does not verify). */
export function decodeAck(data: Uint8Array, sender: string, signer: BatchSigner | undefined): DecodedAck {
  if (data.length < COUNT_BYTES) return { rejected: `malformed acknowledgement of ${data.length} bytes` };
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = v.getUint16(0);
  const bodyBytes = COUNT_BYTES + count * ENTRY_BYTES;
  const expected = signer === undefined ? bodyBytes : bodyBytes + TAG_BYTES;
  if (count === 0 || data.length !== expected) return { rejected: `malformed acknowledgement of ${data.length} bytes (${count} entries: expected ${expected})` };
  if (signer !== undefined && !timingSafeEqual(signer.ackTag(sender, data.subarray(0, bodyBytes)), data.subarray(bodyBytes))) {
    return { rejected: `acknowledgement of ${count} key group(s) with a tag that does not verify` };
  }
  const entries: AckEntry[] = new Array(count);
  for (let i = 0, at = COUNT_BYTES; i < count; i++, at += ENTRY_BYTES) entries[i] = { keyGroup: v.getUint16(at), sequence: v.getUint32(at + 2) };
  return { entries };
}
