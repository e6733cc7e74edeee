// An iterator over a Map kept between calls, for caches that evict from the front: a new iterator
// starts at the table's first slot and skips every slot emptied since the Map last rehashed
// (docs/STACK-NOTES.md, "Map iterators"), so taking "the eldest" with a fresh one each time costs
// the number of entries evicted so far. Kept iterators stay valid through deletes, inserts and
// rehashes.

export class KeptIterator<T> {
  readonly #start: () => Iterator<T>;
  #iterator: Iterator<T> | undefined;

  /** start: a new iterator over the Map (its keys(), values() or entries()). */
  constructor(start: () => Iterator<T>) {
    this.#start = start;
  }

  /** The next item after the last one this returned; at the end, the first again; undefined when the Map is empty. */
  next(): T | undefined {
    let next = this.#iterator?.next();
    if (next === undefined || next.done === true) {
      this.#iterator = this.#start();
      next = this.#iterator.next();
    }
    return next.done === true ? undefined : next.value;
  }

  /** Starts again at the first item (the Map was cleared). */
  reset(): void {
    this.#iterator = undefined;
  }
}
