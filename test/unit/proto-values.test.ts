// JSON values to and from google.protobuf.Value (core/proto-values.ts): what a client reads back is
// the value the job stored, keys named "__proto__" included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromProtoValue, toProtoValue } from '../../core/proto-values.ts';

test('proto values - an own "__proto__" key survives both ways', () => {
  const stored = JSON.parse('{"__proto__": {"x": 1}, "a": [1, "two", null, true]}') as Record<string, unknown>;
  const proto = toProtoValue(stored);
  assert.ok(Object.hasOwn(proto.structValue!.fields!, '__proto__'), 'the key is a field, not the prototype');
  assert.deepEqual(Object.keys(proto.structValue!.fields!), ['__proto__', 'a']);
  const decoded = fromProtoValue(withKinds(proto)) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(decoded), Object.prototype, 'a plain object comes back');
  assert.deepEqual(JSON.stringify(decoded), JSON.stringify(stored));
});

test('proto values - any JSON value comes back as it went in (property)', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => {
      // JSON text, as a job's value reaches the serving path; -0 becomes 0 there.
      const json = JSON.parse(JSON.stringify(v)) as unknown;
      assert.equal(JSON.stringify(fromProtoValue(withKinds(toProtoValue(json)))), JSON.stringify(json));
    }),
    { numRuns: 500 },
  );
});

/** The `kind` members proto-loader sets when it decodes (toProtoValue sets one member only). */
function withKinds(v: ReturnType<typeof toProtoValue>): ReturnType<typeof toProtoValue> {
  if (v.structValue) {
    const fields: Record<string, ReturnType<typeof toProtoValue>> = {};
    for (const [k, f] of Object.entries(v.structValue.fields ?? {})) Object.defineProperty(fields, k, { value: withKinds(f), enumerable: true, writable: true, configurable: true });
    return { kind: 'structValue', structValue: { fields } };
  }
  if (v.listValue) return { kind: 'listValue', listValue: { values: (v.listValue.values ?? []).map(withKinds) } };
  const kind = (['nullValue', 'numberValue', 'stringValue', 'boolValue'] as const).find((k) => v[k] !== undefined)!;
  return { ...v, kind };
}
