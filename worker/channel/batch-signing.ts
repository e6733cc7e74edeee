// Signed record batches (README, "Security"): with shared worker credentials anybody holding them
// may publish on a shuffle subject, and a batch with a sniffed sender's next sequence number would
// be processed as the sender's. So every batch of a job carries an HMAC-SHA256 tag over all of its
// bytes — the header (kind, channel sequence, key group, the sender's name, which holds the
// epoch) and the body — under the job's channel key of the epoch (core/channel-key.ts), which only
// the job's workers hold. A receiver drops a batch whose tag does not verify, before its sequence
// is looked at, and counts it. A fresh key per epoch means a batch replayed from an earlier epoch
// does not verify either (nor does it pass the sender fence); a batch replayed within its epoch
// has a sequence already seen and is only acknowledged again, as any resend.
//
// The tag is the last TAG_BYTES of the message: encodeBatch leaves room for it (no copy).
//
// Acknowledgements (channel-acks.ts) are signed with the same key: a forged one would free a
// sender's window early. Their tag covers a domain byte of their own (ACK_DOMAIN; a batch begins
// with BATCH_MAGIC), every entry (key group and sequence) and the sender's name: a batch's tag
// never passes for an ack's, and an ack for one sender never frees another's window.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TAG_BYTES = 32;
/** First byte of what an acknowledgement's tag covers; batches begin with 0xed (core/record-batch.ts). */
const ACK_DOMAIN = 0xac;
const ACK_DOMAIN_BYTE = Uint8Array.of(ACK_DOMAIN);

export class BatchSigner {
  readonly #key: Uint8Array;

  constructor(key: Uint8Array) {
    this.#key = key;
  }

  /** Writes the tag of bytes[0, length - TAG_BYTES) into the last TAG_BYTES of `bytes`. */
  sign(bytes: Uint8Array): Uint8Array {
    const end = bytes.length - TAG_BYTES;
    const tag = createHmac('sha256', this.#key).update(bytes.subarray(0, end)).digest();
    bytes.set(tag, end);
    return bytes;
  }

  /** The batch without its tag when the tag verifies, else undefined. */
  verify(bytes: Uint8Array): Uint8Array | undefined {
    const end = bytes.length - TAG_BYTES;
    if (end <= 0) return undefined;
    const tag = createHmac('sha256', this.#key).update(bytes.subarray(0, end)).digest();
    return timingSafeEqual(tag, bytes.subarray(end)) ? bytes.subarray(0, end) : undefined;
  }

  /** The tag of an acknowledgement on `sender`'s channels whose entries (count and entries, channel-acks.ts) are `body`. */
  ackTag(sender: string, body: Uint8Array): Buffer {
    return createHmac('sha256', this.#key).update(ACK_DOMAIN_BYTE).update(body).update(sender).digest();
  }
}
