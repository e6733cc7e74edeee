// The key codec of the state backend. A key is
//   [u8 stageLength][stage][u16 keyGroup][u8 stateLength][state][u16 keyLength][key]
// then [mapKey] for map state. Length prefixes keep every tuple distinct and make one stage's key
// group a contiguous range; a map's entries share the prefix up to the key and sort by mapKey.

import { EddyError, InvalidArgumentError } from '../../core/errors.ts';

// Reused for every encode: the hot path turns it into a latin1 string (the overlay key) without
// allocating a Buffer per call. mapPrefixLength is a second return value of encodeInto.
let scratch = Buffer.allocUnsafe(1024);
let mapPrefixLength = 0;

/** The length (latin1 characters) of the map prefix of the key the last encode wrote. */
export function lastMapPrefixLength(): number {
  return mapPrefixLength;
}

function encodeInto(stage: string, keyGroup: number, state: string | undefined, key: string | undefined, mapKey: string | undefined): number {
  if (!Number.isInteger(keyGroup) || keyGroup < 0 || keyGroup > 0xffff) throw new InvalidArgumentError(`key group ${keyGroup} is not an integer in 0..65535`);
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  const need = 6 + 3 * (stage.length + (state?.length ?? 0) + (key?.length ?? 0) + (mapKey?.length ?? 0));
  if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  const stageBytes = scratch.write(stage, 1, 'utf8');
  if (stageBytes > 0xff) throw new InvalidArgumentError(`stage name is ${stageBytes} bytes; at most 255`);
  scratch[0] = stageBytes;
  let p = scratch.writeUInt16BE(keyGroup, 1 + stageBytes);
  if (state === undefined || key === undefined) return p;
  const stateBytes = scratch.write(state, p + 1, 'utf8');
  if (stateBytes > 0xff) throw new InvalidArgumentError(`state name is ${stateBytes} bytes; at most 255`);
  scratch[p] = stateBytes;
  p += 1 + stateBytes;
  const keyBytes = scratch.write(key, p + 2, 'utf8');
  if (keyBytes > 0xffff) throw new InvalidArgumentError(`state key is ${keyBytes} bytes; at most 65535`);
  scratch.writeUInt16BE(keyBytes, p);
  p += 2 + keyBytes;
  mapPrefixLength = p;
  if (mapKey !== undefined) p += scratch.write(mapKey, p, 'utf8');
  return p;
}

/** The RocksDB key of a value (no mapKey) or of a map entry. */
export function encodeStateKey(stage: string, keyGroup: number, state: string, key: string, mapKey?: string): Buffer {
  const end = encodeInto(stage, keyGroup, state, key, mapKey);
  return Buffer.from(scratch.subarray(0, end));
}

/** The prefix shared by every key of one stage's key group. */
export function keyGroupPrefix(stage: string, keyGroup: number): Buffer {
  const end = encodeInto(stage, keyGroup, undefined, undefined, undefined);
  return Buffer.from(scratch.subarray(0, end));
}

/**
 * The stage and key group of a state key (or key-group prefix), read from its first bytes;
 * prefixLength is the length of keyGroupPrefix(stage, keyGroup).
 */
export function decodeKeyGroupPrefix(key: Uint8Array): { stage: string; keyGroup: number; prefixLength: number } {
  const stageLength = key[0];
  if (stageLength === undefined || key.length < stageLength + 3) throw new InvalidArgumentError(`state key of ${key.length} bytes is shorter than its key-group prefix`);
  const bytes = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return { stage: bytes.toString('utf8', 1, 1 + stageLength), keyGroup: bytes.readUInt16BE(1 + stageLength), prefixLength: stageLength + 3 };
}

/**
 * The key group of a state key (or key-group prefix) given as its latin1 string (one char per
 * byte, as overlays key their entries), read from two chars: no Buffer per key.
 */
export function keyGroupOfKeyString(key: string): number {
  const at = key.charCodeAt(0) + 1;
  return (key.charCodeAt(at) << 8) | key.charCodeAt(at + 1);
}

// The length is computed before scratch is read: encodeInto may replace scratch by a larger one.
export function encodedString(stage: string, keyGroup: number, state: string, key: string, mapKey: string | undefined): string {
  const end = encodeInto(stage, keyGroup, state, key, mapKey);
  return scratch.toString('latin1', 0, end);
}

/** The smallest key greater than every key starting with prefix. */
export function prefixUpperBound(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] !== 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  // Unreachable for our prefixes: the first byte is a length and the second starts a UTF-8 string.
  throw new EddyError('INTERNAL', 'state key prefix has no upper bound');
}
