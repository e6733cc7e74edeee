// The one msgpack codec of state values. Everything that stores a value into the state backend or
// reads one back (the backend's own value and map state, state handles, feature metadata and
// history, the query path) goes through it, so a value written by one is read by any other.

import { Packr } from 'msgpackr';

// One encoder for all state values: values are plain data, maps decode as objects.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

// pack() returns a view into msgpackr's module-wide output buffer, which any Packr in the process
// may redirect (useBuffer) and then overwrite: an overlay keeps its own copy.
export function encodeValue(value: unknown): Buffer {
  return Buffer.from(packr.pack(value));
}

export function decodeValue(entry: Buffer | null): unknown | undefined {
  return entry === null ? undefined : packr.unpack(entry);
}

/**
 * The msgpack bytes of a value as a view into msgpackr's shared output buffer: valid only until the
 * next pack anywhere in the process, for callers that copy it at once (a concat, a TTL header).
 */
export function packValueView(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes msgpack bytes written by encodeValue or packValueView. */
export function unpackValue(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/**
 * Stored bytes are never changed in place (an overlay, the read cache and RocksDB reads each hold
 * their own), so their decoded value is kept with them: a feature read of a hot map decodes each
 * entry once, not once per read. The value is SHARED by every reader: for readers that never
 * change it (the query path, history snapshots); user code gets copies (state-handles.ts).
 */
const decodedOf = new WeakMap<Buffer, unknown>();

export function decodeShared(bytes: Buffer): unknown {
  let value = decodedOf.get(bytes);
  if (value === undefined && !decodedOf.has(bytes)) decodedOf.set(bytes, (value = packr.unpack(bytes)));
  return value;
}
