// Markers (barriers and watermarks) through a stage's operator tree (stage-output.ts): a marker
// passes a synchronous operator at once and an asyncMap once every record before it has left it
// (AsyncOperator.marker), and is forwarded on an edge (or cuts the exactly-once output at a sink)
// where it arrives. A tree without an asyncMap on the way gets the marker synchronously.
import type { ChannelSender } from '../channel/index.ts';
import { isExactlyOnce, type CheckpointOutput, type Sink } from '../sink/index.ts';
import type { AsyncOperator } from './async-operator.ts';
import type { DeadLetters } from './dead-letters.ts';
import type { StagePlan } from '../../sdk/plan.ts';

/** Where a marker goes next: an operator of the tree, or a sink. */
export type MarkerNode = { operator: number } | { sink: number };

/** The nodes a marker reaches next after operator `from` (undefined: the stage's input), or its side output `side`. */
export function nodesAfter(spec: StagePlan['spec'], from: number | undefined, side: string | undefined): MarkerNode[] {
  const out: MarkerNode[] = [];
  spec.operators.forEach((op, j) => {
    if (op.kind !== 'process' && op.input === from && op.sideOutput === side) out.push({ operator: j });
  });
  spec.sinks.forEach((s, i) => {
    if (s.input === from && s.sideOutput === side) out.push({ sink: i });
  });
  return out;
}

export class StageMarkers {
  readonly #spec: StagePlan['spec'];
  readonly #roots: readonly MarkerNode[];
  readonly #sinks: readonly Sink[];
  /** The channel sender of each keyBy/broadcast operator, by operator index. */
  readonly #senderOf: ReadonlyMap<number, ChannelSender>;
  /** The asyncMap of each asyncMap operator, by operator index. */
  readonly #asyncOf: ReadonlyMap<number, AsyncOperator>;
  readonly #deadLetters: DeadLetters;

  constructor(spec: StagePlan['spec'], roots: readonly MarkerNode[], sinks: readonly Sink[], senderOf: ReadonlyMap<number, ChannelSender>, asyncOf: ReadonlyMap<number, AsyncOperator>, deadLetters: DeadLetters) {
    this.#spec = spec;
    this.#roots = roots;
    this.#sinks = sinks;
    this.#senderOf = senderOf;
    this.#asyncOf = asyncOf;
    this.#deadLetters = deadLetters;
  }

  /**
   * Sends a marker from the roots through the tree: `atSender` / `atSink` run where it arrives,
   * `done` once it arrived everywhere (synchronously when no asyncMap is on the way).
   */
  send(atSender: (s: ChannelSender) => void, atSink: (sink: Sink) => void, done: () => void): void {
    let pending = 1;
    const arrived = (): void => {
      if (--pending === 0) done();
    };
    const visit = (node: MarkerNode): void => {
      if ('sink' in node) {
        atSink(this.#sinks[node.sink]!);
        return;
      }
      const s = this.#senderOf.get(node.operator);
      if (s !== undefined) {
        atSender(s);
        return;
      }
      const next = nodesAfter(this.#spec, node.operator, undefined);
      const op = this.#asyncOf.get(node.operator);
      if (op === undefined) {
        for (const n of next) visit(n);
        return;
      }
      pending++;
      op.marker(() => {
        for (const n of next) visit(n);
        arrived();
      });
    };
    for (const n of this.#roots) visit(n);
    arrived();
  }

  /**
   * Barrier N through the tree: forwarded on every edge, and the exactly-once output cut at every
   * sink, where the marker arrives. Returns that output; `done` gets it once the marker arrived
   * everywhere (at once, before returning, when no asyncMap is on the way).
   */
  cut(checkpointId: number, done: (out: CheckpointOutput[]) => void): CheckpointOutput[] {
    // Dead letters of records before the barrier: those of the task itself now, those an
    // asyncMap raises for records still inside it once the marker has passed it (below).
    const out: CheckpointOutput[] = this.#deadLetters.take();
    this.send(
      (s) => {
        s.flush();
        s.sendBarrier(checkpointId);
      },
      (sink) => {
        if (isExactlyOnce(sink)) for (const x of sink.take(checkpointId)) out.push(x);
      },
      () => {
        if (this.#asyncOf.size > 0) out.push(...this.#deadLetters.take());
        done(out);
      },
    );
    return out;
  }
}
