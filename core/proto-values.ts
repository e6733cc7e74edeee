// JSON values and times to and from their well-known protobuf types (google.protobuf.Value and
// Timestamp) in the object shapes @grpc/proto-loader uses (oneofs as a `kind` field, 64-bit
// integers as strings): the v2 FeatureService answers typed values, and its clients read them.
//
// The shapes are declared here rather than imported from proto/gen: the generated Value and Struct
// types import each other, which the import-cycle check (madge) reports.

/** google.protobuf.Value as proto-loader encodes (any one member set) and decodes (`kind` names it). */
export interface Value {
  nullValue?: 'NULL_VALUE' | 0;
  numberValue?: number | string;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: { fields?: Record<string, Value> } | null;
  listValue?: { values?: Value[] } | null;
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue';
}
type Value__Output = Value;

/** google.protobuf.Timestamp with 64-bit seconds as a string (longs: String) or a number. */
export interface Timestamp {
  seconds?: string | number;
  nanos?: number;
}
type Timestamp__Output = Timestamp;

/** Nesting deeper than this is refused (a recursive encoder overflows the stack; docs/STACK-NOTES.md). */
export const MAX_DEPTH = 100;

/**
 * A state value as JSON text, rendered as toProtoValue renders it: a bigint is a number (where
 * JSON.stringify throws), a value with no JSON form (undefined) is null.
 */
export function toJsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch (e) {
    if (!(e instanceof TypeError) || !/BigInt/i.test(e.message)) throw e;
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)) ?? 'null';
  }
}

/** A JSON-compatible value as a google.protobuf.Value. */
export function toProtoValue(value: unknown, depth = 0): Value {
  if (depth > MAX_DEPTH) throw new RangeError(`a value nested deeper than ${MAX_DEPTH} levels`);
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE' };
  switch (typeof value) {
    case 'number':
      return { numberValue: value };
    case 'string':
      return { stringValue: value };
    case 'boolean':
      return { boolValue: value };
    case 'bigint':
      return { numberValue: Number(value) };
    default:
      if (Array.isArray(value)) return { listValue: { values: value.map((v) => toProtoValue(v, depth + 1)) } };
      if (typeof value === 'object') {
        const fields: Record<string, Value> = {};
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) if (v !== undefined) setOwn(fields, k, toProtoValue(v, depth + 1));
        return { structValue: { fields } };
      }
      return { stringValue: String(value) };
  }
}

/** A google.protobuf.Value as decoded by proto-loader, back to a plain JSON value. */
export function fromProtoValue(value: Value__Output | null | undefined): unknown {
  if (value === null || value === undefined) return null;
  switch (value.kind) {
    case 'numberValue':
      return Number(value.numberValue);
    case 'stringValue':
      return value.stringValue;
    case 'boolValue':
      return value.boolValue;
    case 'listValue':
      return (value.listValue?.values ?? []).map(fromProtoValue);
    case 'structValue': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value.structValue?.fields ?? {})) setOwn(out, k, fromProtoValue(v));
      return out;
    }
    default:
      return null;
  }
}

/**
 * Sets an own property, "__proto__" included: JSON.parse makes that key an own property, and a plain
 * assignment would set the object's prototype instead, losing the key.
 */
function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/** Milliseconds since the epoch as a google.protobuf.Timestamp. */
export function toTimestamp(unixMs: number): Timestamp {
  const seconds = Math.floor(unixMs / 1000);
  return { seconds: String(seconds), nanos: Math.round((unixMs - seconds * 1000) * 1_000_000) };
}

/** A google.protobuf.Timestamp in milliseconds since the epoch (sub-millisecond parts dropped). */
export function fromTimestamp(t: Timestamp__Output | Timestamp): number {
  return Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1_000_000);
}
