// Chaining: the stateless operators between two shuffles run as nested function calls inside
// one task, with no NATS hop and no per-record allocation beyond what user code does.
import type { OperatorImpl } from '../../sdk/plan.ts';
import { UserFunctionError } from '../../core/errors.ts';
import { AsyncOperator, type AsyncOperatorHooks } from './async-operator.ts';

/** Passes a value (with its event time) to the rest of the chain. */
export type Emit = (value: unknown, timestamp: number) => void;

export interface ChainWhere {
  jobId: string;
  stageId: string;
  /** The key group being processed, -1 in a source stage. */
  keyGroup(): number;
}

/** Compiles stateless operators (map, filter, flatMap) in front of `terminal`. */
export function compileChain(operators: readonly OperatorImpl[], terminal: Emit, where: ChainWhere): Emit {
  let next = terminal;
  for (let i = operators.length - 1; i >= 0; i--) {
    const op = operators[i]!;
    const downstream = next;
    const fail = (e: unknown): never => {
      if (e instanceof UserFunctionError) throw e; // thrown further down the chain: keep its place
      throw new UserFunctionError({ jobId: where.jobId, stageId: where.stageId, operator: op.name, keyGroup: where.keyGroup() }, e);
    };
    switch (op.kind) {
      case 'map': {
        const fn = op.fn as (v: unknown) => unknown;
        next = (v, ts) => {
          let out: unknown;
          try {
            out = fn(v);
          } catch (e) {
            fail(e);
          }
          downstream(out, ts);
        };
        break;
      }
      case 'filter': {
        const fn = op.fn as (v: unknown) => boolean;
        next = (v, ts) => {
          let keep = false;
          try {
            keep = fn(v);
          } catch (e) {
            fail(e);
          }
          if (keep) downstream(v, ts);
        };
        break;
      }
      case 'flatMap': {
        const fn = op.fn as (v: unknown) => Iterable<unknown>;
        next = (v, ts) => {
          let out: Iterable<unknown> = [];
          try {
            out = fn(v);
          } catch (e) {
            fail(e);
          }
          for (const x of out) downstream(x, ts);
        };
        break;
      }
      default:
        throw new TypeError(`operator ${op.name} of kind ${op.kind} cannot be chained here`);
    }
  }
  return next;
}

/** The async operators of a chain, seen as one: markers pass through each in turn. */
export interface AsyncChain {
  /** Calls cb once every record emitted into the chain so far has left it (worker/task/async-operator.ts). */
  marker(cb: () => void): void;
  /** Some operator holds `capacity` records: the task should wait for whenReady() before taking more input. */
  readonly full: boolean;
  whenReady(): Promise<void>;
  close(): void;
}

export interface CompiledChain {
  emit: Emit;
  /** Undefined when the chain has no asyncMap: the synchronous chain, as fast as before. */
  async: AsyncChain | undefined;
}

/**
 * Compiles a stage's chained operators, asyncMap included. The operators between two async
 * operators (and after the last) stay one synchronous function; an asyncMap takes records in
 * synchronously and emits its results into the rest of the chain when they complete. A chain
 * without asyncMap is exactly compileChain's.
 */
export function compileStageChain(operators: readonly OperatorImpl[], terminal: Emit, where: ChainWhere, hooks: Omit<AsyncOperatorHooks, 'jobId' | 'stageId' | 'keyGroup'>): CompiledChain {
  if (!operators.some((op) => op.kind === 'asyncMap')) return { emit: compileChain(operators, terminal, where), async: undefined };
  const asyncOps: AsyncOperator[] = [];
  let next = terminal;
  let end = operators.length;
  for (let i = operators.length - 1; i >= -1; i--) {
    if (i >= 0 && operators[i]!.kind !== 'asyncMap') continue;
    // operators (i, end) are synchronous: compile them in front of what follows.
    next = compileChain(operators.slice(i + 1, end), next, where);
    if (i < 0) break;
    const op = operators[i]!;
    if (op.async === undefined) throw new TypeError(`asyncMap ${op.name} has no options`);
    const operator = new AsyncOperator(op.name, op.fn as never, op.async, next, { ...hooks, jobId: where.jobId, stageId: where.stageId, keyGroup: where.keyGroup });
    asyncOps.unshift(operator);
    next = (v, ts) => operator.push(v, ts);
    end = i;
  }
  return {
    emit: next,
    async: {
      marker: (cb) => asyncOps.reduceRight<() => void>((after, op) => () => op.marker(after), cb)(),
      get full() {
        return asyncOps.some((op) => op.full);
      },
      whenReady: async () => {
        for (let op = asyncOps.find((o) => o.full); op !== undefined; op = asyncOps.find((o) => o.full)) await op.whenReady();
      },
      close: () => {
        for (const op of asyncOps) op.close();
      },
    },
  };
}
