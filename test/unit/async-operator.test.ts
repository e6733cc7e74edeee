// The asyncMap operator in process (worker/task/async-operator.ts): markers (barriers, watermarks)
// are never overtaken, capacity bounds the calls in flight, a time-out aborts the attempt's
// signal and is retried with back-off, and the last failure goes where onFailure says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncOperator, type AsyncOperatorHooks } from '../../worker/task/async-operator.ts';
import type { AsyncOperatorSpec } from '../../core/manifest.ts';
import type { UserFunctionError } from '../../core/errors.ts';
import { waitFor } from '../kit/index.ts';

const spec = (o: Partial<AsyncOperatorSpec> = {}): AsyncOperatorSpec => ({
  ordered: true,
  capacity: 10,
  timeoutMs: 5000,
  retry: { maxAttempts: 1, initialDelayMs: 0, maxDelayMs: 0, multiplier: 1, jitter: 0 },
  onFailure: 'fail',
  ...o,
});

function hooks(events: string[]): AsyncOperatorHooks {
  return {
    jobId: 'j',
    stageId: 's',
    keyGroup: () => 7,
    onError: (e) => events.push(`error:${e.message}`),
    fail: (e) => events.push(`fail:${e.message}`),
    deadLetter: (e: UserFunctionError, record) => events.push(`dead:${String(record)}:${e.message}`),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves after the record's delay (its value is "<name>:<delayMs>"). */
const delayed = async (v: unknown) => {
  const [name, ms] = String(v).split(':');
  await sleep(Number(ms));
  return name;
};

for (const ordered of [true, false]) {
  test(`async operator - ${ordered ? 'ordered' : 'unordered'}: no result crosses a marker`, async () => {
    const events: string[] = [];
    const op = new AsyncOperator('op', delayed, spec({ ordered }), (v) => events.push(String(v)), hooks(events));
    op.push('a:60', 0);
    op.push('b:0', 0);
    op.marker(() => events.push('BARRIER'));
    op.push('c:0', 0);
    op.push('d:30', 0);
    op.marker(() => events.push('WATERMARK'));
    await waitFor(() => events.length === 6, { timeoutMs: 5000, what: 'every result and marker' });
    assert.deepEqual(events, ordered ? ['a', 'b', 'BARRIER', 'c', 'd', 'WATERMARK'] : ['b', 'a', 'BARRIER', 'c', 'd', 'WATERMARK']);
    // A marker with nothing in the operator passes at once, synchronously.
    op.marker(() => events.push('NOW'));
    assert.equal(events.at(-1), 'NOW');
  });
}

test('async operator - capacity bounds the calls in flight; full tells the task to wait', async () => {
  let inFlight = 0;
  let max = 0;
  const out: unknown[] = [];
  const op = new AsyncOperator('op', async (v) => {
    max = Math.max(max, ++inFlight);
    await sleep(5);
    inFlight--;
    return v;
  }, spec({ capacity: 3, ordered: false }), (v) => out.push(v), hooks([]));
  for (let i = 0; i < 20; i++) op.push(i, 0);
  assert.equal(op.full, true);
  await op.whenReady();
  assert.ok(op.size < 3);
  await waitFor(() => out.length === 20, { timeoutMs: 5000, what: 'twenty results' });
  assert.equal(max, 3);
  assert.deepEqual([...out].sort((a, b) => Number(a) - Number(b)), Array.from({ length: 20 }, (_, i) => i));
});

test('async operator - a time-out aborts the attempt and is retried with back-off; the last failure is a dead letter or a job failure', async () => {
  const aborted: number[] = [];
  const attempts: number[] = [];
  const events: string[] = [];
  const fn = (v: unknown, { signal, attempt }: { signal: AbortSignal; attempt: number }) => {
    attempts.push(attempt);
    return new Promise((resolve) => {
      signal.addEventListener('abort', () => aborted.push(attempt));
      if (v === 'third' && attempt === 3) resolve('ok');
    });
  };
  const retry = { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 40, multiplier: 2, jitter: 0 };
  const op = new AsyncOperator('enrich', fn, spec({ timeoutMs: 30, retry, onFailure: 'dead-letter' }), (v) => events.push(String(v)), hooks(events));
  const t0 = performance.now();
  op.push('third', 0);
  await waitFor(() => events.length === 1, { timeoutMs: 5000, what: 'the third attempt' });
  assert.deepEqual(events, ['ok']);
  assert.deepEqual(attempts, [1, 2, 3]);
  assert.deepEqual(aborted, [1, 2], 'each timed-out attempt was aborted');
  // 2 time-outs (30 ms each) and back-offs of 20 and 40 ms.
  assert.ok(performance.now() - t0 >= 2 * 30 + 20 + 40 - 5);
  op.push('never', 0);
  await waitFor(() => events.length === 2, { timeoutMs: 5000, what: 'the dead letter' });
  assert.match(events[1]!, /^dead:never:user function enrich of stage s \(job j, key group 7\) threw: failed after 3 attempt\(s\): attempt 3 timed out after 30 ms$/);

  const failing = new AsyncOperator('lookup', async () => {
    throw new Error('refused');
  }, spec({ onFailure: 'fail' }), () => assert.fail('no output'), hooks(events));
  failing.push('x', 0);
  await waitFor(() => events.length === 3, { timeoutMs: 5000, what: 'the failure' });
  assert.match(events[2]!, /^fail:user function lookup of stage s \(job j, key group 7\) threw: failed after 1 attempt\(s\): refused$/);
});
