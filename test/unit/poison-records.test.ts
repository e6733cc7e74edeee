// Counting poison records (coordinator/poison-records.ts) and logging rejections throttled
// (core/throttled-log.ts), in process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { PoisonRecords } from '../../coordinator/poison-records.ts';
import { ThrottledLog } from '../../core/throttled-log.ts';
import { waitFor } from '../kit/index.ts';
import type { TaskFailure } from '../../core/control.ts';

const failure = (split: number, sequence: number, message = 'threw'): TaskFailure => ({
  jobId: 'j', workerId: 'w', stageId: 'totals', keyGroup: 3, message, stack: 'Error: threw\n    at f', atUnixMs: 1, userCode: true, epoch: 1,
  hasSourcePosition: true, split, sequence,
});

test('poison records - a position is skipped at its Nth failure, once; other positions and failures without one are only counted', () => {
  const p = new PoisonRecords();
  assert.equal(p.onFailure(failure(1, 100), 3), undefined);
  assert.equal(p.onFailure(failure(0, 7), 3), undefined);
  assert.equal(p.onFailure({ ...failure(1, 100), hasSourcePosition: false }, 3), undefined);
  assert.equal(p.onFailure(failure(1, 100), 3), undefined);
  const skipped = p.onFailure(failure(1, 100, 'threw again'), 3);
  assert.deepEqual(skipped && { split: skipped.split, sequence: skipped.sequence, attempts: skipped.attempts, reason: skipped.reason }, { split: 1, sequence: 100, attempts: 3, reason: 'threw again' });
  assert.equal(p.onFailure(failure(1, 100), 3), undefined, 'skipped once');
  assert.deepEqual(p.skipped().map((r) => [r.split, r.sequence, r.stageId]), [[1, 100, 'totals']]);
  assert.equal(p.attempts(0, 7), 1);
  // maxRecordAttempts 0: never skipped.
  assert.equal(new PoisonRecords().onFailure(failure(0, 1), 0), undefined);
});

test('poison records - the job store form restores counts and the skip list', () => {
  const p = new PoisonRecords();
  p.onFailure(failure(2, 5), 2);
  p.onFailure(failure(2, 5), 2);
  p.onFailure(failure(3, 9), 2);
  const restored = new PoisonRecords(JSON.parse(JSON.stringify(p.toStored())));
  assert.deepEqual(restored.skipped(), p.skipped());
  assert.equal(restored.attempts(3, 9), 1);
  assert.ok(restored.onFailure(failure(3, 9), 2), 'the second failure after a restart skips it');
});

test('throttled log - a flood of one kind is a few lines with its count; other kinds are logged on their own', async () => {
  const lines: Array<{ kind: string; count: number; total: number; msg: string }> = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => { for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l)); done(); } });
  const log = new ThrottledLog(pino({ level: 'info' }, sink), { intervalMs: 200, burst: 2 });
  for (let i = 0; i < 1000; i++) log.warn('batch', { i }, 'forged record batch rejected');
  log.warn('ack', {}, 'forged ack rejected');
  await waitFor(() => lines.some((l) => l.kind === 'batch' && l.total === 1000), { timeoutMs: 5_000, what: 'the summary line' });
  const batch = lines.filter((l) => l.kind === 'batch');
  assert.deepEqual(batch.map((l) => [l.count, l.total]), [[1, 1], [1, 2], [998, 1000]]);
  assert.equal(lines.filter((l) => l.kind === 'ack').length, 1);
  assert.equal(log.total('batch'), 1000);
});
