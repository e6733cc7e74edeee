// Source decoding of untrusted records (worker/record-decoding.ts): bounded depth before
// JSON.parse, non-finite numbers and impossible event times refused with a reason, keys named
// by their real type.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJsonRecord, eventTimeProblem, keyProblem, MAX_EVENT_TIME_MS } from '../../worker/task/record-decoding.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const decode = (s: string, maxDepth?: number) => decodeJsonRecord(bytes(s), s, maxDepth);

test('record decoding - JSON nested 100,000 deep is refused by the scan, without recursion', () => {
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);
  const r = decode(deep);
  assert.equal(r.ok, false);
  assert.match((r as { reason: string }).reason, /nested deeper than 256 levels/);
  const deepObject = '{"a":'.repeat(300) + '1' + '}'.repeat(300);
  assert.equal(decode(deepObject).ok, false);
});

test('record decoding - depth up to the limit is accepted; brackets inside strings do not count', () => {
  assert.deepEqual(decode('['.repeat(256) + ']'.repeat(256)), { ok: true, value: JSON.parse('['.repeat(256) + ']'.repeat(256)) });
  assert.equal(decode('['.repeat(257) + ']'.repeat(257)).ok, false);
  const s = JSON.stringify({ text: '[[[[{{{{\\"[[[' + '['.repeat(1000), n: [1, 2] });
  const r = decode(s, 4);
  assert.equal(r.ok, true);
  assert.deepEqual((r as { value: unknown }).value, JSON.parse(s));
});

test('record decoding - numbers that overflow to Infinity are refused with their path; large finite ones pass', () => {
  const r = decode('{"entityId":"e","value":1e999}');
  assert.equal(r.ok, false);
  assert.match((r as { reason: string }).reason, /^\$\.value is not a finite number/);
  assert.equal(decode('{"v":[1,-1E+400]}').ok, false);
  assert.equal(decode('{"v":1e308,"w":1e-999,"t":true,"f":false,"x":1.5e3}').ok, true);
  assert.equal(decode('{"v":' + '9'.repeat(400) + '}').ok, false);
  assert.equal(decode('{"s":"1e999"}').ok, true);
});

test('record decoding - invalid JSON keeps its parser message', () => {
  const r = decode('{"a":');
  assert.equal(r.ok, false);
  assert.match((r as { reason: string }).reason, /^invalid JSON: /);
});

test('record decoding - event times outside 1970..9999 and non-finite ones are named', () => {
  assert.equal(eventTimeProblem(1_700_000_000_000, 'ts'), undefined);
  assert.equal(eventTimeProblem(MAX_EVENT_TIME_MS, 'ts'), undefined);
  assert.match(eventTimeProblem(1e20, 'event time field ts')!, /^event time field ts is 100000000000000000000, not a time between 1970 and 9999/);
  assert.match(eventTimeProblem(-1, 'ts')!, /not a time between/);
  assert.match(eventTimeProblem(Infinity, 'ts')!, /Infinity, not a finite time/);
  assert.match(eventTimeProblem({}, 'ts')!, /ts is an object/);
});

test('record decoding - a key is named by its real type; lone surrogates are refused', () => {
  assert.equal(keyProblem('e-1'), undefined);
  assert.equal(keyProblem(7), undefined);
  assert.equal(keyProblem({ id: 1 }), 'an object');
  assert.equal(keyProblem([1]), 'an array');
  assert.equal(keyProblem(null), 'null');
  assert.equal(keyProblem(undefined), 'undefined');
  assert.equal(keyProblem(''), 'an empty string');
  assert.match(keyProblem(NaN)!, /NaN, not a finite number/);
  assert.match(keyProblem('a\uD800b')!, /lone surrogate/);
  assert.equal(keyProblem('emoji \uD83D\uDE00'), undefined);
});
