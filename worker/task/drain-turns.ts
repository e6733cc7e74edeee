// The share of each turn of the event loop that a thread's record loops take, together: every
// keyed task's key-group drains (keyed-task.ts) and every source split's read loop
// (source-task.ts). Records whose state reads hit memory resolve as microtasks, and a JetStream
// consumer hands out buffered messages the same way, so a loop with a backlog would run it in one
// go, starving timers, sockets and commits: the loops give the event loop a turn once they have
// run for YIELD_EVERY_MS since the turn began.
//
// The stretch is the thread's, not each loop's: when every drain restarted its own 20 ms after its
// yield and the sources did not yield at all, a worker with a backlog in 128 key groups ran turns
// of ~0.5 s, and everything that waits for a turn waited that long each time: a checkpoint's
// trigger, its barriers' publishes, the status the heartbeats carry, and each slice of a commit.
//
// Fairness: the loops the last turn had no time left for resume first in the next, in order, and
// those that ran in it after them, so a busy key group or split does not keep the others waiting.

/** Longest stretch the thread's record loops run, together, without letting timers and I/O in. */
export const YIELD_EVERY_MS = 20;

export class DrainTurns {
  /** When the current stretch began (performance.now()): the latest turn given to the loops. */
  #stretchStart = 0;
  /** Loops the current stretch had no time for, in order: first in the next turn. */
  #deferred: Array<() => void> = [];
  /** Loops that ran in the current stretch and wait for the next turn. */
  #ran: Array<() => void> = [];
  #scheduled = false;

  /**
   * True when the loops have had their stretch in this turn. A loop then waits as follows, the
   * check right after each await, in its own code: a check inside an async helper would run for
   * every resumed loop before any of them works, and all of them would run in the same turn.
   *
   *     if (turns.due) {
   *       await turns.next();
   *       while (turns.due) await turns.again();
   *     }
   */
  get due(): boolean {
    return performance.now() - this.#stretchStart > YIELD_EVERY_MS;
  }

  /** Resolves in the next turn of the event loop, after the loops the last turn had no time for. */
  next(): Promise<void> {
    return this.#wait(this.#ran);
  }

  /** The turn had no time left for this loop: resolves in the next, before the loops that ran. */
  again(): Promise<void> {
    return this.#wait(this.#deferred);
  }

  #wait(list: Array<() => void>): Promise<void> {
    return new Promise<void>((resolve) => {
      list.push(resolve);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#turn);
      }
    });
  }

  readonly #turn = (): void => {
    this.#scheduled = false;
    this.#stretchStart = performance.now();
    const resume = this.#deferred.length === 0 ? this.#ran : this.#deferred.concat(this.#ran);
    this.#deferred = [];
    this.#ran = [];
    for (const resolve of resume) resolve();
  };
}

/** The record loops of this thread (a job's thread, or the worker's with --job-isolation none). */
export const threadTurns = new DrainTurns();
