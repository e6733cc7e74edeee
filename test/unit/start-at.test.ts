// startAt as a job author writes it, as the manifest carries it and as `eddy submit --start-at` parses it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileStartAt, parseStartAtOverride, startAtFromMessage, startAtToMessage } from '../../core/start-at.ts';
import { job, jetstream } from '../../sdk/index.ts';
import { validateManifest } from '../../core/manifest.ts';
import { InvalidArgumentError } from '../../core/errors.ts';

test('start at - the job author\'s forms compile to one spec each; a time is ms since the epoch', () => {
  assert.deepEqual(compileStartAt({ sequence: 42 }, 's'), { kind: 'sequence', sequence: 42 });
  assert.deepEqual(compileStartAt({ time: 1_795_000_000_000 }, 's'), { kind: 'time', timeUnixMs: 1_795_000_000_000 });
  assert.deepEqual(compileStartAt({ time: new Date('2026-11-22T10:00:00Z') }, 's'), { kind: 'time', timeUnixMs: Date.UTC(2026, 10, 22, 10) });
  assert.deepEqual(compileStartAt({ time: '2026-11-22T11:00:00+01:00' }, 's'), { kind: 'time', timeUnixMs: Date.UTC(2026, 10, 22, 10) });
  assert.deepEqual(compileStartAt('latest', 's'), { kind: 'latest' });
  for (const bad of [{ sequence: 0 }, { sequence: 1.5 }, { time: -1 }, { time: '2026-11-22 10:00' }, { time: 'yesterday' }, 'now']) {
    assert.throws(() => compileStartAt(bad as never, 'source x'), /source x/, JSON.stringify(bad));
  }
});

test('start at - the manifest carries the source\'s startAt and refuses a malformed one', () => {
  const j = job('t');
  j.source('events', { startAt: { time: '2026-11-22T10:00:00Z' } }).keyBy(() => 'k').process('p', () => {}).sink(jetstream('o', { stream: 'O' }));
  const m = j.manifest();
  assert.deepEqual(m.sources[0]!.startAt, { kind: 'time', timeUnixMs: Date.UTC(2026, 10, 22, 10) });
  assert.throws(() => validateManifest({ ...m, sources: [{ ...m.sources[0]!, startAt: { kind: 'sequence', sequence: -3 } }] }), /startAt sequence -3/);
  assert.throws(() => validateManifest({ ...m, sources: [{ ...m.sources[0]!, startAt: { kind: 'yesterday' } }] }), /startAt kind/);
});

test('start at - --start-at <source>=<sequence|ISO time|earliest|latest>: an integer is a sequence, anything else unclear is refused', () => {
  assert.deepEqual(parseStartAtOverride('clicks=17'), { source: 'clicks', startAt: { kind: 'sequence', sequence: 17 } });
  assert.deepEqual(parseStartAtOverride('clicks=2026-11-22T10:00:00.250Z'), { source: 'clicks', startAt: { kind: 'time', timeUnixMs: Date.UTC(2026, 10, 22, 10) + 250 } });
  assert.deepEqual(parseStartAtOverride('clicks=earliest'), { source: 'clicks', startAt: { kind: 'earliest' } });
  for (const bad of ['clicks', '=5', 'clicks=0', 'clicks=-2', 'clicks=2026-11-22', 'clicks=2026-11-22T10:00:00', 'clicks=soon']) {
    assert.throws(() => parseStartAtOverride(bad), InvalidArgumentError, bad);
  }
});

test('start at - the gRPC message round-trips every kind; one without a position is InvalidArgument', () => {
  for (const spec of [{ kind: 'sequence', sequence: 9 }, { kind: 'time', timeUnixMs: 5 }, { kind: 'earliest' }, { kind: 'latest' }] as const) {
    const m = startAtToMessage('s', spec);
    const position = Object.keys(m).find((k) => k !== 'source') as 'sequence';
    assert.deepEqual(startAtFromMessage({ ...m, position, ...(position === 'sequence' && { sequence: String(m.sequence) }) }), { source: 's', startAt: spec });
  }
  assert.throws(() => startAtFromMessage({ source: 's' }), InvalidArgumentError);
  assert.throws(() => startAtFromMessage({ source: 's', position: 'sequence', sequence: '0' }), /sequence/);
});
