// A record's undo log over the state backend's active overlay (issue 12: records are
// all-or-nothing under errorPolicy "dead-letter"). Every write of the record notes the overlay
// entry it replaced; a record that throws has them put back, newest first, so that it leaves no
// state change behind — reads of other keys, and their writes, are untouched because keyed state
// is addressed by key (different keys never share an overlay entry).
//
// The log is one per keyed context and reused record after record (two arrays whose length is
// reset): no allocation per write beyond the arrays' growth.

export class StateUndoLog {
  /** The overlay the record wrote to (StateBackend's); a record never spans a checkpoint freeze. */
  overlay: object | undefined;
  /** Set when the record's writes went to more than one overlay: it cannot be undone exactly. */
  spansOverlays = false;
  /** Overlay keys written, oldest first (a key may repeat). */
  readonly keys: string[] = [];
  /** What each write replaced in the overlay: an entry (null: a tombstone) or undefined: none. */
  readonly previous: Array<Buffer | null | undefined> = [];

  note(overlay: object, key: string, previous: Buffer | null | undefined): void {
    if (this.overlay === undefined) this.overlay = overlay;
    else if (this.overlay !== overlay) this.spansOverlays = true;
    this.keys.push(key);
    this.previous.push(previous);
  }

  /** Forget everything: the record committed (or was undone). */
  reset(): void {
    this.overlay = undefined;
    this.spansOverlays = false;
    this.keys.length = 0;
    this.previous.length = 0;
  }

  get writes(): number {
    return this.keys.length;
  }
}
