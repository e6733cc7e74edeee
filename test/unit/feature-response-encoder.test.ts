// The hand-written GetFeaturesResponse encoder of direct reads (worker/query/feature-response-encoder.ts)
// against the general path it replaces: each value through JSON, toProtoValue and the generated
// protobufjs codec. Both byte strings are decoded with the generated codec and must be equal.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeWithGeneratedCodec, featureValue, getFeaturesMethod } from '../kit/feature-responses.ts';
import { ProtoWriter, encodeFeaturesResponse, type EncodedFeatureValue } from '../../worker/query/feature-response-encoder.ts';
import { decodeFeaturesResponse } from '../../sdk/feature-response-decoder.ts';
import { toJsonText } from '../../core/proto-values.ts';
import { committedObject, isSharedMapObject } from '../../worker/state/merged-reads.ts';
import { encodeValue } from '../../worker/state/value-codec.ts';

const decode = (bytes: Uint8Array) => getFeaturesMethod.responseDeserialize(Buffer.from(bytes));

/** What the serving endpoint sent before: JSON in the job's thread, then toProtoValue and protobufjs. */
const generalPath = (ids: readonly string[], values: EncodedFeatureValue[][]): Buffer => encodeWithGeneratedCodec(ids, values, (v) => JSON.parse(JSON.stringify(v) ?? 'null'));

function assertSameAsGeneralPath(ids: readonly string[], values: EncodedFeatureValue[][], writer = new ProtoWriter()): void {
  const encoded = encodeFeaturesResponse(writer, ids, values[0]?.length ?? 1, (r, f) => values[r]![f]!);
  assert.deepEqual(decode(encoded), decode(generalPath(ids, values)));
}

const feature = featureValue;

test('feature response encoder - a map feature, a counter and a missing value decode as the general path encodes them', () => {
  assertSameAsGeneralPath(
    ['e-1', 'e-2'],
    [
      [feature({ temp: { value: 21.5, ts: 1_733_000_000_000, colour: 'GREEN' }, hum: { value: -3, ts: 0, colour: 'RED' } }), feature(12, { feature: 'received', uncommitted: true })],
      [feature(undefined, { found: false, eventTimeMs: undefined, keyGroup: 0 }), feature(0, { feature: 'received', checkpointId: 0 })],
    ],
  );
});

test('feature response encoder - values are rendered as JSON renders them (toJSON, non-finite numbers, undefined, nesting)', () => {
  assertSameAsGeneralPath(
    ['e'],
    [[feature({ when: new Date(1_733_000_000_000), nan: Number.NaN, inf: -Infinity, gone: undefined, list: [1, undefined, 'x', null, [], {}, false, true], empty: {}, nested: { a: { b: { c: [{ d: 'ü€😀' }] } } } })]],
  );
});

test('feature response encoder - lengths past one varint byte, big checkpoint ids and times before 1970', () => {
  const long = 'x'.repeat(200);
  const longer = 'é'.repeat(20_000);
  assertSameAsGeneralPath(
    [long, 'e'],
    [
      [feature({ long, longer, many: Array.from({ length: 300 }, (_, i) => ({ i, s: `v${i}` })) }, { checkpointId: 2 ** 40 + 7 })],
      [feature('old', { eventTimeMs: -86_400_000 * 365 - 1.5, keyGroup: 4095, beyondRetention: true })],
    ],
  );
});

test('feature response encoder - one writer reused across responses of different sizes', () => {
  const writer = new ProtoWriter();
  assertSameAsGeneralPath(['a'], [[feature({ big: 'y'.repeat(10_000) })]], writer);
  assertSameAsGeneralPath(['b'], [[feature(1)]], writer);
});

test('feature response encoder - a value nested deeper than 100 levels is refused', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 102; i++) deep = { d: deep };
  assert.throws(() => encodeFeaturesResponse(new ProtoWriter(), ['e'], 1, () => feature(deep)), RangeError);
});

test('feature response encoder - any JSON values of several features decode as the general path encodes them (property)', () => {
  const writer = new ProtoWriter();
  const value = fc.tuple(fc.string(), fc.jsonValue({ maxDepth: 6 }), fc.boolean(), fc.integer({ min: 0, max: 4095 }), fc.double({ noNaN: true, min: -1e13, max: 1e13 }), fc.nat(2 ** 40), fc.boolean());
  const features = 2;
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.string(), fc.array(value, { minLength: features, maxLength: features })), { maxLength: 12 }), (rows) => {
      // A "__proto__" key: both paths encode it, but protobufjs's decoder assigns it to a plain
      // object, which sets that object's prototype; decoded, the two cannot be compared there
      // (test/unit/proto-values.test.ts covers the key).
      fc.pre(!JSON.stringify(rows).includes('"__proto__"'));
      assertSameAsGeneralPath(
        rows.map(([id]) => id),
        rows.map(([, values]) => values.map(([name, v, found, keyGroup, time, checkpointId, uncommitted]) => feature(v, { feature: name, found, keyGroup, eventTimeMs: time, checkpointId, uncommitted }))),
        writer,
      );
    }),
    { numRuns: 500 },
  );
});

test('feature response encoder - VALUE_FORMAT_JSON: every value as JSON text in value_json, the rest as in the typed form; both read back to the same rows (property)', () => {
  const writer = new ProtoWriter();
  const value = fc.tuple(fc.string(), fc.jsonValue({ maxDepth: 6 }), fc.boolean(), fc.integer({ min: 0, max: 4095 }), fc.nat(2 ** 40));
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.string(), fc.array(value, { minLength: 2, maxLength: 2 })), { maxLength: 12 }), (rows) => {
      fc.pre(!JSON.stringify(rows).includes('"__proto__"'));
      const ids = rows.map(([id]) => id);
      const values = rows.map(([, vs]) => vs.map(([name, v, found, keyGroup, checkpointId]) => feature(v, { feature: name, found, keyGroup, checkpointId })));
      const typed = decode(encodeFeaturesResponse(writer, ids, 2, (r, f) => values[r]![f]!));
      const jsonBytes = encodeFeaturesResponse(writer, ids, 2, (r, f) => values[r]![f]!, true);
      const json = decode(jsonBytes);
      assert.equal(json.rows.length, ids.length);
      json.rows.forEach((row, r) =>
        row.values.forEach((v, f) => {
          const asked = values[r]![f]!;
          assert.equal(v.value, null, 'no google.protobuf.Value in the JSON form');
          assert.equal(v.valueJson, asked.found ? JSON.stringify(asked.value) : '');
          assert.deepEqual({ ...v, valueJson: '' }, { ...typed.rows[r]!.values[f]!, value: null, valueJson: '' });
        }),
      );
      assert.deepEqual(decodeFeaturesResponse(Buffer.from(jsonBytes)), decodeFeaturesResponse(Buffer.from(encodeFeaturesResponse(writer, ids, 2, (r, f) => values[r]![f]!))));
    }),
    { numRuns: 300 },
  );
});

test('feature response encoder - a bigint is a number in both forms, as in the NATS replies (toJsonText)', () => {
  const big = { n: 12n, list: [2n ** 60n] };
  const typed = decodeFeaturesResponse(Buffer.from(encodeFeaturesResponse(new ProtoWriter(), ['e'], 1, () => feature(big))));
  const json = decode(encodeFeaturesResponse(new ProtoWriter(), ['e'], 1, () => feature(big), true));
  assert.deepEqual(typed[0]!.values[0]!.value, { n: 12, list: [2 ** 60] });
  assert.equal(json.rows[0]!.values[0]!.valueJson, `{"n":12,"list":[${2 ** 60}]}`);
  assert.equal(toJsonText(big), json.rows[0]!.values[0]!.valueJson);
  assert.equal(toJsonText(undefined), 'null');
});

test('feature response encoder - a shared map object (a hot entity\'s cached map) is encoded once and written the same each time, in both forms', () => {
  const committed: Array<[string, Buffer]> = [['Pa', encodeValue({ value: 1.5, colour: 'RED' })], ['Pb', encodeValue({ value: -2, colour: 'GREEN' })]];
  const shared = committedObject(committed, 1);
  assert.ok(isSharedMapObject(shared));
  assert.equal(committedObject(committed, 1), shared, 'one object per cached map');
  const plain = { a: { value: 1.5, colour: 'RED' }, b: { value: -2, colour: 'GREEN' } };
  assert.ok(!isSharedMapObject(plain));
  const writer = new ProtoWriter();
  for (const json of [false, true]) {
    const expected: Buffer = Buffer.from(encodeFeaturesResponse(new ProtoWriter(), ['e1', 'e2'], 1, (): EncodedFeatureValue => feature(plain), json));
    // Twice with the shared object (the second from the kept encoding), between them a response of other values.
    const first: Buffer = Buffer.from(encodeFeaturesResponse(writer, ['e1', 'e2'], 1, (): EncodedFeatureValue => feature(shared), json));
    encodeFeaturesResponse(writer, ['x'], 1, () => feature({ other: 'x'.repeat(300) }), json);
    const second: Buffer = Buffer.from(encodeFeaturesResponse(writer, ['e1', 'e2'], 1, (): EncodedFeatureValue => feature(shared), json));
    assert.deepEqual(first, expected, `json ${json}: as a plain object encodes`);
    assert.deepEqual(second, expected, `json ${json}: the kept encoding`);
  }
  // The map changes: a new committed array, a new object, its own encoding.
  const changed = committedObject([['Pa', encodeValue({ value: 3, colour: 'RED' })]], 1);
  assert.notEqual(changed, shared);
  assert.deepEqual(decodeFeaturesResponse(Buffer.from(encodeFeaturesResponse(writer, ['e1'], 1, () => feature(changed))))[0]!.values[0]!.value, { a: { value: 3, colour: 'RED' } });
});
