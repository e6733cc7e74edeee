// The client's hand-written GetFeaturesResponse reader (sdk/feature-response-decoder.ts) against
// what it replaces: proto-loader's decoder and fromProtoValue. Responses are encoded by the
// generated codec (any client may talk to a server that encodes that way) and by the workers'
// hand-written encoder (worker/query/feature-response-encoder.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeWithGeneratedCodec, featureValue, getFeaturesMethod } from '../kit/feature-responses.ts';
import { fromProtoValue, fromTimestamp, toTimestamp } from '../../core/proto-values.ts';
import { ProtoWriter, encodeFeaturesResponse, type EncodedFeatureValue } from '../../worker/query/feature-response-encoder.ts';
import { decodeFeaturesResponse, type DecodedFeatureRow } from '../../sdk/feature-response-decoder.ts';
import type { GetFeaturesResponse__Output } from '../../proto/gen/eddy/v2/GetFeaturesResponse.ts';


/** What the client read before: proto-loader's objects, then fromProtoValue and fromTimestamp. */
function generalRead(bytes: Uint8Array): DecodedFeatureRow[] {
  const response = getFeaturesMethod.responseDeserialize(Buffer.from(bytes)) as GetFeaturesResponse__Output;
  return response.rows.map((row) => ({
    entityId: row.entityId,
    values: row.values.map((v) => ({
      feature: v.feature,
      found: v.found,
      value: v.found ? fromProtoValue(v.value) : null,
      eventTimeUnixMs: v.eventTime ? fromTimestamp(v.eventTime) : null,
      checkpointId: Number(v.checkpointId),
    })),
  }));
}

const generalEncode = encodeWithGeneratedCodec;
const feature = featureValue;

test('feature response decoder - a map feature, a counter and a missing value read as proto-loader reads them', () => {
  const ids = ['e-1', 'e-2'];
  const values = [
    [feature({ temp: { value: 21.5, ts: 1_733_000_000_000, colour: 'GREEN' }, hum: { value: -3, ts: 0, colour: 'RED' } }), feature(12, { feature: 'received', uncommitted: true })],
    [feature(undefined, { found: false, eventTimeMs: undefined, keyGroup: 0 }), feature(0, { feature: 'received', checkpointId: 0 })],
  ];
  const bytes = generalEncode(ids, values);
  const rows = decodeFeaturesResponse(bytes);
  assert.deepEqual(rows, generalRead(bytes));
  assert.deepEqual(rows[0]!.values[0]!.value, { temp: { value: 21.5, ts: 1_733_000_000_000, colour: 'GREEN' }, hum: { value: -3, ts: 0, colour: 'RED' } });
  assert.equal(rows[0]!.values[0]!.eventTimeUnixMs, 1_733_000_000_123);
  assert.deepEqual(rows[1]!.values[0], { feature: 'indicators', found: false, value: null, eventTimeUnixMs: null, checkpointId: 42 });
});

test('feature response decoder - times before 1970, big checkpoint ids, long strings and deep lists', () => {
  const ids = ['x'.repeat(300), 'e'];
  const values = [
    [feature({ longer: 'é'.repeat(20_000), many: Array.from({ length: 300 }, (_, i) => ({ i, s: `v${i}`, ok: i % 2 === 0, none: null })) }, { checkpointId: 2 ** 40 + 7 })],
    [feature('old', { eventTimeMs: -86_400_000 * 365 - 1.5, keyGroup: 4095, beyondRetention: true })],
  ];
  const bytes = generalEncode(ids, values);
  assert.deepEqual(decodeFeaturesResponse(bytes), generalRead(bytes));
  assert.equal(decodeFeaturesResponse(bytes)[1]!.values[0]!.eventTimeUnixMs, -86_400_000 * 365 - 2);
});

test('feature response decoder - unknown fields are skipped at every level, and a "__proto__" key stays an own key', () => {
  // Written by hand: each message with fields this schema does not have (a newer server's), of
  // every wire type, before and after the known ones.
  const w = new ProtoWriter();
  const unknown = () => {
    w.tag(15, 0);
    w.varint(300);
    w.double(16, 1.5);
    w.string(17, 'later');
  };
  w.reset();
  unknown();
  w.tag(1, 2);
  const row = w.begin();
  unknown();
  w.string(1, 'e');
  w.tag(2, 2);
  const fv = w.begin();
  unknown();
  w.string(1, 'f');
  w.bool(2, true);
  w.tag(3, 2);
  const value = w.begin();
  unknown();
  w.tag(5, 2);
  const struct = w.begin();
  w.tag(1, 2);
  const entry = w.begin();
  unknown();
  w.string(1, '__proto__');
  w.tag(2, 2);
  const inner = w.begin();
  w.double(2, 7);
  w.end(inner);
  w.end(entry);
  w.end(struct);
  w.end(value);
  w.end(fv);
  w.end(row);
  const rows = decodeFeaturesResponse(w.finish());
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.entityId, 'e');
  const v = rows[0]!.values[0]!;
  assert.equal(v.feature, 'f');
  assert.deepEqual(Object.getOwnPropertyDescriptor(v.value as object, '__proto__')?.value, 7);
  assert.deepEqual(v.value, JSON.parse('{"__proto__":7}'));
  assert.equal(Object.getPrototypeOf(v.value), Object.prototype);
});

test('feature response decoder - short strings with the same hash are each read as themselves, however often they repeat', () => {
  // "a?" and "b " hash alike in the decoder's table of recent short strings (31 × (62 + 97) + 63 = 31 × (62 + 98) + 32).
  const value = { 'a?': 'b ', 'b ': 'a?', list: ['a?', 'b ', 'a?', 'é', 'e', 'b '] };
  const ids = ['a?', 'b ', 'a?'];
  const values = ids.map(() => [feature(value, { feature: 'b ' }), feature('a?', { feature: 'a?' })]);
  for (const bytes of [generalEncode(ids, values), encodeFeaturesResponse(new ProtoWriter(), ids, 2, (r, f) => values[r]![f]!)]) {
    const rows = decodeFeaturesResponse(bytes);
    assert.deepEqual(rows.map((r) => r.entityId), ids);
    for (const row of rows) {
      assert.deepEqual(row.values.map((v) => [v.feature, v.value]), [['b ', value], ['a?', 'a?']]);
    }
  }
});

test('feature response decoder - a value nested deeper than 100 levels is refused', () => {
  // Written by hand (the generated codec and the encoders refuse such a value): 102 lists, each the
  // only value of the one around it.
  const w = new ProtoWriter();
  w.reset();
  w.tag(1, 2);
  const open = [w.begin()];
  w.string(1, 'e');
  w.tag(2, 2);
  open.push(w.begin());
  w.string(1, 'f');
  w.bool(2, true);
  w.tag(3, 2);
  open.push(w.begin());
  for (let i = 0; i < 102; i++) {
    w.tag(6, 2);
    open.push(w.begin());
    w.tag(1, 2);
    open.push(w.begin());
  }
  w.double(2, 1);
  while (open.length > 0) w.end(open.pop()!);
  assert.throws(() => decodeFeaturesResponse(w.finish()), RangeError);
});

const arbitraryRows = () => {
  const value = fc.tuple(fc.string(), fc.jsonValue({ maxDepth: 6 }), fc.boolean(), fc.integer({ min: 0, max: 4095 }), fc.option(fc.double({ noNaN: true, min: -1e13, max: 1e13 }), { nil: undefined }), fc.nat(2 ** 40), fc.boolean());
  return fc.array(fc.tuple(fc.string(), fc.array(value, { minLength: 2, maxLength: 2 })), { maxLength: 12 }).map((rows) => ({
    ids: rows.map(([id]) => id),
    values: rows.map(([, values]) => values.map(([name, v, found, keyGroup, time, checkpointId, uncommitted]) => feature(v, { feature: name, found, keyGroup, eventTimeMs: time, checkpointId, uncommitted }))),
  }));
};

test('feature response decoder - any response of the generated codec reads as proto-loader and fromProtoValue read it (property)', () => {
  fc.assert(
    fc.property(arbitraryRows(), ({ ids, values }) => {
      // proto-loader assigns a "__proto__" key to a plain object, which sets its prototype: not comparable there (the test above covers the key).
      fc.pre(!JSON.stringify(values.map((r) => r.map((v) => v.value))).includes('"__proto__"'));
      const bytes = generalEncode(ids, values);
      assert.deepEqual(decodeFeaturesResponse(bytes), generalRead(bytes));
    }),
    { numRuns: 500 },
  );
});

test('feature response decoder - any response of the workers\' encoder reads back as the values JSON renders (property)', () => {
  const writer = new ProtoWriter();
  fc.assert(
    fc.property(arbitraryRows(), ({ ids, values }) => {
      const rows = decodeFeaturesResponse(encodeFeaturesResponse(writer, ids, 2, (r, f) => values[r]![f]!));
      assert.deepEqual(rows.map((r) => r.entityId), ids);
      rows.forEach((row, r) =>
        row.values.forEach((v, f) => {
          const want = values[r]![f]!;
          assert.equal(v.feature, want.feature);
          assert.equal(v.found, want.found);
          assert.deepEqual(v.value, want.found ? JSON.parse(JSON.stringify(want.value) ?? 'null') : null);
          assert.equal(v.checkpointId, want.checkpointId);
          assert.equal(v.eventTimeUnixMs, want.found && want.eventTimeMs !== undefined ? fromTimestamp(toTimestamp(want.eventTimeMs)) : null);
        }),
      );
    }),
    { numRuns: 500 },
  );
});
