// What a job does when its user code fails under the "fail" error policy (docs/ARCHITECTURE.md,
// "Failure and scaling"): Flink's fixed-delay, exponential-delay and failure-rate strategies.
// The spec travels in the job manifest, so it lives in core/ and the manifest validator uses
// it; coordinator/restart-strategy.ts holds the decision logic and re-exports these.
import { InvalidArgumentError } from './errors.ts';

export type RestartStrategySpec =
  /** Never restart: the first failure fails the job. */
  | { kind: 'none' }
  /** Restart after `delayMs`, at most `maxAttempts` times over the job's life. */
  | { kind: 'fixed-delay'; delayMs: number; maxAttempts: number }
  /**
   * Restart after a delay that starts at `initialDelayMs` and grows by `multiplier` with each
   * consecutive failure, up to `maxDelayMs` (a hard ceiling, jitter included). Never gives up.
   */
  | {
      kind: 'exponential-backoff';
      initialDelayMs: number;
      maxDelayMs: number;
      /** >= 1. */
      multiplier: number;
      /** 0..1, fraction of the delay randomised ± (0.1: 900..1100 ms around 1000 ms). */
      jitter: number;
      /** A run this long without failure (counted from the restart) resets the backoff. */
      resetAfterMs: number;
    }
  /** Restart after `delayMs` unless more than `maxFailures` failures fall within a sliding `intervalMs`. */
  | { kind: 'failure-rate'; maxFailures: number; intervalMs: number; delayMs: number };

export type RestartStrategyKind = RestartStrategySpec['kind'];

/** What a job gets when its manifest names no strategy. */
export const DEFAULT_RESTART_STRATEGY: RestartStrategySpec = {
  kind: 'exponential-backoff',
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  multiplier: 2,
  jitter: 0.1,
  resetAfterMs: 60_000,
};

/** Longest delay before a restart; also keeps every delay far below setTimeout's 2^31-1 ms limit. */
export const MAX_RESTART_DELAY_MS = 86_400_000;

type FieldRule = (value: unknown) => string | undefined;

const integer =
  (min: number, max: number = Number.MAX_SAFE_INTEGER): FieldRule =>
  (v) =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max ? undefined : `must be an integer ${min}..${max}`;

const number =
  (min: number, max: number): FieldRule =>
  (v) =>
    typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? undefined : `must be a number ${min}..${max}`;

const delay = integer(0, MAX_RESTART_DELAY_MS);

const FIELDS: { [K in RestartStrategyKind]: Record<Exclude<keyof Extract<RestartStrategySpec, { kind: K }>, 'kind'>, FieldRule> } = {
  none: {},
  'fixed-delay': { delayMs: delay, maxAttempts: integer(0) },
  'exponential-backoff': {
    initialDelayMs: integer(1, MAX_RESTART_DELAY_MS),
    maxDelayMs: integer(1, MAX_RESTART_DELAY_MS),
    multiplier: number(1, 1_000),
    jitter: number(0, 1),
    resetAfterMs: integer(1),
  },
  'failure-rate': { maxFailures: integer(1), intervalMs: integer(1), delayMs: delay },
};

const KINDS = Object.keys(FIELDS) as RestartStrategyKind[];

/**
 * What is wrong with a restart strategy, naming the field as `restartStrategy.<field>`, or
 * undefined when it is valid. Unknown fields are wrong too: a misspelt `maxAttemps` must not
 * leave the job on a strategy its author did not choose.
 */
export function restartStrategyProblem(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'restartStrategy is not an object';
  const o = raw as Record<string, unknown>;
  if (typeof o.kind !== 'string' || !(KINDS as string[]).includes(o.kind)) {
    return `restartStrategy.kind ${JSON.stringify(o.kind)} is not one of ${KINDS.map((k) => `"${k}"`).join(', ')}`;
  }
  const rules: Record<string, FieldRule> = FIELDS[o.kind as RestartStrategyKind];
  for (const [field, rule] of Object.entries(rules)) {
    const problem = rule(o[field]);
    if (problem !== undefined) return `restartStrategy.${field} ${problem}, got ${JSON.stringify(o[field])}`;
  }
  for (const field of Object.keys(o)) {
    if (field !== 'kind' && !(field in rules)) return `restartStrategy.${field} is not a field of the ${o.kind} strategy`;
  }
  if (o.kind === 'exponential-backoff' && (o.maxDelayMs as number) < (o.initialDelayMs as number)) {
    return `restartStrategy.maxDelayMs ${String(o.maxDelayMs)} is below initialDelayMs ${String(o.initialDelayMs)}`;
  }
  return undefined;
}

/**
 * Validates a restart strategy received from outside (a manifest, a request) and returns a copy.
 * Throws InvalidArgumentError naming the bad field.
 */
export function validateRestartStrategy(raw: unknown): RestartStrategySpec {
  const problem = restartStrategyProblem(raw);
  if (problem !== undefined) throw new InvalidArgumentError(`invalid restart strategy: ${problem}`);
  return { ...(raw as RestartStrategySpec) };
}
