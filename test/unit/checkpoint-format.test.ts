// The checkpoint object format and the _metadata commit record (core/checkpoint-format.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { objectKeys } from '../../core/object-keys.ts';
import {
  CHECKPOINT_FORMAT_VERSION,
  CHECKPOINT_HEADER_LENGTH,
  decodeCheckpointIndex,
  decodeCheckpointObject,
  decodeMetadata,
  decodeSection,
  encodeCheckpointObject,
  encodeMetadata,
  indexLengthNeeded,
  sectionRef,
  type CheckpointMetadata,
  type KeyGroupEntries,
} from '../../core/checkpoint-format.ts';
import { CheckpointCorruptError, InvalidArgumentError } from '../../core/errors.ts';

// A fixed seed keeps CI deterministic; set FC_SEED to explore other cases (a failure prints its seed).
fc.configureGlobal({ seed: process.env.FC_SEED === undefined ? 0xc4e7 : Number(process.env.FC_SEED) });

const NAME = 'jobs/j/state/s/w-1-7.delta';

const stageArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,20}$/);
const entryArb = fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.option(fc.uint8Array({ maxLength: 60 }), { nil: null }));
const groupsArb = fc.uniqueArray(
  fc.record({ keyGroup: fc.integer({ min: 0, max: 0xffff }), entries: fc.array(entryArb, { maxLength: 12 }) }, { noNullPrototype: true }),
  { selector: (group) => group.keyGroup, maxLength: 10 },
);
/** Stage, groups, snapshot flag: a snapshot's tombstones become empty values. */
const objectArb = fc.tuple(stageArb, groupsArb, fc.boolean()).map(([stage, groups, snapshot]) => ({
  stage,
  snapshot,
  groups: snapshot ? groups.map((g) => ({ keyGroup: g.keyGroup, entries: g.entries.map(([k, v]): [Uint8Array, Uint8Array] => [k, v ?? new Uint8Array(0)]) })) : groups,
}));
/** An object with at least one byte of section data, to corrupt. */
const nonEmptyObjectArb = objectArb.filter(({ groups }) => groups.some((g) => g.entries.length > 0));

/** Comparable form: hex strings, null for tombstones. */
function plain(groups: KeyGroupEntries[]): Array<{ keyGroup: number; entries: Array<[string, string | null]> }> {
  return groups.map((g) => ({ keyGroup: g.keyGroup, entries: g.entries.map(([k, v]) => [Buffer.from(k).toString('hex'), v === null ? null : Buffer.from(v).toString('hex')]) }));
}

const sortedGroups = (groups: KeyGroupEntries[]): KeyGroupEntries[] => [...groups].sort((a, b) => a.keyGroup - b.keyGroup);
const nameOf = (stage: string): string => objectKeys.delta('j', stage, 'w-1', 7);

function assertCorrupt(run: () => unknown, name: string, detail?: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof CheckpointCorruptError, `expected CheckpointCorruptError, got ${String(error)}`);
    assert.equal(error.code, 'DATA_LOSS');
    assert.ok(error.message.includes(`checkpoint object ${name} is corrupt`), error.message);
    if (detail !== undefined) assert.match(error.message, detail);
    return true;
  });
}

/** Rewrites one section's bytes and fixes every checksum, so that only the entry structure is wrong. */
function rewriteSection(bytes: Uint8Array, name: string, sectionIndex: number, edit: (section: Uint8Array) => void): Uint8Array {
  const out = Uint8Array.from(bytes);
  const index = decodeCheckpointIndex(out, name);
  const section = index.sections[sectionIndex]!;
  const range = out.subarray(section.offset, section.offset + section.length);
  edit(range);
  const view = new DataView(out.buffer);
  const entryAt = CHECKPOINT_HEADER_LENGTH + 1 + Buffer.byteLength(index.stage) + 4 + sectionIndex * 22;
  view.setUint32(entryAt + 18, crc32(range));
  view.setUint32(16, crc32(out.subarray(CHECKPOINT_HEADER_LENGTH, index.headerLength), crc32(out.subarray(0, 16))));
  return out;
}

test('checkpoint format - objects round-trip: groups sorted by key group, entries in order, tombstones, snapshot flag', () => {
  fc.assert(
    fc.property(objectArb, ({ stage, groups, snapshot }) => {
      const name = nameOf(stage);
      const bytes = encodeCheckpointObject(stage, groups, { snapshot });
      const { index, groups: decoded } = decodeCheckpointObject(bytes, name);
      assert.equal(index.stage, stage);
      assert.equal(index.snapshot, snapshot);
      assert.deepEqual(plain(decoded), plain(sortedGroups(groups)));
      assert.deepEqual(index.sections.map((s) => s.keyGroup), sortedGroups(groups).map((g) => g.keyGroup));
      assert.deepEqual(index.sections.map((s) => s.entryCount), sortedGroups(groups).map((g) => g.entries.length));
      const last = index.sections.at(-1);
      assert.equal(bytes.length, last === undefined ? index.headerLength : last.offset + last.length);
    }),
  );
});

test('checkpoint format - groups given as columns with latin1 string keys encode to the same bytes as entries', () => {
  fc.assert(
    fc.property(objectArb, ({ stage, groups, snapshot }) => {
      // Every byte value, 0x80-0xff included, as one latin1 char: how the state backend keys its overlays.
      const columns = groups.map((g) => ({ keyGroup: g.keyGroup, keys: g.entries.map(([k]) => Buffer.from(k).toString('latin1')), values: g.entries.map(([, v]) => v) }));
      assert.deepEqual(encodeCheckpointObject(stage, columns, { snapshot }), encodeCheckpointObject(stage, groups, { snapshot }));
    }),
  );
  assert.throws(() => encodeCheckpointObject('s', [{ keyGroup: 1, keys: ['a', 'b'], values: [null] }]), InvalidArgumentError, 'columns of different lengths');
});

test('checkpoint format - one key group decodes from exactly its byte range, via the index or a metadata ref', () => {
  fc.assert(
    fc.property(objectArb, ({ stage, groups, snapshot }) => {
      const name = nameOf(stage);
      const bytes = encodeCheckpointObject(stage, groups, { snapshot });
      const full = decodeCheckpointObject(bytes, name);
      // A reader range-reads the first bytes, then as many more as the header asks for.
      const head = bytes.slice(0, Math.min(bytes.length, CHECKPOINT_HEADER_LENGTH));
      const needed = indexLengthNeeded(head, name);
      const index = decodeCheckpointIndex(bytes.slice(0, needed), name);
      assert.deepEqual(index, full.index);
      for (const [i, section] of index.sections.entries()) {
        const range = bytes.slice(section.offset, section.offset + section.length);
        assert.deepEqual(plain([decodeSection(range, section, name)]), plain([full.groups[i]!]));
        const ref = sectionRef(name, section);
        assert.equal(ref.crc32, crc32(range));
        assert.deepEqual(plain([decodeSection(range, { keyGroup: section.keyGroup, ...ref }, name)]), plain([full.groups[i]!]));
      }
    }),
  );
});

test('checkpoint format - a flipped byte in the header or index is caught, naming the object', () => {
  fc.assert(
    fc.property(objectArb, fc.nat(), fc.integer({ min: 1, max: 255 }), ({ stage, groups, snapshot }, at, mask) => {
      const name = nameOf(stage);
      const bytes = encodeCheckpointObject(stage, groups, { snapshot });
      const headerLength = decodeCheckpointIndex(bytes, name).headerLength;
      const corrupt = Uint8Array.from(bytes);
      corrupt[at % headerLength]! ^= mask;
      assertCorrupt(() => decodeCheckpointObject(corrupt, name), name);
      assertCorrupt(() => decodeCheckpointIndex(corrupt, name), name);
    }),
  );
});

test('checkpoint format - a flipped byte in a section is caught by its crc32, naming the object and key group', () => {
  fc.assert(
    fc.property(nonEmptyObjectArb, fc.nat(), fc.integer({ min: 1, max: 255 }), ({ stage, groups, snapshot }, at, mask) => {
      const name = nameOf(stage);
      const bytes = encodeCheckpointObject(stage, groups, { snapshot });
      const index = decodeCheckpointIndex(bytes, name);
      const position = index.headerLength + (at % (bytes.length - index.headerLength));
      const section = index.sections.find((s) => position >= s.offset && position < s.offset + s.length)!;
      const corrupt = Uint8Array.from(bytes);
      corrupt[position]! ^= mask;
      const detail = new RegExp(`section of key group ${section.keyGroup} has crc32 0x[0-9a-f]{8}, expected 0x[0-9a-f]{8}`);
      assertCorrupt(() => decodeCheckpointObject(corrupt, name), name, detail);
      assertCorrupt(() => decodeSection(corrupt.subarray(section.offset, section.offset + section.length), section, name), name, detail);
    }),
  );
});

test('checkpoint format - truncated or overlong input is caught', () => {
  fc.assert(
    fc.property(objectArb, fc.nat(), ({ stage, groups, snapshot }, cut) => {
      const name = nameOf(stage);
      const bytes = encodeCheckpointObject(stage, groups, { snapshot });
      assertCorrupt(() => decodeCheckpointObject(bytes.subarray(0, cut % bytes.length), name), name);
      assertCorrupt(() => decodeCheckpointObject(Buffer.concat([bytes, Buffer.from([0])]), name), name, /1 bytes follow the last section/);
      const index = decodeCheckpointIndex(bytes, name);
      for (const section of index.sections) {
        if (section.length === 0) continue;
        assertCorrupt(() => decodeSection(bytes.subarray(section.offset, section.offset + section.length - 1), section, name), name, /truncated/);
      }
    }),
  );
  assertCorrupt(() => decodeCheckpointIndex(new Uint8Array(0), NAME), NAME, /truncated/);
  assert.equal(indexLengthNeeded(new Uint8Array(3)), CHECKPOINT_HEADER_LENGTH, 'too few bytes to tell: read the header first');
});

test('checkpoint format - wrong magic, unknown version, unknown flags and a wrong stage are refused', () => {
  const bytes = encodeCheckpointObject('s', [{ keyGroup: 12, entries: [[Buffer.from('k'), Buffer.from('v')]] }]);
  const badMagic = Uint8Array.from(bytes);
  badMagic.set(Buffer.from('EDDYCKPX'), 0);
  assertCorrupt(() => decodeCheckpointObject(badMagic, NAME), NAME, /bad magic/);
  assertCorrupt(() => indexLengthNeeded(badMagic, NAME), NAME, /bad magic/);
  const version2 = Uint8Array.from(bytes);
  new DataView(version2.buffer).setUint16(8, CHECKPOINT_FORMAT_VERSION + 1);
  assertCorrupt(() => decodeCheckpointObject(version2, NAME), NAME, /unknown format version 2/);
  // The header is under the index crc32: a flipped snapshot flag is caught, not believed.
  const flagged = Uint8Array.from(bytes);
  new DataView(flagged.buffer).setUint16(10, 1);
  assertCorrupt(() => decodeCheckpointObject(flagged, NAME), NAME, /index has crc32/);
  const otherStage = 'jobs/j/state/t/w-1-7.delta';
  assertCorrupt(() => decodeCheckpointObject(bytes, otherStage), otherStage, /holds stage "s", but its key places it in stage "t"/);
  assert.equal(decodeCheckpointObject(bytes, 'downloaded.delta').index.stage, 's', 'a name without a directory is not checked');
});

test('checkpoint format - an entry overrunning its section or a wrong entry count is caught even with valid checksums', () => {
  const groups: KeyGroupEntries[] = [
    { keyGroup: 3, entries: [[Buffer.from('a'), Buffer.from('1')], [Buffer.from('b'), null]] },
    { keyGroup: 12, entries: [[Buffer.from('key'), Buffer.from('value')]] },
  ];
  const bytes = encodeCheckpointObject('s', groups);
  const longKey = rewriteSection(bytes, NAME, 1, (section) => new DataView(section.buffer, section.byteOffset).setUint32(0, 100));
  assertCorrupt(() => decodeCheckpointObject(longKey, NAME), NAME, /entry 0 of key group 12 overruns its section/);
  const longValue = rewriteSection(bytes, NAME, 1, (section) => new DataView(section.buffer, section.byteOffset).setInt32(7, 6));
  assertCorrupt(() => decodeCheckpointObject(longValue, NAME), NAME, /entry 0 of key group 12 overruns/);
  const negative = rewriteSection(bytes, NAME, 0, (section) => new DataView(section.buffer, section.byteOffset).setInt32(5, -2));
  assertCorrupt(() => decodeCheckpointObject(negative, NAME), NAME, /value length -2/);
  // Two entries of key group 3 read as one whose value swallows the second: fewer than the index says.
  const merged = rewriteSection(bytes, NAME, 0, (section) => new DataView(section.buffer, section.byteOffset).setInt32(5, 1 + 4 + 1 + 4));
  assertCorrupt(() => decodeCheckpointObject(merged, NAME), NAME, /holds 1 entries, the index says 2/);
  // A tombstone in an object flagged as a snapshot.
  const snapshot = Uint8Array.from(encodeCheckpointObject('s', [{ keyGroup: 1, entries: [[Buffer.from('k'), Buffer.from('v')]] }], { snapshot: true }));
  const withTombstone = rewriteSection(snapshot, NAME, 0, (section) => new DataView(section.buffer, section.byteOffset).setInt32(5, -1));
  const shortened = withTombstone.subarray(0, withTombstone.length - 1);
  const index = decodeCheckpointIndex(shortened, NAME);
  const fixed = Uint8Array.from(shortened);
  const view = new DataView(fixed.buffer);
  const entryAt = CHECKPOINT_HEADER_LENGTH + 1 + 1 + 4;
  view.setUint32(entryAt + 10, index.sections[0]!.length - 1);
  view.setUint32(entryAt + 18, crc32(fixed.subarray(index.headerLength)));
  view.setUint32(16, crc32(fixed.subarray(CHECKPOINT_HEADER_LENGTH, index.headerLength), crc32(fixed.subarray(0, 16))));
  assertCorrupt(() => decodeCheckpointObject(fixed, NAME), NAME, /snapshot section of key group 1 holds a tombstone/);
});

test('checkpoint format - the encoder refuses duplicate key groups, bad key groups, long stages and snapshot tombstones', () => {
  const entry: [Uint8Array, Uint8Array] = [Buffer.from('k'), Buffer.from('v')];
  assert.throws(() => encodeCheckpointObject('s', [{ keyGroup: 4, entries: [entry] }, { keyGroup: 4, entries: [] }]), InvalidArgumentError);
  assert.throws(() => encodeCheckpointObject('s', [{ keyGroup: 65536, entries: [] }]), InvalidArgumentError);
  assert.throws(() => encodeCheckpointObject('s', [{ keyGroup: 1.5, entries: [] }]), InvalidArgumentError);
  assert.throws(() => encodeCheckpointObject('x'.repeat(256), []), InvalidArgumentError);
  assert.throws(() => encodeCheckpointObject('s', [{ keyGroup: 0, entries: [[Buffer.from('k'), null]] }], { snapshot: true }), /tombstone/);
  const empty = decodeCheckpointObject(encodeCheckpointObject('s', []), NAME);
  assert.deepEqual(empty.groups, []);
  assert.equal(empty.index.headerLength, CHECKPOINT_HEADER_LENGTH + 1 + 1 + 4);
});

// --- _metadata

const idArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$/);
const countArb = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const refArb = fc.record(
  { key: fc.string({ minLength: 1, maxLength: 60 }), offset: countArb, length: fc.nat(), crc32: fc.integer({ min: 0, max: 0xffffffff }) },
  { noNullPrototype: true },
);
const metadataArb: fc.Arbitrary<CheckpointMetadata> = fc.integer({ min: 1, max: 65536 }).chain((maxParallelism) =>
  fc.record(
    {
      formatVersion: fc.constant(1 as const),
      jobId: idArb,
      checkpointId: countArb,
      epoch: countArb,
      bundleSha256: fc.stringMatching(/^[0-9a-f]{64}$/),
      createdAtUnixMs: countArb,
      savepoint: fc.boolean(),
      maxParallelism: fc.constant(maxParallelism),
      sources: fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }).filter((k) => k !== '__proto__'), countArb, { noNullPrototype: true, maxKeys: 5 }),
      stages: fc.dictionary(
        idArb,
        fc.dictionary(
          fc.integer({ min: 0, max: maxParallelism - 1 }).map(String),
          fc.record({ base: fc.option(refArb, { nil: null }), deltas: fc.array(refArb, { maxLength: 4 }) }, { noNullPrototype: true }),
          { noNullPrototype: true, maxKeys: 6 },
        ),
        { noNullPrototype: true, maxKeys: 3 },
      ),
    },
    { noNullPrototype: true },
  ),
);
const METADATA_NAME = objectKeys.metadata('j', 7);

test('checkpoint metadata - round-trips, ending in a crc32 line', () => {
  fc.assert(
    fc.property(metadataArb, (m) => {
      const bytes = encodeMetadata(m);
      assert.match(Buffer.from(bytes).toString('utf8'), /\ncrc32 [0-9a-f]{8}\n$/);
      assert.deepEqual(decodeMetadata(bytes, METADATA_NAME), m);
    }),
  );
});

test('checkpoint metadata - any flipped byte or truncation is caught, naming the object', () => {
  fc.assert(
    fc.property(metadataArb, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat(), (m, at, mask, cut) => {
      const bytes = encodeMetadata(m);
      const tampered = Uint8Array.from(bytes);
      tampered[at % bytes.length]! ^= mask;
      assertCorrupt(() => decodeMetadata(tampered, METADATA_NAME), METADATA_NAME);
      assertCorrupt(() => decodeMetadata(bytes.subarray(0, cut % bytes.length), METADATA_NAME), METADATA_NAME);
    }),
  );
});

test('checkpoint metadata - a well-checksummed record of the wrong shape is refused; so is encoding one', () => {
  const valid: CheckpointMetadata = {
    formatVersion: 1,
    jobId: 'j',
    checkpointId: 7,
    epoch: 2,
    bundleSha256: 'a'.repeat(64),
    createdAtUnixMs: 1_700_000_000_000,
    savepoint: false,
    maxParallelism: 128,
    sources: { 'orders.0': 42 },
    stages: { s: { '12': { base: null, deltas: [{ key: NAME, offset: 30, length: 9, crc32: 1 }] } } },
  };
  const withCrc = (json: string): Uint8Array => Buffer.from(`${json}\ncrc32 ${crc32(Buffer.from(json)).toString(16).padStart(8, '0')}\n`);
  assert.deepEqual(decodeMetadata(withCrc(JSON.stringify(valid)), METADATA_NAME), valid);
  assertCorrupt(() => decodeMetadata(withCrc(JSON.stringify({ ...valid, formatVersion: 2 })), METADATA_NAME), METADATA_NAME, /unknown metadata format version 2/);
  assertCorrupt(() => decodeMetadata(withCrc(JSON.stringify({ ...valid, stages: { s: { '128': { base: null, deltas: [] } } } })), METADATA_NAME), METADATA_NAME, /key group 128/);
  assertCorrupt(() => decodeMetadata(withCrc('{"formatVersion":1,'), METADATA_NAME), METADATA_NAME, /not UTF-8 JSON/);
  assert.throws(() => encodeMetadata({ ...valid, checkpointId: -1 }), InvalidArgumentError);
  assert.throws(() => encodeMetadata({ ...valid, stages: { s: { '0': { base: { key: '', offset: 0, length: 1, crc32: 0 }, deltas: [] } } } }), InvalidArgumentError);
});
