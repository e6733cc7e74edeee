// The record-batch format of channels (docs/ARCHITECTURE.md, "Actors, tasks and channels").
//
// A fixed little header, hand-rolled so a receiver can check the channel sequence before it
// decodes anything, then the records as one msgpack array [key, timestamp, value, origin, key, ...]
// (origin: the source position the record derives from, core/record-origin.ts).
// msgpackr for the body: record values are arbitrary user objects, which protobuf would need a
// schema for. It has not yet been measured against JSON and a hand-rolled layout; the worker
// profile puts msgpack at ~1-2 % of CPU today.
//
//   u8  magic 0xED | u8 version | u8 kind | u8 flags (bit 0: a DATA batch carries a watermark)
//   u32 sequence (per channel, from 1) | u16 keyGroup | u16 senderLength | sender (UTF-8)
//   u32 recordCount | body: msgpack records for DATA, u32 checkpointId for BARRIER,
//   f64 watermark (ms; -Infinity allowed) + u8 flags (bit 0: the sender is idle) for WATERMARK
// A DATA batch with flag bit 0 has the WATERMARK body (9 bytes) before its records: the
// watermark holds after the batch's records, as if a WATERMARK batch followed it. Senders let a
// watermark ride on the channel's next data batch rather than send a message of its own
// (worker/channel/channel-sender.ts, "Watermarks").
import { Packr } from 'msgpackr';

export const BATCH_MAGIC = 0xed;
export const BATCH_VERSION = 3;

/** Message kinds on a channel; barriers and watermarks travel in-band (docs/ARCHITECTURE.md). */
export const BatchKind = { DATA: 1, BARRIER: 2, WATERMARK: 3 } as const;
export type BatchKind = (typeof BatchKind)[keyof typeof BatchKind];

export interface Record {
  /** The key the record was shuffled by ("" on unkeyed edges). */
  key: string;
  /** Event time in ms since the epoch, or -1 when none was assigned. */
  timestamp: number;
  value: unknown;
  /** The source position the record derives from (core/record-origin.ts). @default -1 (none) */
  origin?: number;
}

export interface RecordBatch {
  kind: BatchKind;
  /** Channel sequence number: consecutive per (sender, keyGroup), from 1. */
  sequence: number;
  keyGroup: number;
  /** The sending task; with keyGroup it names the channel. */
  sender: string;
  records: Record[];
  /** BARRIER only: the checkpoint the barrier belongs to. */
  checkpointId?: number;
  /**
   * WATERMARK, and optionally DATA (after its records): event time in ms up to which the sender
   * promises no more records on time.
   */
  watermark?: number;
  /** With watermark: the sender is idle (sends nothing for now) and must not hold time back. */
  idle?: boolean;
}

const HEADER_FIXED = 14;
const WATERMARK_BODY = 9;
const FLAG_WATERMARK = 1;
/** Values per record in a DATA body: key, timestamp, value, origin. */
const FIELDS = 4;
// One Packr reused: no per-batch allocation of encoder state. Records are plain data: no
// structured-clone extensions, maps decode as objects.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });
const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

/**
 * The batch's bytes; `trailerBytes` more are left zero at the end for a signature
 * (worker/channel/batch-signing.ts), which decoders never see (the receiver strips it).
 */
export function encodeBatch(batch: RecordBatch, trailerBytes = 0): Uint8Array {
  const sender = utf8.encode(batch.sender);
  if (sender.length > 0xffff) throw new RangeError('sender id too long');
  let body: Uint8Array | undefined;
  const riding = batch.kind === BatchKind.DATA && batch.watermark !== undefined;
  if (batch.kind === BatchKind.DATA) {
    const flat: unknown[] = new Array(batch.records.length * FIELDS);
    let i = 0;
    for (const r of batch.records) {
      flat[i++] = r.key;
      flat[i++] = r.timestamp;
      flat[i++] = r.value;
      flat[i++] = r.origin ?? -1;
    }
    body = packr.pack(flat);
  } else if (batch.kind === BatchKind.BARRIER) {
    body = new Uint8Array(4);
    new DataView(body.buffer).setUint32(0, batch.checkpointId ?? 0);
  } else if (batch.kind === BatchKind.WATERMARK) {
    body = new Uint8Array(WATERMARK_BODY);
  }
  const headerLength = HEADER_FIXED + sender.length + 4;
  const watermarkLength = riding ? WATERMARK_BODY : 0;
  const out = new Uint8Array(headerLength + watermarkLength + (body?.length ?? 0) + trailerBytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = BATCH_MAGIC;
  out[1] = BATCH_VERSION;
  out[2] = batch.kind;
  out[3] = riding ? FLAG_WATERMARK : 0;
  view.setUint32(4, batch.sequence);
  view.setUint16(8, batch.keyGroup);
  view.setUint16(10, sender.length);
  // bytes 12..13 reserved (flags)
  out.set(sender, HEADER_FIXED);
  view.setUint32(HEADER_FIXED + sender.length, batch.records.length);
  if (batch.kind === BatchKind.WATERMARK || riding) {
    view.setFloat64(headerLength, batch.watermark ?? Number.NEGATIVE_INFINITY);
    out[headerLength + 8] = batch.idle === true ? 1 : 0;
  }
  if (body && batch.kind !== BatchKind.WATERMARK) out.set(body, headerLength + watermarkLength);
  return out;
}

export interface BatchHeader {
  kind: BatchKind;
  sequence: number;
  keyGroup: number;
  sender: string;
  recordCount: number;
  /** Where the records (DATA) or the barrier's id begin. */
  bodyOffset: number;
  /** Where the watermark body begins: a WATERMARK batch, or a DATA batch that carries one; -1: none. */
  watermarkOffset: number;
}

export function decodeHeader(bytes: Uint8Array): BatchHeader {
  if (bytes.length < HEADER_FIXED + 4) throw new RangeError(`record batch of ${bytes.length} bytes is shorter than its header`);
  if (bytes[0] !== BATCH_MAGIC) throw new RangeError(`record batch magic ${bytes[0]} is not ${BATCH_MAGIC}`);
  if (bytes[1] !== BATCH_VERSION) throw new RangeError(`record batch version ${bytes[1]} is not ${BATCH_VERSION}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = bytes[2] as BatchKind;
  if (kind !== BatchKind.DATA && kind !== BatchKind.BARRIER && kind !== BatchKind.WATERMARK) throw new RangeError(`unknown record batch kind ${kind}`);
  const senderLength = view.getUint16(10);
  if (bytes.length < HEADER_FIXED + senderLength + 4) throw new RangeError('record batch truncated in its header');
  const end = HEADER_FIXED + senderLength + 4;
  const riding = kind === BatchKind.DATA && (bytes[3]! & FLAG_WATERMARK) !== 0;
  return {
    kind,
    sequence: view.getUint32(4),
    keyGroup: view.getUint16(8),
    sender: utf8d.decode(bytes.subarray(HEADER_FIXED, HEADER_FIXED + senderLength)),
    recordCount: view.getUint32(HEADER_FIXED + senderLength),
    bodyOffset: riding ? end + WATERMARK_BODY : end,
    watermarkOffset: kind === BatchKind.WATERMARK || riding ? end : -1,
  };
}

export function decodeRecords(bytes: Uint8Array, header: BatchHeader): Record[] {
  if (header.kind !== BatchKind.DATA) return [];
  const flat = packr.unpack(bytes.subarray(header.bodyOffset)) as unknown[];
  if (!Array.isArray(flat) || flat.length !== header.recordCount * FIELDS) {
    throw new RangeError(`record batch body holds ${Array.isArray(flat) ? flat.length / FIELDS : 'no'} records, header says ${header.recordCount}`);
  }
  const records: Record[] = new Array(header.recordCount);
  for (let i = 0, j = 0; i < header.recordCount; i++, j += FIELDS) {
    records[i] = { key: flat[j] as string, timestamp: flat[j + 1] as number, value: flat[j + 2], origin: flat[j + 3] as number };
  }
  return records;
}

/** The checkpoint id a BARRIER batch carries. */
export function decodeBarrier(bytes: Uint8Array, header: BatchHeader): number {
  if (header.kind !== BatchKind.BARRIER || bytes.length < header.bodyOffset + 4) throw new RangeError('not a barrier batch');
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(header.bodyOffset);
}

/** The watermark a WATERMARK batch (or a DATA batch that carries one) holds, and whether its sender is idle. */
export function decodeWatermark(bytes: Uint8Array, header: BatchHeader): { watermark: number; idle: boolean } {
  const at = header.watermarkOffset;
  if (at < 0 || bytes.length < at + WATERMARK_BODY) throw new RangeError('the batch carries no watermark');
  const watermark = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(at);
  if (Number.isNaN(watermark)) throw new RangeError('a watermark batch carries NaN');
  return { watermark, idle: (bytes[at + 8]! & 1) === 1 };
}

export function decodeBatch(bytes: Uint8Array): RecordBatch {
  const header = decodeHeader(bytes);
  const batch: RecordBatch = { kind: header.kind, sequence: header.sequence, keyGroup: header.keyGroup, sender: header.sender, records: decodeRecords(bytes, header) };
  if (header.kind === BatchKind.BARRIER) batch.checkpointId = decodeBarrier(bytes, header);
  if (header.watermarkOffset >= 0) Object.assign(batch, decodeWatermark(bytes, header));
  return batch;
}
