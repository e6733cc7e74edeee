// Chaining: the stateless operators between two shuffles run as nested function calls inside
// one task, with no NATS hop and no per-record allocation beyond what user code does.
import type { OperatorImpl } from '../sdk/index.ts';
import { UserFunctionError } from '../core/errors.ts';

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
