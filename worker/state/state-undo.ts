// A record's undo log over the state backend's active overlay and live cache (issue 12: records
// are all-or-nothing under errorPolicy "dead-letter"). Every write of the record notes what it
// replaced: the overlay entry (byte-level writes: feature metadata, timers) or the live entry's
// value (state handles, worker/state/live-cache.ts). A record that throws has them put back,
// newest first, so that it leaves no state change behind — reads of other keys, and their writes,
// are untouched because keyed state is addressed by key (different keys never share an entry).
//
// The log is one per keyed context and reused record after record (arrays whose length is
// reset): no allocation per write beyond the arrays' growth.
import { EddyError } from '../../core/errors.ts';

/** What takeBack needs of the live cache (live-cache.ts) and the active overlay (overlay.ts). */
interface UndoableLive {
  generation: number;
  restore(entry: unknown, existed: boolean, value: unknown, time: number, dirty: boolean): void;
}
interface UndoableOverlay {
  restore(key: string, previous: Buffer | null | undefined): void;
}

export class StateUndoLog {
  /** The overlay the record wrote to (StateBackend's); a record never spans a checkpoint freeze. */
  overlay: object | undefined;
  /** Set when the record's writes went to more than one overlay: it cannot be undone exactly. */
  spansOverlays = false;
  /** Overlay keys written, oldest first (a key may repeat). */
  readonly keys: string[] = [];
  /** What each write replaced in the overlay: an entry (null: a tombstone) or undefined: none. */
  readonly previous: Array<Buffer | null | undefined> = [];
  /** The live cache written to, and its generation at the record's first live write. */
  live: { generation: number } | undefined;
  liveGeneration = 0;
  /** Live writes, oldest first, five slots each: the entry, whether it existed, its value, time and dirty flag before. */
  readonly liveWrites: unknown[] = [];
  /** Caches over the record's writes, to drop once they are taken back: a hook and its argument, two slots each. */
  readonly afterUndo: unknown[] = [];

  note(overlay: object, key: string, previous: Buffer | null | undefined): void {
    if (this.overlay === undefined) this.overlay = overlay;
    else if (this.overlay !== overlay) this.spansOverlays = true;
    this.keys.push(key);
    this.previous.push(previous);
  }

  noteLive(cache: { generation: number }, entry: { value: unknown; time: number; dirty: boolean }, existed: boolean): void {
    if (this.live === undefined) {
      this.live = cache;
      this.liveGeneration = cache.generation;
    }
    this.liveWrites.push(entry, existed, entry.value, entry.time, entry.dirty);
  }

  /** Runs hook(arg) once the record's writes have been taken back (not when it commits). */
  noteAfterUndo(hook: (arg: string) => void, arg: string): void {
    this.afterUndo.push(hook, arg);
  }

  /** The record's writes were taken back: runs the hooks noted by noteAfterUndo, oldest first, then forgets everything. */
  undone(): void {
    const a = this.afterUndo;
    for (let i = 0; i < a.length; i += 2) (a[i] as (arg: string) => void)(a[i + 1] as string);
    this.reset();
  }

  /** Forget everything: the record committed (or was undone). */
  reset(): void {
    this.afterUndo.length = 0;
    this.overlay = undefined;
    this.spansOverlays = false;
    this.keys.length = 0;
    this.previous.length = 0;
    this.live = undefined;
    this.liveWrites.length = 0;
  }

  /**
   * Takes back the noted writes, newest first, and resets the log (StateBackend.undo). Throws when
   * they cannot be taken back exactly (they span a checkpoint freeze or a rollback): the caller
   * then fails the task, and recovery restores the last checkpoint instead.
   */
  takeBack(live: UndoableLive, active: UndoableOverlay): void {
    if (this.writes === 0) return;
    if (this.live !== undefined) {
      // A flush, rollback or invalidation since the record's first live write: its previous
      // values may already be encoded into an overlay or gone.
      if (this.live !== live || this.liveGeneration !== live.generation) this.#cannot();
      const w = this.liveWrites;
      for (let i = w.length - 5; i >= 0; i -= 5) live.restore(w[i], w[i + 1] as boolean, w[i + 2], w[i + 3] as number, w[i + 4] as boolean);
    }
    if (this.keys.length > 0) {
      if (this.spansOverlays || this.overlay !== active) this.#cannot();
      for (let i = this.keys.length - 1; i >= 0; i--) active.restore(this.keys[i]!, this.previous[i]);
    }
    this.undone();
  }

  #cannot(): never {
    this.reset();
    throw new EddyError('INTERNAL', 'a record\'s state changes span a checkpoint freeze or rollback and cannot be undone');
  }

  get writes(): number {
    return this.keys.length + this.liveWrites.length / 5 + this.afterUndo.length / 2;
  }
}
