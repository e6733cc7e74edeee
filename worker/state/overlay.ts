// The in-memory layer of the state backend: writes land in the active overlay, a barrier freezes it
// into a checkpoint's delta, and reads merge overlays newest first over RocksDB.

import type { StateUndoLog } from './state-undo.ts';

/** An encoded value, or null for a tombstone that hides the committed value. */
export type Entry = Buffer | null;

export class Overlay {
  /** latin1 of the encoded key → entry: a one-byte string key is cheap to hash and to keep. */
  readonly entries = new Map<string, Entry>();
  readonly #mapIndex = new Map<string, Set<string>>();
  /**
   * Map entries not in #mapIndex yet, as key, map prefix, key, map prefix…: the index is brought up
   * to date when something reads it (a map read, a commit into a read cache holding maps). A job
   * nobody reads maps of as bytes wrote a Set entry per map entry it changed, at every freeze.
   */
  #unindexed: string[] = [];
  bytes = 0;

  /** Map prefix → full keys of that map in this overlay, so map reads never scan the overlay. A key may have no entry (undone): readers skip it. */
  get mapIndex(): ReadonlyMap<string, ReadonlySet<string>> {
    const pending = this.#unindexed;
    if (pending.length > 0) {
      this.#unindexed = [];
      for (let i = 0; i < pending.length; i += 2) {
        const key = pending[i]!;
        const keys = this.#mapIndex.get(pending[i + 1]!);
        if (keys === undefined) this.#mapIndex.set(pending[i + 1]!, new Set([key]));
        else keys.add(key);
      }
    }
    return this.#mapIndex;
  }

  set(key: string, value: Entry, mapPrefix: string | undefined, undo?: StateUndoLog): void {
    const old = this.entries.get(key);
    undo?.note(this, key, old);
    if (old !== undefined) this.bytes -= key.length + (old === null ? 0 : old.length);
    this.entries.set(key, value);
    this.bytes += key.length + (value === null ? 0 : value.length);
    // A key the overlay held is noted already: a key written again does not grow the list.
    if (mapPrefix !== undefined && old === undefined) this.#unindexed.push(key, mapPrefix);
  }

  /** set() of a key this overlay does not hold (the live cache's flush into an empty overlay): one lookup fewer. */
  setNew(key: string, value: Entry, mapPrefix: string | undefined): void {
    this.entries.set(key, value);
    this.bytes += key.length + (value === null ? 0 : value.length);
    if (mapPrefix !== undefined) this.#unindexed.push(key, mapPrefix);
  }

  /** Puts back what a write replaced (undefined: the key was not in this overlay). A map index may keep the key: reads skip keys without an entry. */
  restore(key: string, previous: Entry | undefined): void {
    const current = this.entries.get(key);
    if (current !== undefined) this.bytes -= key.length + (current === null ? 0 : current.length);
    if (previous === undefined) {
      this.entries.delete(key);
      return;
    }
    this.entries.set(key, previous);
    this.bytes += key.length + (previous === null ? 0 : previous.length);
  }

  dropPrefix(prefix: string): void {
    for (const [key, value] of this.entries) {
      if (!key.startsWith(prefix)) continue;
      this.entries.delete(key);
      this.bytes -= key.length + (value === null ? 0 : value.length);
    }
    const index = this.mapIndex as Map<string, Set<string>>;
    for (const mapPrefix of index.keys()) if (mapPrefix.startsWith(prefix)) index.delete(mapPrefix);
  }
}

/** The smallest `limit` keys in [lower, upper) with a live (non-tombstone) entry, sorted. */
export function smallestLiveKeys(entries: ReadonlyMap<string, Entry>, lower: string, upper: string, limit: number): string[] {
  if (limit >= entries.size) {
    const all: string[] = [];
    for (const [key, value] of entries) if (value !== null && key >= lower && key < upper) all.push(key);
    return all.sort();
  }
  const best: string[] = [];
  for (const [key, value] of entries) {
    if (value === null || key < lower || key >= upper) continue;
    if (best.length >= limit && key >= best[best.length - 1]!) continue;
    // Binary search for the insertion point; keys are distinct.
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (best[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    best.splice(lo, 0, key);
    if (best.length > limit) best.pop();
  }
  return best;
}
