// Restart strategies (coordinator/restart-strategy.ts): what a job does when its user code fails
// under the "fail" error policy. Time and randomness come from an injected clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../core/errors.ts';
import { DEFAULT_RESTART_STRATEGY, RestartStrategy, validateRestartStrategy, type RestartClock, type RestartStrategySpec } from '../../coordinator/restart-strategy.ts';

/** A clock the test moves by hand; random() returns `randomValue` (0.5: no jitter). */
class ManualClock implements RestartClock {
  nowMs = 1_000_000;
  randomValue = 0.5;
  now(): number {
    return this.nowMs;
  }
  random(): number {
    return this.randomValue;
  }
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

type Exponential = Extract<RestartStrategySpec, { kind: 'exponential-backoff' }>;
const exponential = (o: Partial<Exponential> = {}): Exponential => ({
  kind: 'exponential-backoff',
  initialDelayMs: 100,
  maxDelayMs: 1_000,
  multiplier: 2,
  jitter: 0,
  resetAfterMs: 10_000,
  ...o,
});

test('restart strategy - none refuses the first failure with a reason', () => {
  const s = new RestartStrategy({ kind: 'none' }, new ManualClock());
  const d = s.onFailure();
  assert.equal(d.restart, false);
  assert.match(d.reason, /none/);
  assert.equal(s.failures, 1);
});

test('restart strategy - fixed delay restarts maxAttempts times after delayMs, then stops with a reason', () => {
  const s = new RestartStrategy({ kind: 'fixed-delay', delayMs: 250, maxAttempts: 3 }, new ManualClock());
  for (let i = 1; i <= 3; i++) assert.deepEqual(s.onFailure(), { restart: true, delayMs: 250, reason: '' }, `attempt ${i}`);
  const refused = s.onFailure();
  assert.equal(refused.restart, false);
  assert.match(refused.reason, /fixed-delay: all 3 restart attempts used/);
  assert.equal(s.failures, 4);
  assert.equal(s.onFailure().restart, false, 'stays refused');
});

test('restart strategy - exponential backoff grows by the multiplier and caps at maxDelayMs', () => {
  const clock = new ManualClock();
  const s = new RestartStrategy(exponential({ initialDelayMs: 100, multiplier: 3, maxDelayMs: 2_000 }), clock);
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    const d = s.onFailure();
    assert.equal(d.restart, true);
    delays.push(d.delayMs);
    clock.advance(d.delayMs + 1); // fails again shortly after each restart
  }
  assert.deepEqual(delays, [100, 300, 900, 2_000, 2_000, 2_000]);
  assert.equal(s.failures, 6);
});

test('restart strategy - exponential backoff resets after a quiet resetAfterMs counted from the restart', () => {
  const clock = new ManualClock();
  const s = new RestartStrategy(exponential({ resetAfterMs: 5_000 }), clock);
  assert.equal(s.onFailure().delayMs, 100);
  clock.advance(100 + 10);
  assert.equal(s.onFailure().delayMs, 200);
  // The job restarts 200 ms after the failure; a run of 4,999 ms since then is not quiet enough.
  clock.advance(200 + 4_999);
  assert.equal(s.onFailure().delayMs, 400);
  // 400 ms back-off, then exactly resetAfterMs of running: the back-off starts over.
  clock.advance(400 + 5_000);
  assert.equal(s.onFailure().delayMs, 100);
  clock.advance(100 + 1);
  assert.equal(s.onFailure().delayMs, 200);
});

test('restart strategy - exponential backoff jitter stays within ± jitter of the un-jittered delay and under maxDelayMs', () => {
  fc.assert(
    fc.property(
      fc.record({
        initialDelayMs: fc.integer({ min: 1, max: 5_000 }),
        extraMaxMs: fc.integer({ min: 0, max: 100_000 }),
        multiplier: fc.double({ min: 1, max: 10, noNaN: true }),
        jitter: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 20 }),
      ({ initialDelayMs, extraMaxMs, multiplier, jitter }, randoms) => {
        const spec = exponential({ initialDelayMs, maxDelayMs: initialDelayMs + extraMaxMs, multiplier, jitter, resetAfterMs: 1e12 });
        const clock = new ManualClock();
        const s = new RestartStrategy(spec, clock);
        let base = 0;
        for (const r of randoms) {
          clock.randomValue = r;
          const d = s.onFailure();
          base = base === 0 ? spec.initialDelayMs : Math.min(base * multiplier, spec.maxDelayMs);
          assert.equal(d.restart, true);
          assert.ok(Number.isInteger(d.delayMs), `delay ${d.delayMs} is whole ms`);
          // Rounding to whole ms may move the delay by half a ms past the jitter band.
          assert.ok(d.delayMs >= base * (1 - jitter) - 0.5, `delay ${d.delayMs} below ${base} - ${jitter * 100}%`);
          assert.ok(d.delayMs <= Math.min(spec.maxDelayMs, base * (1 + jitter) + 0.5), `delay ${d.delayMs} above ${base} + ${jitter * 100}% or the cap`);
          clock.advance(d.delayMs);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('restart strategy - the default is exponential backoff starting at 500 ms', () => {
  const clock = new ManualClock();
  const s = new RestartStrategy(DEFAULT_RESTART_STRATEGY, clock);
  assert.equal(s.onFailure().delayMs, 500);
  clock.randomValue = 0;
  assert.equal(s.onFailure().delayMs, 900, '1000 ms less 10 % jitter');
});

test('restart strategy - failure rate refuses more than maxFailures within intervalMs, and allows again once old failures leave the window', () => {
  const clock = new ManualClock();
  const s = new RestartStrategy({ kind: 'failure-rate', maxFailures: 2, intervalMs: 1_000, delayMs: 50 }, clock);
  assert.deepEqual(s.onFailure(), { restart: true, delayMs: 50, reason: '' }); // t=0
  clock.advance(400);
  assert.equal(s.onFailure().restart, true); // t=400: 2 in the window
  clock.advance(400);
  const refused = s.onFailure(); // t=800: 3 in the window
  assert.equal(refused.restart, false);
  assert.match(refused.reason, /failure-rate: more than 2 failures within 1000 ms/);
  // t=1400: the failures at 0 and 400 have left (400 is exactly 1000 ms old); 800 and 1400 remain.
  clock.advance(600);
  assert.equal(s.onFailure().restart, true);
  clock.advance(1);
  assert.equal(s.onFailure().restart, false, 't=1401: 800, 1400 and 1401 are within 1000 ms');
  assert.equal(s.failures, 5);
});

test('restart strategy - failure rate spaced wider than the interval never refuses', () => {
  const clock = new ManualClock();
  const s = new RestartStrategy({ kind: 'failure-rate', maxFailures: 1, intervalMs: 100, delayMs: 0 }, clock);
  for (let i = 0; i < 50; i++) {
    assert.equal(s.onFailure().restart, true, `failure ${i}`);
    clock.advance(100);
  }
});

test('restart strategy - validation returns a copy of a valid spec', () => {
  const specs: RestartStrategySpec[] = [
    { kind: 'none' },
    { kind: 'fixed-delay', delayMs: 0, maxAttempts: 0 },
    DEFAULT_RESTART_STRATEGY,
    { kind: 'failure-rate', maxFailures: 3, intervalMs: 60_000, delayMs: 1_000 },
  ];
  for (const spec of specs) {
    const copy = validateRestartStrategy(JSON.parse(JSON.stringify(spec)));
    assert.deepEqual(copy, spec);
  }
});

/** [what is wrong, the value, what the message must name] */
const invalid: Array<[string, unknown, RegExp]> = [
  ['null', null, /restartStrategy is not an object/],
  ['an array', [], /restartStrategy is not an object/],
  ['an unknown kind', { kind: 'forever' }, /restartStrategy\.kind "forever" is not one of "none", "fixed-delay", "exponential-backoff", "failure-rate"/],
  ['no kind', { delayMs: 1 }, /restartStrategy\.kind undefined/],
  ['a negative fixed delay', { kind: 'fixed-delay', delayMs: -1, maxAttempts: 3 }, /restartStrategy\.delayMs must be an integer 0\.\.86400000, got -1/],
  ['a fixed delay over a day', { kind: 'fixed-delay', delayMs: 86_400_001, maxAttempts: 3 }, /restartStrategy\.delayMs/],
  ['a fractional maxAttempts', { kind: 'fixed-delay', delayMs: 10, maxAttempts: 1.5 }, /restartStrategy\.maxAttempts must be an integer/],
  ['maxAttempts missing', { kind: 'fixed-delay', delayMs: 10 }, /restartStrategy\.maxAttempts must be an integer 0\.\.\d+, got undefined/],
  ['a misspelt field', { kind: 'fixed-delay', delayMs: 10, maxAttempts: 2, maxAttemps: 5 }, /restartStrategy\.maxAttemps is not a field of the fixed-delay strategy/],
  ['a field of another kind', { kind: 'none', delayMs: 10 }, /restartStrategy\.delayMs is not a field of the none strategy/],
  ['initialDelayMs 0', exponential({ initialDelayMs: 0 }), /restartStrategy\.initialDelayMs must be an integer 1\.\./],
  ['a multiplier below 1', exponential({ multiplier: 0.5 }), /restartStrategy\.multiplier must be a number 1\.\.1000, got 0\.5/],
  ['a NaN multiplier', { ...exponential(), multiplier: Number.NaN }, /restartStrategy\.multiplier/],
  ['jitter above 1', exponential({ jitter: 1.5 }), /restartStrategy\.jitter must be a number 0\.\.1, got 1\.5/],
  ['jitter as a string', { ...exponential(), jitter: '0.1' }, /restartStrategy\.jitter must be a number 0\.\.1, got "0\.1"/],
  ['resetAfterMs 0', exponential({ resetAfterMs: 0 }), /restartStrategy\.resetAfterMs/],
  ['maxDelayMs below initialDelayMs', exponential({ initialDelayMs: 500, maxDelayMs: 400 }), /restartStrategy\.maxDelayMs 400 is below initialDelayMs 500/],
  ['maxFailures 0', { kind: 'failure-rate', maxFailures: 0, intervalMs: 1_000, delayMs: 0 }, /restartStrategy\.maxFailures must be an integer 1\.\./],
  ['no intervalMs', { kind: 'failure-rate', maxFailures: 1, delayMs: 0 }, /restartStrategy\.intervalMs/],
];

test('restart strategy - each invalid spec is an InvalidArgumentError naming the field', () => {
  for (const [what, value, message] of invalid) {
    assert.throws(
      () => validateRestartStrategy(value),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, `${what}: threw ${String(e)}`);
        assert.match(e.message, /^invalid restart strategy: /, what);
        assert.match(e.message, message, what);
        return true;
      },
      `${what} was accepted`,
    );
  }
});

test('restart strategy - the constructor refuses an invalid spec', () => {
  assert.throws(() => new RestartStrategy({ kind: 'fixed-delay', delayMs: -5, maxAttempts: 1 }), /restartStrategy\.delayMs/);
});
