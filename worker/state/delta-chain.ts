// The in-memory half of the state backend (docs/ARCHITECTURE.md, "State"): the active overlay of
// what changed since the last barrier, and the frozen deltas of checkpoints not yet committed to
// RocksDB, oldest first. A read looks at the active overlay, then the deltas newest first; a
// barrier freezes the active overlay into delta N; a completed checkpoint moves its deltas to
// RocksDB (committed-store.ts) and drops them here; a rollback drops them all.
import type { KeyGroupColumns, KeyGroupEntries } from '../../core/checkpoint-format.ts';
import { EddyError, InvalidArgumentError } from '../../core/errors.ts';
import { decodeKeyGroupPrefix, keyGroupOfKeyString } from './key-codec.ts';
import { Overlay, type Entry } from './overlay.ts';
import type { LiveCache } from './live-cache.ts';

/** A frozen overlay: what changed between the barriers of the previous checkpoint and this one. */
export type Delta = { checkpointId: number; overlay: Overlay };

/** One key group's entries of a delta, keys as the overlay's latin1 strings. */
export interface DeltaColumns extends KeyGroupColumns {
  keys: string[];
  values: Entry[];
}

export class DeltaChain {
  /** Where writes land: what changed since the last barrier. */
  active = new Overlay();
  /** Frozen deltas, ascending by checkpoint id. */
  frozen: Delta[] = [];
  /** The highest checkpoint id frozen (committed ones included); -1: none. */
  lastFrozenId = -1;
  /** The highest checkpoint id written to RocksDB; -1: none since open. */
  committedId = -1;

  /** The newest overlay entry of a key (null: a tombstone), undefined when no overlay has it. */
  get(key: string): Entry | undefined {
    const active = this.active.entries.get(key);
    if (active !== undefined) return active;
    for (let i = this.frozen.length - 1; i >= 0; i--) {
      const frozen = this.frozen[i]!.overlay.entries.get(key);
      if (frozen !== undefined) return frozen;
    }
    return undefined;
  }

  /** True when an overlay (active or frozen) holds key. */
  has(key: string): boolean {
    if (this.active.entries.has(key)) return true;
    for (const delta of this.frozen) if (delta.overlay.entries.has(key)) return true;
    return false;
  }

  /** Every overlay, oldest first (the active one last). */
  overlays(): Overlay[] {
    return [...this.frozen.map((d) => d.overlay), this.active];
  }

  /**
   * Turns the active overlay into delta checkpointId; processing continues on a new overlay. The
   * live values changed since the last freeze are encoded into it first, once.
   */
  freeze(checkpointId: number, live: LiveCache): void {
    assertCheckpointId(checkpointId);
    if (checkpointId <= this.lastFrozenId) {
      throw new EddyError('FAILED_PRECONDITION', `cannot freeze checkpoint ${checkpointId}: checkpoint ${this.lastFrozenId} is already frozen or committed`);
    }
    this.lastFrozenId = checkpointId;
    live.flush(this.active);
    if (this.active.entries.size === 0) return;
    this.frozen.push({ checkpointId, overlay: this.active });
    this.active = new Overlay();
  }

  /**
   * The changes of frozen delta checkpointId, for upload: per stage (by name), per key group
   * (ascending), tombstones as null. Keys are the overlay's latin1 strings and values its encoded
   * bytes, shared with the delta (do not mutate): nothing is allocated per entry, since a delta
   * lives until its checkpoint completes and every object in it is copied by the GC meanwhile.
   * Empty when freezing an empty overlay made no delta. Throws FAILED_PRECONDITION for an id not
   * frozen yet, already committed or dropped by rollback.
   */
  frozenColumns(checkpointId: number): Array<{ stage: string; groups: DeltaColumns[] }> {
    assertCheckpointId(checkpointId);
    if (checkpointId > this.lastFrozenId || checkpointId <= this.committedId) {
      throw new EddyError('FAILED_PRECONDITION', `checkpoint ${checkpointId} has no frozen delta: frozen up to ${this.lastFrozenId}, committed up to ${this.committedId}`);
    }
    const delta = this.frozen.find((frozen) => frozen.checkpointId === checkpointId);
    if (delta === undefined) return [];
    // Consecutive keys mostly share their stage: its prefix ([u8 length][stage], key-codec.ts) is
    // compared, and decoded only when it changes; the key group is read from two chars.
    const byStage = new Map<string, Map<number, { keys: string[]; values: Entry[] }>>();
    let stagePrefix = '';
    let groups: Map<number, { keys: string[]; values: Entry[] }> | undefined;
    for (const [key, value] of delta.overlay.entries) {
      if (groups === undefined || !key.startsWith(stagePrefix)) {
        stagePrefix = key.slice(0, key.charCodeAt(0) + 1);
        const { stage } = decodeKeyGroupPrefix(Buffer.from(key, 'latin1'));
        groups = byStage.get(stage);
        if (groups === undefined) byStage.set(stage, (groups = new Map()));
      }
      const keyGroup = keyGroupOfKeyString(key);
      let group = groups.get(keyGroup);
      if (group === undefined) groups.set(keyGroup, (group = { keys: [], values: [] }));
      group.keys.push(key);
      group.values.push(value);
    }
    return [...byStage.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([stage, stageGroups]) => ({
        stage,
        groups: [...stageGroups.entries()].sort(([a], [b]) => a - b).map(([keyGroup, { keys, values }]) => ({ keyGroup, keys, values })),
      }));
  }

  /** frozenColumns() as entries with keys as bytes (fresh copies): what a restore imports. */
  frozenDelta(checkpointId: number): Array<{ stage: string; groups: KeyGroupEntries[] }> {
    return this.frozenColumns(checkpointId).map(({ stage, groups }) => ({
      stage,
      groups: groups.map(({ keyGroup, keys, values }) => ({ keyGroup, entries: keys.map((key, i): [Buffer, Entry] => [Buffer.from(key, 'latin1'), values[i]!]) })),
    }));
  }

  /**
   * The newest overlay entry of every key of one map, or undefined when no overlay has any. With
   * bounds, only the keys in [lower, upper) (latin1 full keys): a timer page starts at the earliest
   * live timer, and the tombstones of the timers fired since the last checkpoint lie below it.
   */
  mergedMap(prefix: string, lower?: string, upper?: string): Map<string, Entry> | undefined {
    let merged: Map<string, Entry> | undefined;
    const add = (overlay: Overlay): void => {
      const keys = overlay.mapIndex.get(prefix);
      if (keys === undefined) return;
      merged ??= new Map();
      for (const full of keys) {
        if (lower !== undefined && (full < lower || full >= upper!)) continue;
        const value = overlay.entries.get(full);
        if (value !== undefined) merged.set(full, value);
      }
    };
    for (const delta of this.frozen) add(delta.overlay);
    add(this.active);
    return merged;
  }

  /** The changes under a prefix in the deltas up to checkpointId, the newer over the older. */
  changesUpTo(checkpointId: number, prefix: string): Map<string, Entry> {
    const changes = new Map<string, Entry>();
    for (const delta of this.frozen) {
      if (delta.checkpointId > checkpointId) break;
      for (const [key, value] of delta.overlay.entries) if (key.startsWith(prefix)) changes.set(key, value);
    }
    return changes;
  }

  /** Drops every entry under a prefix: from the active overlay, and with `frozen` from the deltas too. */
  dropPrefix(prefix: string, frozen: boolean): void {
    this.active.dropPrefix(prefix);
    if (frozen) for (const delta of this.frozen) delta.overlay.dropPrefix(prefix);
  }

  /** The deltas up to checkpointId, oldest first: what a commit writes to RocksDB. */
  deltasUpTo(checkpointId: number): Delta[] {
    let count = 0;
    while (count < this.frozen.length && this.frozen[count]!.checkpointId <= checkpointId) count++;
    return this.frozen.slice(0, count);
  }

  /** RocksDB holds checkpointId: its deltas (written) leave memory. */
  committed(checkpointId: number, written: readonly Delta[]): void {
    // By identity: a rollback during the write may have replaced the list.
    if (written.length > 0) this.frozen = this.frozen.filter((delta) => !written.includes(delta));
    if (checkpointId > this.committedId) this.committedId = checkpointId;
    if (this.lastFrozenId < this.committedId) this.lastFrozenId = this.committedId;
  }

  /** Back to the last committed state: the active overlay and every delta are dropped. */
  rollback(): void {
    this.active = new Overlay();
    this.frozen = [];
    // The checkpoints after the committed one are gone; the coordinator may issue their ids again.
    this.lastFrozenId = this.committedId;
  }
}

export function assertCheckpointId(checkpointId: number): void {
  if (!Number.isSafeInteger(checkpointId) || checkpointId < 0) throw new InvalidArgumentError(`checkpoint id ${checkpointId} is not a non-negative integer`);
}
