// The eddy.v2 GetFeaturesResponse of a direct read, encoded straight from the state's values into
// protobuf bytes in the job's thread (worker/query/query-responder.ts, serve): the serving endpoint
// passes the bytes on as the call's response (docs/ARCHITECTURE.md, "Queries", direct reads).
//
// Why by hand: the general path costs a JSON.stringify per value in the job's thread, then a
// JSON.parse, a google.protobuf.Value object tree (toProtoValue) and protobufjs's fromObject and
// encode in the worker's thread — most of a direct Get's CPU beyond the gRPC hop itself
// (docs/BENCHMARKS.md, "Feature serving"). This writes each value once, as JSON would render it:
// toJSON is honoured (a Date is its ISO string), a non-finite number is null, -0 is 0, undefined and
// functions are left out of objects and null in arrays, a bigint is a number. The schema is that
// of proto/eddy/v2/feature_service.proto and google/protobuf/struct.proto and timestamp.proto; the
// unit test decodes the bytes with the generated codec (test/unit/feature-response-encoder.test.ts).

// Nesting deeper than core/proto-values.ts's limit is refused, as there (docs/STACK-NOTES.md, "V8 stack").
import { MAX_DEPTH, toJsonText } from '../../core/proto-values.ts';
import { isSharedMapObject } from '../state/merged-reads.ts';

/** Strings up to this many UTF-16 units are written by hand when ASCII. */
const SHORT_STRING = 32;

// Wire types.
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;

/** One row's value of one feature, as the state read it. */
export interface EncodedFeatureValue {
  feature: string;
  found: boolean;
  value: unknown;
  eventTimeMs: number | undefined;
  keyGroup: number;
  checkpointId: number;
  uncommitted: boolean;
  beyondRetention: boolean;
}

/**
 * A growable protobuf writer. Length-delimited fields reserve one byte for their length and move
 * their content when it needs more (a value of 128 bytes or more): no second pass, no
 * per-field buffers. One writer is reused for every response of a thread.
 */
export class ProtoWriter {
  #buf = Buffer.allocUnsafe(4096);
  #pos = 0;

  reset(): void {
    this.#pos = 0;
  }

  /** The bytes written since the last reset, as a copy (the writer's buffer is reused). */
  finish(): Uint8Array {
    return new Uint8Array(this.#buf.subarray(0, this.#pos));
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n));
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  /** A non-negative integer up to 2^53 as a varint. */
  varint(n: number): void {
    this.#ensure(10);
    const buf = this.#buf;
    let pos = this.#pos;
    while (n >= 0x80) {
      buf[pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    buf[pos++] = n;
    this.#pos = pos;
  }

  /** A signed 64-bit integer (int64) as a varint: negative ones take ten bytes (two's complement). */
  int64(n: number): void {
    if (n >= 0) return this.varint(n);
    let v = BigInt.asUintN(64, BigInt(n));
    this.#ensure(10);
    while (v >= 0x80n) {
      this.#buf[this.#pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#pos++] = Number(v);
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  double(field: number, x: number): void {
    this.tag(field, FIXED64);
    this.#ensure(8);
    this.#buf.writeDoubleLE(x, this.#pos);
    this.#pos += 8;
  }

  bool(field: number, b: boolean): void {
    if (!b) return;
    this.tag(field, VARINT);
    this.varint(1);
  }

  uint(field: number, n: number): void {
    if (n === 0) return;
    this.tag(field, VARINT);
    this.varint(n);
  }

  /** A string field (written also when empty: map keys and oneof members must be present). */
  string(field: number, s: string): void {
    this.tag(field, LEN);
    // At most 3 bytes per UTF-16 unit; the length is written after, in the space it needs.
    const start = this.begin(s.length * 3);
    if (s.length <= SHORT_STRING) {
      // Short ASCII (keys, enum-like values) byte by byte: cheaper than a native UTF-8 write.
      const buf = this.#buf;
      let pos = this.#pos;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[pos++] = c;
      }
      if (i === s.length) {
        this.#pos = pos;
        return this.end(start);
      }
    }
    this.#pos += this.#buf.write(s, this.#pos, 'utf8');
    this.end(start);
  }

  /**
   * Opens a length-delimited field's content (after its tag): returns where its length goes.
   * `contentHint` bytes are made room for (they may be exceeded).
   */
  begin(contentHint = 0): number {
    this.#ensure(1 + contentHint);
    return this.#pos++;
  }

  /** Where the next byte goes. */
  get position(): number {
    return this.#pos;
  }

  /** A copy of the bytes written since `from` (a position). */
  copyFrom(from: number): Uint8Array {
    return new Uint8Array(this.#buf.subarray(from, this.#pos));
  }

  /** Bytes as they are (an encoding kept from before). */
  raw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** Closes what begin() opened: writes the length, moving the content if it needs more than one byte. */
  end(start: number): void {
    const length = this.#pos - start - 1;
    if (length < 0x80) {
      this.#buf[start] = length;
      return;
    }
    let extra = 0;
    for (let l = length >> 7; l > 0; l >>= 7) extra++;
    this.#ensure(extra);
    this.#buf.copyWithin(start + 1 + extra, start + 1, this.#pos);
    let n = length;
    let p = start;
    while (n >= 0x80) {
      this.#buf[p++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.#buf[p] = n;
    this.#pos += extra;
  }
}

/**
 * A JSON value as google.protobuf.Value's content (the fields inside it, without its own tag and
 * length): null_value 1, number_value 2, string_value 3, bool_value 4, struct_value 5, list_value 6.
 */
function writeValue(w: ProtoWriter, value: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new RangeError(`a value nested deeper than ${MAX_DEPTH} levels`);
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON(): unknown }).toJSON();
  }
  switch (typeof value) {
    case 'number':
      // JSON has no -0: it is 0.
      if (Number.isFinite(value)) return w.double(2, value === 0 ? 0 : value);
      break;
    case 'string':
      return w.string(3, value);
    case 'boolean':
      // Written also when false: a oneof member is present with its default value.
      w.tag(4, VARINT);
      return w.varint(value ? 1 : 0);
    case 'bigint':
      return w.double(2, Number(value));
    case 'object': {
      if (value === null) break;
      if (Array.isArray(value)) {
        w.tag(6, LEN);
        const list = w.begin();
        for (const item of value) {
          w.tag(1, LEN);
          const at = w.begin();
          writeValue(w, item === undefined || typeof item === 'function' || typeof item === 'symbol' ? null : item, depth + 1);
          w.end(at);
        }
        return w.end(list);
      }
      w.tag(5, LEN);
      const struct = w.begin();
      for (const key of Object.keys(value)) {
        const item = (value as Record<string, unknown>)[key];
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        // Struct.fields is a map<string, Value>: each entry a message { key = 1; value = 2 }.
        w.tag(1, LEN);
        const entry = w.begin();
        w.string(1, key);
        w.tag(2, LEN);
        const at = w.begin();
        writeValue(w, item, depth + 1);
        w.end(at);
        w.end(entry);
      }
      return w.end(struct);
    }
  }
  // null, undefined, a non-finite number (JSON's null).
  w.tag(1, VARINT);
  w.varint(0);
}

/** FeatureValue: feature 1, found 2, value 3, event_time 4, key_group 5, checkpoint_id 6, uncommitted 7, beyond_retention 8. */
/** Encodings kept with shared map objects: the Value field's length and content, or the JSON text. */
const valueOf = new WeakMap<object, Uint8Array>();
const jsonOf = new WeakMap<object, string>();

function jsonTextOf(shared: object): string {
  let text = jsonOf.get(shared);
  if (text === undefined) jsonOf.set(shared, (text = toJsonText(shared)));
  return text;
}

function writeFeatureValue(w: ProtoWriter, v: EncodedFeatureValue, json: boolean): void {
  w.string(1, v.feature);
  w.bool(2, v.found);
  if (v.found) {
    // A map feature's shared object (StateBackend.mapObjectNow) keeps its encoding: a hot entity's
    // value is written once until a commit changes it.
    const value = v.value;
    const shared = isSharedMapObject(value) ? value : undefined;
    if (json) w.string(9, shared !== undefined ? jsonTextOf(shared) : toJsonText(value));
    else {
      w.tag(3, LEN);
      const kept = shared !== undefined ? valueOf.get(shared) : undefined;
      if (kept !== undefined) w.raw(kept);
      else {
        const from = w.position;
        const at = w.begin();
        writeValue(w, value, 0);
        w.end(at);
        if (shared !== undefined) valueOf.set(shared, w.copyFrom(from));
      }
    }
    if (v.eventTimeMs !== undefined) {
      // Timestamp: seconds 1 (int64), nanos 2 (int32), as core/proto-values.ts toTimestamp.
      const seconds = Math.floor(v.eventTimeMs / 1000);
      const nanos = Math.round((v.eventTimeMs - seconds * 1000) * 1_000_000);
      w.tag(4, LEN);
      const ts = w.begin();
      if (seconds !== 0) {
        w.tag(1, VARINT);
        w.int64(seconds);
      }
      w.uint(2, nanos);
      w.end(ts);
    }
  }
  w.uint(5, v.keyGroup);
  w.uint(6, v.checkpointId);
  w.bool(7, v.uncommitted);
  w.bool(8, v.beyondRetention);
}

/**
 * GetFeaturesResponse { repeated FeatureRow rows = 1 }, FeatureRow { entity_id = 1; repeated
 * FeatureValue values = 2 }: one row per entity id in the order given, `valueOf(row, f)` the
 * value of the row's f-th feature. `json`: each value as JSON text (value_json, VALUE_FORMAT_JSON)
 * instead of a google.protobuf.Value.
 */
export function encodeFeaturesResponse(w: ProtoWriter, entityIds: readonly string[], features: number, valueOf: (row: number, feature: number) => EncodedFeatureValue, json = false): Uint8Array {
  w.reset();
  for (let r = 0; r < entityIds.length; r++) {
    w.tag(1, LEN);
    const row = w.begin();
    w.string(1, entityIds[r]!);
    for (let f = 0; f < features; f++) {
      w.tag(2, LEN);
      const at = w.begin();
      writeFeatureValue(w, valueOf(r, f), json);
      w.end(at);
    }
    w.end(row);
  }
  return w.finish();
}
