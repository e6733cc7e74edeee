// The files sink's parts (worker/sink/file-sink.ts): what take() hands over at a barrier is
// exactly the NDJSON of the records appended, per partition directory and roll, whatever the
// sizes of the lines against the chunks they are written into.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FileSink } from '../../worker/sink/file-sink.ts';
import type { FilesSinkSpec } from '../../core/manifest-format.ts';

const DAY_MS = 86_400_000;
const spec = (rollSizeBytes: number): FilesSinkSpec => ({ kind: 'files', path: 'out', format: 'ndjson', partitionBy: 'day', rollSizeBytes, rollIntervalMs: 3_600_000 });

/** Values of every size around the chunk sizes, multi-byte UTF-8 (2, 3 and 4 bytes a character) included. */
function values(): unknown[] {
  const out: unknown[] = [];
  let seed = 7;
  const next = (n: number): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed % n);
  for (let i = 0; i < 3_000; i++) {
    const size = [0, 10, 500, 1_000, 1_030, 5_000, 70_000][next(7)]!;
    out.push({ i, text: ['a', 'é', '€', '𝄞'][next(4)]!.repeat(size) });
  }
  return out;
}

test('files sink - parts hold exactly the NDJSON of their records, per day directory, across chunk boundaries and rolls', () => {
  for (const rollSizeBytes of [1_000, 100_000, 128 * 1024 * 1024]) {
    const sink = new FileSink(spec(rollSizeBytes), 'stage-w1');
    const expected = new Map<string, string[]>();
    for (const [n, value] of values().entries()) {
      const day = n % 3;
      const timestamp = Date.UTC(2026, 0, 1) + day * DAY_MS;
      // prepare() then commit(), as an atomic record does; write() directly otherwise.
      if (n % 2 === 0) sink.commit(sink.prepare(value, timestamp));
      else sink.write(value, timestamp);
      const dir = `dt=2026-01-0${day + 1}`;
      expected.set(dir, [...(expected.get(dir) ?? []), JSON.stringify(value) + '\n']);
    }
    const parts = sink.take(5);
    const got = new Map<string, string>();
    for (const { file } of parts) {
      const dir = file.finalKey.split('/')[1]!;
      assert.match(file.finalKey, /^out\/dt=2026-01-0[1-3]\/part-000000000005-stage-w1-\d+\.ndjson$/);
      const text = Buffer.from(file.bytes).toString('utf8');
      assert.equal(text.split('\n').length - 1, file.records, 'records counts the lines of its part');
      if (rollSizeBytes === 1_000) assert.ok(Buffer.byteLength(text) < 1_000 + 4 * 70_000 + 100, 'a part rolls once it reaches its size');
      got.set(dir, (got.get(dir) ?? '') + text);
    }
    for (const [dir, lines] of expected) assert.equal(got.get(dir), lines.join(''), `${dir} at rollSizeBytes ${rollSizeBytes}`);
    assert.equal(got.size, 3);
    assert.deepEqual(sink.take(6), [], 'a barrier hands over nothing twice');
  }
});
