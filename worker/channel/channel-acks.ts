// Channel acknowledgements (docs/ARCHITECTURE.md, "Actors, tasks and channels"): the receiver of
// a channel tells its sender, on eddy.ack.<job>.<sender>, up to which sequence it has taken a key
// group's batches, and the sender frees its window up to there. Payload: u16 key group, u32
// sequence, then (signed channels) the tag of batch-signing.ts, bound to the sender's name.
//
// Signed for the same reason as the batches (README, "Security"): any holder of worker
// credentials may publish on an ack subject, and a forged ack with the next sequence would free a
// sender's window for a batch the receiver never took. A sender drops an ack that does not
// verify, counts it and goes on; it never breaks the channel for it (that would let a forger
// restart the job at will).
import { timingSafeEqual } from 'node:crypto';
import { TAG_BYTES, type BatchSigner } from './batch-signing.ts';

/** Bytes of an acknowledgement without its tag. */
const ACK_BYTES = 6;

/** The acknowledgement of `sequence` on `sender`'s channel to `keyGroup` (signed when `signer` is given). */
export function encodeAck(keyGroup: number, sequence: number, sender: string, signer: BatchSigner | undefined): Uint8Array {
  const b = Buffer.allocUnsafe(signer === undefined ? ACK_BYTES : ACK_BYTES + TAG_BYTES);
  b.writeUInt16BE(keyGroup, 0);
  b.writeUInt32BE(sequence, 2);
  if (signer !== undefined) signer.ackTag(sender, keyGroup, sequence).copy(b, ACK_BYTES);
  return b;
}

export type DecodedAck = { keyGroup: number; sequence: number; rejected?: undefined } | { rejected: string };

/** Reads an acknowledgement sent to `sender`; `rejected` says why it is none (malformed, or a tag that does not verify). */
export function decodeAck(data: Uint8Array, sender: string, signer: BatchSigner | undefined): DecodedAck {
  const expected = signer === undefined ? ACK_BYTES : ACK_BYTES + TAG_BYTES;
  if (data.length !== expected) return { rejected: `malformed acknowledgement of ${data.length} bytes (expected ${expected})` };
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const keyGroup = v.getUint16(0);
  const sequence = v.getUint32(2);
  if (signer !== undefined && !timingSafeEqual(signer.ackTag(sender, keyGroup, sequence), data.subarray(ACK_BYTES))) {
    return { rejected: `acknowledgement of batch ${sequence} for key group ${keyGroup} with a tag that does not verify` };
  }
  return { keyGroup, sequence };
}
