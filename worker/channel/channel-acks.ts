// The acknowledgement of a channel (docs/ARCHITECTURE.md, "Actors, tasks and channels"): the
// receiver (channel-receiver.ts) answers each batch on its reply subject with the key group and
// the sequence it has taken up to; the sender (channel-sender.ts) frees its window up to it.
// Acknowledgements are cumulative, so a repeated or late one is harmless.

/** Bytes of an acknowledgement: u16 keyGroup, u32 sequence, big-endian. */
export const ACK_BYTES = 6;

/** Acknowledgement payload: u16 keyGroup, u32 sequence. */
export function encodeAck(keyGroup: number, sequence: number): Uint8Array {
  const b = new Uint8Array(ACK_BYTES);
  const v = new DataView(b.buffer);
  v.setUint16(0, keyGroup);
  v.setUint32(2, sequence);
  return b;
}

/** The key group an acknowledgement of ACK_BYTES bytes names. */
export function ackKeyGroup(data: Uint8Array): number {
  return (data[0]! << 8) | data[1]!;
}

/** The sequence an acknowledgement of ACK_BYTES bytes names (every batch up to it is taken). */
export function ackSequence(data: Uint8Array): number {
  return data[2]! * 0x1000000 + ((data[3]! << 16) | (data[4]! << 8) | data[5]!);
}
