// An eddy.v2 GetFeaturesResponse read straight into the client's rows (sdk/feature-client.ts).
//
// Why by hand: proto-loader decodes each google.protobuf.Value into a message object, converts it
// to a plain object tree (oneof names, 64-bit integers as strings) and the client then walks that
// tree again (fromProtoValue): most of a BatchGet's client CPU (docs/BENCHMARKS.md, "Feature
// serving"). This walks the bytes once with protobufjs's Reader and builds each value as JSON.parse
// would. Any valid encoding of the schema is read (fields in any order, unknown fields skipped, a
// singular field's last occurrence winning, as protobufjs's generated decoders have it);
// the unit test compares it with the generated codec on arbitrary responses
// (test/unit/feature-response-decoder.test.ts). The schema: proto/eddy/v2/feature_service.proto,
// google/protobuf/struct.proto and timestamp.proto.
import protobuf from 'protobufjs';
import { MAX_DEPTH } from '../core/proto-values.ts';

type Reader = protobuf.Reader;

/** One feature's value in a row, as read: `value` is null when not found. */
export interface DecodedFeatureValue {
  feature: string;
  found: boolean;
  value: unknown;
  /** ms since the epoch; null when the response has none. */
  eventTimeUnixMs: number | null;
  checkpointId: number;
}

/** A row: its entity id and its values in the response's order. */
export interface DecodedFeatureRow {
  entityId: string;
  values: DecodedFeatureValue[];
}

/** GetFeaturesResponse { repeated FeatureRow rows = 1 }. */
export function decodeFeaturesResponse(bytes: Uint8Array): DecodedFeatureRow[] {
  // A Buffer's reader (readString slices the Buffer).
  const r = protobuf.Reader.create(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const rows: DecodedFeatureRow[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | 2)) rows.push(readRow(r, r.uint32()));
    else r.skipType(tag & 7);
  }
  return rows;
}

/** FeatureRow { string entity_id = 1; repeated FeatureValue values = 2 }. */
function readRow(r: Reader, length: number): DecodedFeatureRow {
  const end = r.pos + length;
  const row: DecodedFeatureRow = { entityId: '', values: [] };
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | 2)) row.entityId = readString(r);
    else if (tag === ((2 << 3) | 2)) row.values.push(readFeatureValue(r, r.uint32()));
    else r.skipType(tag & 7);
  }
  return row;
}

/**
 * FeatureValue { feature 1, found 2, value 3 (Value), event_time 4 (Timestamp), key_group 5,
 * checkpoint_id 6, uncommitted 7, beyond_retention 8, value_json 9 }.
 */
function readFeatureValue(r: Reader, length: number): DecodedFeatureValue {
  const end = r.pos + length;
  const v: DecodedFeatureValue = { feature: '', found: false, value: null, eventTimeUnixMs: null, checkpointId: 0 };
  let value: unknown = null;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | 2:
        v.feature = readString(r);
        break;
      case (2 << 3) | 0:
        v.found = r.bool();
        break;
      case (3 << 3) | 2:
        value = readValue(r, r.uint32(), 0);
        break;
      case (9 << 3) | 2: {
        // VALUE_FORMAT_JSON: the value as JSON text (empty: unset, as proto3 reads it).
        const text = r.string();
        if (text !== '') value = JSON.parse(text);
        break;
      }
      case (4 << 3) | 2:
        v.eventTimeUnixMs = readTimestamp(r, r.uint32());
        break;
      case (6 << 3) | 0:
        v.checkpointId = protobuf.util.LongBits.from(r.uint64()).toNumber(true);
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  v.value = v.found ? value : null;
  return v;
}

/** Timestamp { int64 seconds = 1; int32 nanos = 2 } as ms since the epoch. */
function readTimestamp(r: Reader, length: number): number {
  const end = r.pos + length;
  let seconds = 0;
  let nanos = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | 0)) seconds = protobuf.util.LongBits.from(r.int64()).toNumber(false);
    else if (tag === ((2 << 3) | 0)) nanos = r.int32();
    else r.skipType(tag & 7);
  }
  return seconds * 1000 + Math.floor(nanos / 1_000_000);
}

/**
 * Value { oneof kind { NullValue null_value = 1; double number_value = 2; string string_value = 3;
 * bool bool_value = 4; Struct struct_value = 5; ListValue list_value = 6; } } as a JSON value: the
 * last member present wins, none present is null.
 */
function readValue(r: Reader, length: number, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new RangeError(`a value nested deeper than ${MAX_DEPTH} levels`);
  const end = r.pos + length;
  let value: unknown = null;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case (1 << 3) | 0:
        r.int32();
        value = null;
        break;
      case (2 << 3) | 1:
        value = r.double();
        break;
      case (3 << 3) | 2:
        value = readString(r);
        break;
      case (4 << 3) | 0:
        value = r.bool();
        break;
      case (5 << 3) | 2:
        value = readStruct(r, r.uint32(), depth);
        break;
      case (6 << 3) | 2:
        value = readList(r, r.uint32(), depth);
        break;
      default:
        r.skipType(tag & 7);
    }
  }
  return value;
}

/** Struct { map<string, Value> fields = 1 }: each entry { string key = 1; Value value = 2 }. */
function readStruct(r: Reader, length: number, depth: number): Record<string, unknown> {
  const end = r.pos + length;
  const out: Record<string, unknown> = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag !== ((1 << 3) | 2)) {
      r.skipType(tag & 7);
      continue;
    }
    const entryEnd = r.uint32() + r.pos;
    let key = '';
    let value: unknown = null;
    while (r.pos < entryEnd) {
      const t = r.uint32();
      if (t === ((1 << 3) | 2)) key = readString(r);
      else if (t === ((2 << 3) | 2)) value = readValue(r, r.uint32(), depth + 1);
      else r.skipType(t & 7);
    }
    // An own property, "__proto__" included (JSON.parse makes it one; an assignment would not).
    if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[key] = value;
  }
  return out;
}

/** ListValue { repeated Value values = 1 }. */
function readList(r: Reader, length: number, depth: number): unknown[] {
  const end = r.pos + length;
  const out: unknown[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === ((1 << 3) | 2)) out.push(readValue(r, r.uint32(), depth + 1));
    else r.skipType(tag & 7);
  }
  return out;
}

/**
 * A string field. Short ones (map keys, enum-like values, feature names: the same few strings in
 * every row) come from a small table of the strings last read, by their bytes: a UTF-8 decode
 * costs several times a lookup (docs/BENCHMARKS.md, "Feature serving").
 */
function readString(r: Reader): string {
  const length = r.uint32();
  const start = r.pos;
  const end = start + length;
  if (end > r.len) throw new RangeError(`index out of range: ${end} > ${r.len}`);
  r.pos = end;
  const buf = r.buf as Buffer;
  if (length > INTERNED_MAX_BYTES) return buf.toString('utf8', start, end);
  let hash = length;
  for (let i = start; i < end; i++) hash = (Math.imul(hash, 31) + buf[i]!) | 0;
  const slot = hash & (INTERNED_SLOTS - 1);
  const known = interned[slot];
  if (known !== undefined && known.bytes.length === length) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (known.bytes[i] !== buf[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return known.text;
  }
  const text = buf.toString('utf8', start, end);
  interned[slot] = { bytes: Uint8Array.prototype.slice.call(buf, start, end), text };
  return text;
}

const INTERNED_MAX_BYTES = 16;
const INTERNED_SLOTS = 256;
const interned = new Array<{ bytes: Uint8Array; text: string } | undefined>(INTERNED_SLOTS);
