// The background half of state TTL (sdk/state.ts): reads already hide and delete expired
// values, but a key that is never read again would keep its expired state for ever. The sweeper
// walks one key group's committed range a bounded number of entries per call, resuming where it
// stopped, and writes a tombstone for every expired value of a TTL state. Tombstones go through
// the overlay, so the clean-up is checkpointed like any write.
//
// It reads only RocksDB (the last completed checkpoint): values written since are in the
// overlay, are newer, and get swept after they are committed. Before deleting, it checks the
// latest view, so a value rewritten since the checkpoint is never deleted.
import type { StateSpec } from '../../core/manifest.ts';
import type { StateBackend } from './state-backend.ts';
import { isExpired, type Clock } from './state-handles.ts';

export interface SweepResult {
  /** Committed entries looked at. */
  scanned: number;
  /** Tombstones written. */
  expired: number;
  /** True when this call reached the end of the key group (the next call starts again at its beginning). */
  finished: boolean;
}

interface DecodedKey {
  state: string;
  key: string;
  /** The rest after the key (a map entry's key; '' for other kinds). */
  rest: string;
}

/** Splits a stored key [u8][stage][u16 kg][u8][state][u16][key][mapKey] (worker/state/key-codec.ts). */
export function decodeStateKey(stored: Buffer): DecodedKey | undefined {
  let p = stored[0]! + 3;
  const stateLength = stored[p];
  if (stateLength === undefined || stored.length < p + 1 + stateLength + 2) return undefined;
  const state = stored.toString('utf8', p + 1, p + 1 + stateLength);
  p += 1 + stateLength;
  const keyLength = stored.readUInt16BE(p);
  p += 2;
  if (stored.length < p + keyLength) return undefined;
  return { state, key: stored.toString('utf8', p, p + keyLength), rest: stored.toString('utf8', p + keyLength) };
}

export class TtlSweeper {
  readonly #backend: StateBackend;
  readonly #stage: string;
  /** TTL states of the stage: name → { ttlMs, map }. */
  readonly #ttl: ReadonlyMap<string, { ttlMs: number; map: boolean }>;
  readonly #clock: Clock;
  /** Per key group: the last key looked at. */
  readonly #cursor = new Map<number, Buffer>();

  constructor(backend: StateBackend, stage: string, states: readonly StateSpec[], clock: Clock = Date.now) {
    this.#backend = backend;
    this.#stage = stage;
    this.#ttl = new Map(states.filter((s) => s.ttlMs !== undefined).map((s) => [s.name, { ttlMs: s.ttlMs!, map: s.kind === 'map' }]));
    this.#clock = clock;
  }

  /** True when the stage has any TTL state (otherwise sweeping is pointless). */
  get enabled(): boolean {
    return this.#ttl.size > 0;
  }

  /** Looks at up to maxEntries committed entries of the key group, from where the last call stopped. */
  async sweep(keyGroup: number, maxEntries: number): Promise<SweepResult> {
    if (!this.enabled) return { scanned: 0, expired: 0, finished: true };
    const page = await this.#backend.scanCommittedKeyGroup(this.#stage, keyGroup, this.#cursor.get(keyGroup), maxEntries);
    const now = this.#clock();
    let expired = 0;
    for (const [stored, value] of page) {
      const decoded = decodeStateKey(stored);
      const ttl = decoded === undefined ? undefined : this.#ttl.get(decoded.state);
      if (decoded === undefined || ttl === undefined || !isExpired(value, ttl.ttlMs, now)) continue;
      const mapKey = ttl.map ? decoded.rest : undefined;
      const latest = await this.#backend.readBytes(this.#stage, keyGroup, decoded.state, decoded.key, mapKey);
      if (latest === null || !isExpired(latest, ttl.ttlMs, now)) continue;
      this.#backend.writeBytes(this.#stage, keyGroup, decoded.state, decoded.key, mapKey, null);
      expired++;
    }
    const finished = page.length < maxEntries;
    if (finished) this.#cursor.delete(keyGroup);
    else this.#cursor.set(keyGroup, page[page.length - 1]![0]);
    return { scanned: page.length, expired, finished };
  }
}
