// All-or-nothing output of one record (errorPolicy "dead-letter", error-policy.ts): while a record
// runs atomically, what its output would write (to sinks, channels, asyncMaps, dead letters) is
// held as (apply, a, b, c) quadruples and applied in order once the record succeeds; when it
// throws, nothing is written. Sinks encode a held write at once (Sink.prepare), so an encoding
// error throws inside the record. Outside a record the writers go straight through: the record
// path reads one field, and holds no closure.
import type { AsyncOperator } from './async-operator.ts';
import type { ChannelSender } from '../channel/index.ts';
import type { Sink } from '../sink/index.ts';
import type { DeadLetter, DeadLetters } from './dead-letters.ts';
import type { StageCounters } from './stage-counters.ts';

/** Applies one held write: (apply, a, b, c). */
export type Apply = (a: unknown, b: unknown, c: unknown) => void;

export class HeldOutput {
  /** While a record runs atomically, its held writes; undefined otherwise (writes go straight through). */
  list: unknown[] | undefined = undefined;

  /**
   * Runs `run` (which emits one record's output) all-or-nothing: its writes are applied when it
   * returns; when it throws, none is and the error is rethrown. Nested calls join the outer one.
   */
  atomically(run: () => void): void {
    if (this.list !== undefined) return run();
    const list: unknown[] = [];
    this.list = list;
    try {
      run();
    } finally {
      this.list = undefined;
    }
    for (let i = 0; i < list.length; i += 4) (list[i] as Apply)(list[i + 1], list[i + 2], list[i + 3]);
  }
}

/** A held sink write: (commitSink, sink, prepared, undefined). */
export const commitSink: Apply = (sink, prepared) => (sink as Sink).commit(prepared);
/** A held record for a channel: (sendTo, sender, keyGroup, record). */
export const sendTo: Apply = (sender, keyGroup, record) => (sender as ChannelSender).send(keyGroup as number, record as { key: string; timestamp: number; value: unknown; origin: number });
/** A held record for an asyncMap: (pushAsync, operator, value, timestamp). */
export const pushAsync: Apply = (operator, value, ts) => (operator as AsyncOperator).push(value, ts as number);
/** A held dead letter: (publishDeadLetter, { deadLetters, counters }, letter, undefined). */
export const publishDeadLetter: Apply = (o, letter) => (o as { deadLetters: DeadLetters; counters: StageCounters }).deadLetters.publish(letter as DeadLetter, (o as { counters: StageCounters }).counters);
