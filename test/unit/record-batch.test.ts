// The record-batch wire format of channels (core/record-batch.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BATCH_MAGIC, BATCH_VERSION, BatchKind, decodeBatch, decodeHeader, decodeRecords,
  decodeBarrier, decodeWatermark, encodeBatch, type RecordBatch } from '../../core/record-batch.ts';

// msgpack keeps what JSON can represent (not `undefined` fields), so values are fc.jsonValue().
// The expectation is what JSON would give back: fast-check builds some objects without a
// prototype (decoded ones are ordinary objects; own "__proto__" keys stay own keys here) and
// generates -0, which msgpack, like JSON, returns as 0.
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  if (Object.is(value, -0)) return 0;
  return value;
}

// A fixed seed keeps CI deterministic; set FC_SEED to explore other cases (a failure prints its seed).
fc.configureGlobal({ seed: process.env.FC_SEED === undefined ? 0x3ddf : Number(process.env.FC_SEED) });

// An own "__proto__" key is the one JSON value msgpackr does not return as it was (see below).
const jsonValueArb = fc.jsonValue().filter((v) => !JSON.stringify(v).includes('"__proto__"'));

const recordArb = fc.record({
  key: fc.string({ unit: 'grapheme' }),
  timestamp: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: -1, max: 2 ** 32 })),
  value: jsonValueArb,
  origin: fc.oneof(fc.constant(-1), fc.integer({ min: 8192, max: Number.MAX_SAFE_INTEGER })),
}, { noNullPrototype: true });

const headerFields = {
  sequence: fc.integer({ min: 1, max: 2 ** 32 - 1 }),
  keyGroup: fc.integer({ min: 0, max: 32767 }),
  sender: fc.oneof(fc.string({ unit: 'grapheme', maxLength: 80 }), fc.constantFrom('job-1.stage-0.task-3', 'worker-1/source/0')),
};

const dataBatchArb: fc.Arbitrary<RecordBatch> = fc.record({
  kind: fc.constant(BatchKind.DATA),
  ...headerFields,
  records: fc.array(recordArb, { maxLength: 50 }),
}, { noNullPrototype: true });

const watermarkBatchArb: fc.Arbitrary<RecordBatch> = fc.record({
  kind: fc.constant(BatchKind.WATERMARK),
  ...headerFields,
  records: fc.constant([]),
  watermark: fc.oneof(fc.constant(Number.NEGATIVE_INFINITY), fc.integer({ min: -1, max: Number.MAX_SAFE_INTEGER })),
  idle: fc.boolean(),
}, { noNullPrototype: true });

/** A DATA batch with a watermark riding on it (worker/channel/channel-sender.ts, "Watermarks"). */
const ridingBatchArb: fc.Arbitrary<RecordBatch> = fc.record({
  kind: fc.constant(BatchKind.DATA),
  ...headerFields,
  records: fc.array(recordArb, { maxLength: 50 }),
  watermark: fc.oneof(fc.constant(Number.NEGATIVE_INFINITY), fc.integer({ min: -1, max: Number.MAX_SAFE_INTEGER })),
  idle: fc.boolean(),
}, { noNullPrototype: true });

const barrierBatchArb: fc.Arbitrary<RecordBatch> = fc.record({
  kind: fc.constant(BatchKind.BARRIER),
  ...headerFields,
  records: fc.constant([]),
  checkpointId: fc.integer({ min: 0, max: 0xffffffff }),
}, { noNullPrototype: true });

const controlBatchArb = fc.oneof(watermarkBatchArb, barrierBatchArb);

const anyBatch = fc.oneof(dataBatchArb, ridingBatchArb, controlBatchArb);

test('record batch - a DATA batch round-trips through encodeBatch and decodeBatch', () => {
  fc.assert(
    fc.property(dataBatchArb, (batch) => {
      assert.deepStrictEqual(decodeBatch(encodeBatch(batch)), plain(batch));
    }),
    { numRuns: 500 },
  );
});

test('record batch - the header decodes alone and matches the batch', () => {
  fc.assert(
    fc.property(anyBatch, (batch) => {
      const bytes = encodeBatch(batch);
      const header = decodeHeader(bytes);
      assert.equal(header.kind, batch.kind);
      assert.equal(header.sequence, batch.sequence);
      assert.equal(header.keyGroup, batch.keyGroup);
      assert.equal(header.sender, batch.sender);
      assert.equal(header.recordCount, batch.records.length);
      assert.deepStrictEqual(decodeRecords(bytes, header), plain(batch.records));
    }),
    { numRuns: 300 },
  );
});

test('record batch - WATERMARK batches carry no records, only the watermark and the idle flag', () => {
  fc.assert(
    fc.property(watermarkBatchArb, (batch) => {
      const bytes = encodeBatch(batch);
      const header = decodeHeader(bytes);
      assert.equal(header.recordCount, 0);
      assert.equal(header.bodyOffset + 9, bytes.length, 'an f64 watermark and a flags byte');
      assert.deepStrictEqual(decodeWatermark(bytes, header), { watermark: batch.watermark, idle: batch.idle });
      assert.deepStrictEqual(decodeBatch(bytes), plain(batch));
    }),
  );
});

test('record batch - a DATA batch can carry a watermark: its records and the watermark both come back, and a plain DATA batch carries none', () => {
  fc.assert(
    fc.property(ridingBatchArb, (batch) => {
      const bytes = encodeBatch(batch);
      const header = decodeHeader(bytes);
      assert.equal(header.kind, BatchKind.DATA);
      assert.ok(header.watermarkOffset >= 0);
      assert.deepStrictEqual(decodeRecords(bytes, header), plain(batch.records));
      assert.deepStrictEqual(decodeWatermark(bytes, header), { watermark: batch.watermark, idle: batch.idle });
      assert.deepStrictEqual(decodeBatch(bytes), plain(batch));
      // Without the watermark the same batch is 9 bytes shorter and says it carries none.
      const { watermark: _w, idle: _i, ...bare } = batch;
      const plainBytes = encodeBatch(bare);
      assert.equal(plainBytes.length + 9, bytes.length);
      assert.equal(decodeHeader(plainBytes).watermarkOffset, -1);
      assert.throws(() => decodeWatermark(plainBytes, decodeHeader(plainBytes)), /carries no watermark/);
    }),
    { numRuns: 200 },
  );
});

test('record batch - a BARRIER batch carries no records, only its checkpoint id', () => {
  fc.assert(
    fc.property(barrierBatchArb, (batch) => {
      const bytes = encodeBatch(batch);
      const header = decodeHeader(bytes);
      assert.equal(header.recordCount, 0);
      assert.equal(header.bodyOffset + 4, bytes.length);
      assert.equal(decodeBarrier(bytes, header), batch.checkpointId);
      assert.deepStrictEqual(decodeBatch(bytes), plain(batch));
    }),
  );
});

test('record batch - a control batch drops records it was given', () => {
  const bytes = encodeBatch({ kind: BatchKind.BARRIER, sequence: 9, keyGroup: 3, sender: 's', records: [{ key: 'k', timestamp: 1, value: 1 }] });
  const decoded = decodeBatch(bytes);
  assert.deepStrictEqual(decoded.records, []);
  assert.equal(decoded.kind, BatchKind.BARRIER);
});

test('record batch - the header layout: magic, version, kind, big-endian sequence and key group', () => {
  const bytes = encodeBatch({ kind: BatchKind.DATA, sequence: 0x01020304, keyGroup: 0x0506, sender: 'ab', records: [] });
  assert.deepEqual([...bytes.subarray(0, 16)], [BATCH_MAGIC, BATCH_VERSION, BatchKind.DATA, 0, 1, 2, 3, 4, 5, 6, 0, 2, 0, 0, 0x61, 0x62]);
});

test('record batch - encodes from a subarray view: decoding honours byteOffset', () => {
  const batch: RecordBatch = { kind: BatchKind.DATA, sequence: 7, keyGroup: 12, sender: 'task', records: [{ key: 'k', timestamp: 5, value: { n: [1, 2] }, origin: -1 }] };
  const encoded = encodeBatch(batch);
  const padded = new Uint8Array(encoded.length + 10);
  padded.set(encoded, 5);
  assert.deepStrictEqual(decodeBatch(padded.subarray(5, 5 + encoded.length)), batch);
});

const valid = (): Uint8Array => encodeBatch({ kind: BatchKind.DATA, sequence: 1, keyGroup: 0, sender: 'sender-1', records: [{ key: 'k', timestamp: -1, value: 'v' }] });

test('record batch - decodeHeader rejects a wrong magic byte', () => {
  const bytes = valid();
  bytes[0] = 0x00;
  assert.throws(() => decodeHeader(bytes), { name: 'RangeError', message: /magic 0 is not 237/ });
});

test('record batch - decodeHeader rejects a wrong version', () => {
  const bytes = valid();
  bytes[1] = BATCH_VERSION + 1;
  assert.throws(() => decodeHeader(bytes), { name: 'RangeError', message: new RegExp(`version ${BATCH_VERSION + 1} is not ${BATCH_VERSION}`) });
});

test('record batch - decodeHeader rejects an unknown kind', () => {
  const bytes = valid();
  bytes[2] = 9;
  assert.throws(() => decodeHeader(bytes), { name: 'RangeError', message: /unknown record batch kind 9/ });
});

test('record batch - decodeHeader rejects input truncated anywhere in the header', () => {
  const bytes = valid();
  const headerLength = decodeHeader(bytes).bodyOffset;
  for (let length = 0; length < headerLength; length++) {
    assert.throws(() => decodeHeader(bytes.subarray(0, length)), RangeError, `truncated to ${length} bytes`);
  }
  assert.throws(() => decodeHeader(new Uint8Array(0)), { name: 'RangeError', message: /0 bytes is shorter than its header/ });
});

test('record batch - decodeRecords rejects a body whose record count disagrees with the header', () => {
  const bytes = valid();
  const header = decodeHeader(bytes);
  assert.throws(() => decodeRecords(bytes, { ...header, recordCount: 2 }), { name: 'RangeError', message: /body holds 1 records, header says 2/ });
});

test('record batch - a sender id longer than 65535 UTF-8 bytes is refused', () => {
  assert.throws(() => encodeBatch({ kind: BatchKind.BARRIER, sequence: 1, keyGroup: 0, sender: 'x'.repeat(0x10000), records: [] }), RangeError);
});

test('record batch - a value\'s own "__proto__" key comes back renamed "__proto_" and pollutes no prototype', () => {
  // msgpackr's guard against prototype pollution: the one JSON value that does not round-trip.
  const value: unknown = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
  const bytes = encodeBatch({ kind: BatchKind.DATA, sequence: 1, keyGroup: 0, sender: 's', records: [{ key: 'k', timestamp: 0, value, origin: -1 }] });
  const decoded = decodeBatch(bytes).records[0]!.value as object;
  assert.deepStrictEqual(decoded, { __proto_: { polluted: true }, a: 1 });
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
  assert.equal(({} as { polluted?: boolean }).polluted, undefined);
});
