// The bytes of checkpoints in the object store (docs/ARCHITECTURE.md, "Checkpoints"): delta and snapshot
// objects with a per-key-group index, so that restoring one key group is one range read, and the
// _metadata commit record. Every part carries a crc32; every failed check throws
// CheckpointCorruptError naming the object, so a restore fails loudly instead of loading bad state.
//
// Delta / snapshot object, all integers big-endian:
//
//   header   magic "EDDYCKPT" | u16 version | u16 flags (bit 0: snapshot) | u32 indexLength | u32 indexCrc32
//   index    u8 stageLength | stage (UTF-8) | u32 sectionCount |
//            per section: u16 keyGroup | u64 offset (from the file start) | u32 length | u32 entryCount | u32 crc32
//   sections one per key group, ascending keyGroup, contiguous, starting right after the index;
//            entries: u32 keyLength | key (the full RocksDB key) | i32 valueLength (-1: tombstone) | value
//
// indexCrc32 covers the first 16 header bytes and then the index: a flipped flag (snapshot or not)
// or index length is caught like a flipped index byte. A section's crc32 covers its bytes only, so
// that an ObjectRef (key, offset, length, crc32) is enough to verify a range read.

import { crc32 } from 'node:zlib';
import { CheckpointCorruptError, InvalidArgumentError } from './errors.ts';

export const CHECKPOINT_MAGIC = 'EDDYCKPT';
export const CHECKPOINT_FORMAT_VERSION = 1;
/** Bytes of the fixed header; the index follows. */
export const CHECKPOINT_HEADER_LENGTH = 20;

const MAGIC_BYTES = Buffer.from(CHECKPOINT_MAGIC, 'latin1');
const FLAG_SNAPSHOT = 1;
const SECTION_INDEX_LENGTH = 22;
// An index holds at most one section per u16 key group: anything longer is a corrupt length, and
// a reader must not be asked to range-read gigabytes because of one flipped bit.
const MAX_INDEX_LENGTH = 1 + 255 + 4 + 0x10000 * SECTION_INDEX_LENGTH;
// keyLength + valueLength.
const MIN_ENTRY_LENGTH = 8;
const MAX_U32 = 0xffffffff;
const MAX_VALUE_LENGTH = 0x7fffffff;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The entries of one key group; value null is a tombstone (the key was deleted). */
export interface KeyGroupEntries {
  keyGroup: number;
  entries: Array<[key: Uint8Array, value: Uint8Array | null]>;
}

/**
 * The entries of one key group as two columns, entry i being (keys[i], values[i]): what a
 * checkpoint's delta is encoded from. A key may be a latin1 string (one char per byte, as the
 * state backend's overlays key their entries), so that encoding a delta allocates nothing per entry.
 */
export interface KeyGroupColumns {
  keyGroup: number;
  keys: ReadonlyArray<Uint8Array | string>;
  values: ReadonlyArray<Uint8Array | null>;
}

export interface CheckpointSection {
  keyGroup: number;
  /** Byte offset of the section from the start of the object. */
  offset: number;
  /** Bytes of the section. */
  length: number;
  entryCount: number;
  /** crc32 of the section's bytes (zlib.crc32). */
  crc32: number;
}

export interface CheckpointIndex {
  stage: string;
  /** A full snapshot of its key groups (no tombstones) rather than a delta. */
  snapshot: boolean;
  /** Ascending by keyGroup, contiguous. */
  sections: CheckpointSection[];
  /** Bytes of header + index: where the first section starts. */
  headerLength: number;
}

/**
 * What decodeSection needs to check a section: the index entry, or a _metadata ObjectRef with its
 * key group (`{ keyGroup, ...ref }`), which has no entryCount.
 */
export type SectionBounds = Pick<CheckpointSection, 'keyGroup' | 'length' | 'crc32'> & { entryCount?: number };

// ---------------------------------------------------------------------------------------------
// Delta and snapshot objects

/** Encodes one object; groups are sorted by keyGroup, entries keep their order within a group. */
export function encodeCheckpointObject(stage: string, groups: ReadonlyArray<KeyGroupEntries | KeyGroupColumns>, options: { snapshot?: boolean } = {}): Uint8Array {
  const snapshot = options.snapshot === true;
  const stageBytes = Buffer.from(stage, 'utf8');
  if (stageBytes.length > 0xff) throw new InvalidArgumentError(`stage name is ${stageBytes.length} bytes; at most 255`);
  const sorted = groups.map(columnsOf).sort((a, b) => a.keyGroup - b.keyGroup);
  const sectionLengths: number[] = [];
  let sectionsLength = 0;
  for (const [i, group] of sorted.entries()) {
    const { keyGroup, keys, values } = group;
    if (!Number.isInteger(keyGroup) || keyGroup < 0 || keyGroup > 0xffff) throw new InvalidArgumentError(`key group ${keyGroup} is not an integer in 0..65535`);
    if (i > 0 && sorted[i - 1]!.keyGroup === keyGroup) throw new InvalidArgumentError(`key group ${keyGroup} appears twice`);
    if (keys.length !== values.length) throw new InvalidArgumentError(`key group ${keyGroup} has ${keys.length} keys and ${values.length} values`);
    let length = 0;
    for (let e = 0; e < keys.length; e++) {
      const key = keys[e]!;
      const value = values[e]!;
      if (key.length > MAX_U32) throw new InvalidArgumentError(`a key of key group ${keyGroup} is ${key.length} bytes; at most ${MAX_U32}`);
      if (value === null) {
        if (snapshot) throw new InvalidArgumentError(`key group ${keyGroup} has a tombstone: a snapshot holds live entries only`);
      } else if (value.length > MAX_VALUE_LENGTH) {
        throw new InvalidArgumentError(`a value of key group ${keyGroup} is ${value.length} bytes; at most ${MAX_VALUE_LENGTH}`);
      }
      length += MIN_ENTRY_LENGTH + key.length + (value === null ? 0 : value.length);
    }
    if (length > MAX_U32) throw new InvalidArgumentError(`key group ${keyGroup} encodes to ${length} bytes; a section holds at most ${MAX_U32}`);
    sectionLengths.push(length);
    sectionsLength += length;
  }

  const indexLength = 1 + stageBytes.length + 4 + sorted.length * SECTION_INDEX_LENGTH;
  const headerLength = CHECKPOINT_HEADER_LENGTH + indexLength;
  const out = new Uint8Array(headerLength + sectionsLength);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  // Writes latin1 string keys without a Buffer per key.
  const bytes = Buffer.from(out.buffer, out.byteOffset, out.byteLength);

  out.set(MAGIC_BYTES, 0);
  view.setUint16(8, CHECKPOINT_FORMAT_VERSION);
  view.setUint16(10, snapshot ? FLAG_SNAPSHOT : 0);
  view.setUint32(12, indexLength);

  let p = CHECKPOINT_HEADER_LENGTH;
  out[p++] = stageBytes.length;
  out.set(stageBytes, p);
  p += stageBytes.length;
  view.setUint32(p, sorted.length);
  p += 4;

  let offset = headerLength;
  for (const [i, group] of sorted.entries()) {
    const start = offset;
    const { keys, values } = group;
    for (let e = 0; e < keys.length; e++) {
      const key = keys[e]!;
      const value = values[e]!;
      view.setUint32(offset, key.length);
      if (typeof key === 'string') bytes.write(key, offset + 4, key.length, 'latin1');
      else out.set(key, offset + 4);
      offset += 4 + key.length;
      if (value === null) {
        view.setInt32(offset, -1);
        offset += 4;
      } else {
        view.setInt32(offset, value.length);
        out.set(value, offset + 4);
        offset += 4 + value.length;
      }
    }
    const length = sectionLengths[i]!;
    view.setUint16(p, group.keyGroup);
    view.setBigUint64(p + 2, BigInt(start));
    view.setUint32(p + 10, length);
    view.setUint32(p + 14, keys.length);
    view.setUint32(p + 18, crc32(out.subarray(start, start + length)));
    p += SECTION_INDEX_LENGTH;
  }

  view.setUint32(16, indexCrc(out, headerLength));
  return out;
}

/** A key group's entries as columns (two arrays per group, nothing per entry). */
function columnsOf(group: KeyGroupEntries | KeyGroupColumns): KeyGroupColumns {
  if ('keys' in group) return group;
  const keys: Uint8Array[] = new Array(group.entries.length);
  const values: Array<Uint8Array | null> = new Array(group.entries.length);
  for (let e = 0; e < group.entries.length; e++) [keys[e], values[e]] = group.entries[e]!;
  return { keyGroup: group.keyGroup, keys, values };
}

/**
 * Bytes of header + index, read from the first header bytes. Given fewer than
 * CHECKPOINT_HEADER_LENGTH bytes it returns CHECKPOINT_HEADER_LENGTH (read at least that much).
 * Throws CheckpointCorruptError on a bad magic, an unknown version or an impossible index length.
 */
export function indexLengthNeeded(headerBytes: Uint8Array, name = '(unnamed)'): number {
  if (headerBytes.length < CHECKPOINT_HEADER_LENGTH) return CHECKPOINT_HEADER_LENGTH;
  const view = viewOf(headerBytes);
  if (!MAGIC_BYTES.equals(headerBytes.subarray(0, 8))) {
    throw new CheckpointCorruptError(name, `bad magic ${Buffer.from(headerBytes.subarray(0, 8)).toString('hex')}, expected ${MAGIC_BYTES.toString('hex')} (${CHECKPOINT_MAGIC})`);
  }
  const version = view.getUint16(8);
  if (version !== CHECKPOINT_FORMAT_VERSION) throw new CheckpointCorruptError(name, `unknown format version ${version}; this build reads version ${CHECKPOINT_FORMAT_VERSION}`);
  const indexLength = view.getUint32(12);
  if (indexLength < 5 || indexLength > MAX_INDEX_LENGTH) throw new CheckpointCorruptError(name, `index length ${indexLength} is impossible (5..${MAX_INDEX_LENGTH})`);
  return CHECKPOINT_HEADER_LENGTH + indexLength;
}

/**
 * Decodes header + index from the first bytes of an object (more bytes may follow and are
 * ignored). Callers range-read a first chunk, e.g. 64 KiB, and read more when indexLengthNeeded
 * says so. When name has a '/', its parent segment must be the index's stage.
 */
export function decodeCheckpointIndex(bytes: Uint8Array, name: string): CheckpointIndex {
  if (bytes.length < CHECKPOINT_HEADER_LENGTH) throw new CheckpointCorruptError(name, `truncated: ${bytes.length} bytes, the header alone is ${CHECKPOINT_HEADER_LENGTH}`);
  const headerLength = indexLengthNeeded(bytes, name);
  if (bytes.length < headerLength) throw new CheckpointCorruptError(name, `truncated: ${bytes.length} bytes, header and index are ${headerLength}`);
  const view = viewOf(bytes);
  const expectedCrc = view.getUint32(16);
  const actualCrc = indexCrc(bytes, headerLength);
  if (actualCrc !== expectedCrc) throw new CheckpointCorruptError(name, `index has crc32 ${hex(actualCrc)}, expected ${hex(expectedCrc)}`);
  const flags = view.getUint16(10);
  if ((flags & ~FLAG_SNAPSHOT) !== 0) throw new CheckpointCorruptError(name, `unknown flags ${hex(flags)}`);

  let p = CHECKPOINT_HEADER_LENGTH;
  const stageLength = bytes[p++]!;
  if (p + stageLength + 4 > headerLength) throw new CheckpointCorruptError(name, `stage name of ${stageLength} bytes overruns the index`);
  let stage: string;
  try {
    stage = utf8.decode(bytes.subarray(p, p + stageLength));
  } catch (error) {
    throw new CheckpointCorruptError(name, 'stage name is not UTF-8', { cause: error });
  }
  p += stageLength;
  const expectedStage = stageOfObjectKey(name);
  if (expectedStage !== undefined && expectedStage !== stage) throw new CheckpointCorruptError(name, `holds stage ${JSON.stringify(stage)}, but its key places it in stage ${JSON.stringify(expectedStage)}`);
  const sectionCount = view.getUint32(p);
  p += 4;
  if (p + sectionCount * SECTION_INDEX_LENGTH !== headerLength) {
    throw new CheckpointCorruptError(name, `index of ${headerLength - CHECKPOINT_HEADER_LENGTH} bytes does not hold exactly ${sectionCount} sections`);
  }

  const sections: CheckpointSection[] = [];
  let expectedOffset = headerLength;
  for (let i = 0; i < sectionCount; i++, p += SECTION_INDEX_LENGTH) {
    const keyGroup = view.getUint16(p);
    const offset = view.getBigUint64(p + 2);
    const length = view.getUint32(p + 10);
    const entryCount = view.getUint32(p + 14);
    const sectionCrc = view.getUint32(p + 18);
    const previous = sections[i - 1];
    if (previous !== undefined && keyGroup <= previous.keyGroup) throw new CheckpointCorruptError(name, `key group ${keyGroup} follows key group ${previous.keyGroup} in the index`);
    if (offset !== BigInt(expectedOffset)) throw new CheckpointCorruptError(name, `section of key group ${keyGroup} starts at ${offset}, expected ${expectedOffset}`);
    if (entryCount * MIN_ENTRY_LENGTH > length) throw new CheckpointCorruptError(name, `section of key group ${keyGroup} cannot hold ${entryCount} entries in ${length} bytes`);
    sections.push({ keyGroup, offset: expectedOffset, length, entryCount, crc32: sectionCrc });
    expectedOffset += length;
  }
  return { stage, snapshot: (flags & FLAG_SNAPSHOT) !== 0, sections, headerLength };
}

/**
 * Decodes one section from exactly its bytes (a range read of offset..offset+length). Keys and
 * values are views into bytes, not copies.
 */
export function decodeSection(bytes: Uint8Array, section: SectionBounds, name: string): KeyGroupEntries {
  const { keyGroup } = section;
  if (bytes.length !== section.length) throw new CheckpointCorruptError(name, `section of key group ${keyGroup} is ${bytes.length} bytes, expected ${section.length} (truncated read?)`);
  const actualCrc = crc32(bytes);
  if (actualCrc !== section.crc32) throw new CheckpointCorruptError(name, `section of key group ${keyGroup} has crc32 ${hex(actualCrc)}, expected ${hex(section.crc32)}`);
  const view = viewOf(bytes);
  const entries: KeyGroupEntries['entries'] = [];
  const end = bytes.length;
  let p = 0;
  while (p < end) {
    const overrun = (): CheckpointCorruptError => new CheckpointCorruptError(name, `entry ${entries.length} of key group ${keyGroup} overruns its section of ${end} bytes`);
    if (p + 4 > end) throw overrun();
    const keyLength = view.getUint32(p);
    const keyStart = p + 4;
    if (keyStart + keyLength + 4 > end) throw overrun();
    const valueLength = view.getInt32(keyStart + keyLength);
    const valueStart = keyStart + keyLength + 4;
    const key = bytes.subarray(keyStart, keyStart + keyLength);
    if (valueLength === -1) {
      entries.push([key, null]);
      p = valueStart;
      continue;
    }
    if (valueLength < 0) throw new CheckpointCorruptError(name, `entry ${entries.length} of key group ${keyGroup} has value length ${valueLength}`);
    if (valueStart + valueLength > end) throw overrun();
    entries.push([key, bytes.subarray(valueStart, valueStart + valueLength)]);
    p = valueStart + valueLength;
  }
  if (section.entryCount !== undefined && entries.length !== section.entryCount) {
    throw new CheckpointCorruptError(name, `section of key group ${keyGroup} holds ${entries.length} entries, the index says ${section.entryCount}`);
  }
  return { keyGroup, entries };
}

/** Decodes a whole object, which must end exactly where its last section does. */
export function decodeCheckpointObject(bytes: Uint8Array, name: string): { index: CheckpointIndex; groups: KeyGroupEntries[] } {
  const index = decodeCheckpointIndex(bytes, name);
  const last = index.sections[index.sections.length - 1];
  const end = last === undefined ? index.headerLength : last.offset + last.length;
  if (bytes.length < end) throw new CheckpointCorruptError(name, `truncated: ${bytes.length} bytes, the index describes ${end}`);
  if (bytes.length > end) throw new CheckpointCorruptError(name, `${bytes.length - end} bytes follow the last section`);
  const groups = index.sections.map((section) => {
    const group = decodeSection(bytes.subarray(section.offset, section.offset + section.length), section, name);
    if (index.snapshot && group.entries.some(([, value]) => value === null)) throw new CheckpointCorruptError(name, `snapshot section of key group ${section.keyGroup} holds a tombstone`);
    return group;
  });
  return { index, groups };
}

/** The _metadata reference to one section of an object. */
export function sectionRef(key: string, section: CheckpointSection): ObjectRef {
  return { key, offset: section.offset, length: section.length, crc32: section.crc32 };
}

function indexCrc(bytes: Uint8Array, headerLength: number): number {
  return crc32(bytes.subarray(CHECKPOINT_HEADER_LENGTH, headerLength), crc32(bytes.subarray(0, 16)));
}

function stageOfObjectKey(name: string): string | undefined {
  const parts = name.split('/');
  return parts.length < 2 ? undefined : parts[parts.length - 2];
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

// ---------------------------------------------------------------------------------------------
// _metadata: the commit record of a checkpoint, written last by the coordinator.

/** A section of an object in the store: the range to read and its crc32. */
export interface ObjectRef {
  key: string;
  offset: number;
  length: number;
  crc32: number;
}

/** What a key group restores from: its base snapshot (or none), then its deltas, oldest first. */
export interface KeyGroupRestore {
  base: ObjectRef | null;
  deltas: ObjectRef[];
}

export interface CheckpointMetadata {
  formatVersion: 1;
  jobId: string;
  checkpointId: number;
  epoch: number;
  bundleSha256: string;
  createdAtUnixMs: number;
  savepoint: boolean;
  maxParallelism: number;
  /** Source split → next stream sequence to read after restore. */
  sources: Record<string, number>;
  /**
   * Source split → the largest event time it read before the barrier: its watermark generator
   * restarts from it, so that a restore does not take watermarks back (a record that was late
   * before a failure is late in the replay too, and windows due at the barrier fire without new
   * input). Absent for splits without event time, and in checkpoints written before it existed.
   */
  sourceEventTimes?: Record<string, number>;
  /**
   * What each split index of `sources` reads, "<stream>.<partition>" (the manifest's flat split
   * space, core/manifest.ts splitRanges), so that a savepoint restored into a job whose sources
   * differ puts each position back on its own stream. Absent in checkpoints written before jobs
   * had several sources (one source: split = partition).
   */
  splitStreams?: string[];
  /** Per stage, per key group (decimal string): the base snapshot (or null) and the ordered deltas after it. */
  stages: Record<string, Record<string, KeyGroupRestore>>;
  /**
   * Exactly-once sink output that became visible with this checkpoint, in publish order: a
   * coordinator that restarts publishes it again (the stream deduplicates by Nats-Msg-Id).
   */
  outputs?: string[];
  /**
   * Files-sink part files of this checkpoint (and of aborted ones it carried): each staged object
   * is copied to its final key once the checkpoint completes; a coordinator that restarts copies
   * them again (same name, same bytes: idempotent).
   */
  files?: Array<{ stagedKey: string; finalKey: string; records: number }>;
  /**
   * Per stage, what it counted over the job's life up to this checkpoint (records in and out,
   * dead letters): what `eddy job` starts from after a recovery. Absent in checkpoints written
   * before it existed (counted from zero then).
   */
  counters?: Record<string, StageTotals>;
}

/** A stage's counters over the job's life. */
export interface StageTotals {
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
}

const METADATA_TRAILER = /^crc32 ([0-9a-f]{8})$/;

/** Compact JSON, then a last line `crc32 <8 hex digits>` over the JSON's bytes. */
export function encodeMetadata(m: CheckpointMetadata): Uint8Array {
  const problem = metadataProblem(m);
  if (problem !== undefined) throw new InvalidArgumentError(`checkpoint metadata ${m.checkpointId} of job ${m.jobId}: ${problem}`);
  const json = Buffer.from(JSON.stringify(m), 'utf8');
  return Buffer.concat([json, Buffer.from(`\ncrc32 ${crc32(json).toString(16).padStart(8, '0')}\n`, 'latin1')]);
}

/** Verifies the crc32 and the shape; throws CheckpointCorruptError naming the object. */
export function decodeMetadata(bytes: Uint8Array, name: string): CheckpointMetadata {
  const last = bytes.length - 1;
  const split = bytes[last] === 0x0a ? bytes.lastIndexOf(0x0a, last - 1) : -1;
  if (split < 0) throw new CheckpointCorruptError(name, 'no trailing crc32 line (truncated?)');
  const trailer = METADATA_TRAILER.exec(Buffer.from(bytes.subarray(split + 1, last)).toString('latin1'));
  if (trailer === null) throw new CheckpointCorruptError(name, 'the last line is not "crc32 <8 hex digits>"');
  const json = bytes.subarray(0, split);
  const expectedCrc = Number.parseInt(trailer[1]!, 16);
  const actualCrc = crc32(json);
  if (actualCrc !== expectedCrc) throw new CheckpointCorruptError(name, `metadata has crc32 ${hex(actualCrc)}, expected ${hex(expectedCrc)}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(json));
  } catch (error) {
    throw new CheckpointCorruptError(name, 'metadata is not UTF-8 JSON', { cause: error });
  }
  const problem = metadataProblem(parsed);
  if (problem !== undefined) throw new CheckpointCorruptError(name, problem);
  return parsed as CheckpointMetadata;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const KEY_GROUP_NAME = /^(0|[1-9][0-9]{0,4})$/;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why m is not valid metadata, or undefined. Shared by encode (caller's bug) and decode (corruption). */
function metadataProblem(m: unknown): string | undefined {
  if (!isRecord(m)) return 'metadata is not an object';
  if (m.formatVersion !== 1) return `unknown metadata format version ${String(m.formatVersion)}; this build reads version 1`;
  if (typeof m.jobId !== 'string' || m.jobId === '') return 'jobId is not a non-empty string';
  for (const field of ['checkpointId', 'epoch', 'createdAtUnixMs'] as const) {
    if (!isCount(m[field])) return `${field} ${String(m[field])} is not a non-negative integer`;
  }
  if (typeof m.bundleSha256 !== 'string' || !SHA256_HEX.test(m.bundleSha256)) return `bundleSha256 ${JSON.stringify(m.bundleSha256)} is not 64 lowercase hex digits`;
  if (typeof m.savepoint !== 'boolean') return 'savepoint is not a boolean';
  const maxParallelism = m.maxParallelism;
  if (!isCount(maxParallelism) || maxParallelism < 1 || maxParallelism > 0x10000) return `maxParallelism ${String(maxParallelism)} is not an integer in 1..65536`;
  if (!isRecord(m.sources)) return 'sources is not an object';
  for (const [split, sequence] of Object.entries(m.sources)) {
    if (!isCount(sequence)) return `source ${split} has sequence ${String(sequence)}, not a non-negative integer`;
  }
  if (m.splitStreams !== undefined && (!Array.isArray(m.splitStreams) || !m.splitStreams.every((s) => typeof s === 'string'))) return 'splitStreams is not an array of strings';
  if (!isRecord(m.stages)) return 'stages is not an object';
  for (const [stage, keyGroups] of Object.entries(m.stages)) {
    if (!isRecord(keyGroups)) return `stage ${stage} is not an object`;
    for (const [keyGroup, restore] of Object.entries(keyGroups)) {
      const where = `stage ${stage} key group ${keyGroup}`;
      if (!KEY_GROUP_NAME.test(keyGroup) || Number(keyGroup) >= maxParallelism) return `${where}: not a key group below maxParallelism ${maxParallelism}`;
      if (!isRecord(restore)) return `${where} is not an object`;
      if (restore.base !== null) {
        const problem = objectRefProblem(restore.base);
        if (problem !== undefined) return `${where} base: ${problem}`;
      }
      if (!Array.isArray(restore.deltas)) return `${where} deltas is not an array`;
      for (const [i, delta] of restore.deltas.entries()) {
        const problem = objectRefProblem(delta);
        if (problem !== undefined) return `${where} delta ${i}: ${problem}`;
      }
    }
  }
  return undefined;
}

function objectRefProblem(ref: unknown): string | undefined {
  if (!isRecord(ref)) return 'not an object reference';
  if (typeof ref.key !== 'string' || ref.key === '') return 'key is not a non-empty string';
  if (!isCount(ref.offset) || !isCount(ref.length)) return `range ${String(ref.offset)}+${String(ref.length)} is not two non-negative integers`;
  if (!isCount(ref.crc32) || ref.crc32 > MAX_U32) return `crc32 ${String(ref.crc32)} is not a u32`;
  return undefined;
}
