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
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TAG_BYTES = 32;

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
}
