// What a feature keeps beside its state: the event time of its last update and, for a feature
// declared with history, its versions. Both are ordinary entries of the state backend inside the
// key group's range, so they go through overlay → delta → checkpoint → RocksDB like the state
// they describe: exactly-once, rollback, moves and restores cover them with no extra protocol.
//
// Key layout (the backend's [stage][keyGroup][state][key], with reserved state names; user state
// names cannot start with NUL, see sdk/state.ts and core/manifest.ts):
//
//   [stage][kg]["\0m:" + state][key]                  meta:    f64 BE event time of the last update (ms)
//   [stage][kg]["\0s:" + state][key]                  head:    f64 BE newest version time [+ msgpack map]
//   [stage][kg]["\0h:" + state][key][u64 BE time+2^63] version: msgpack value, or empty = absent
//
// A history feature's versions of one key are contiguous and ordered by event time, so "the value
// current at T" is one reverse seek to the greatest version <= T. A map feature's version is the
// whole map (as an object): its head entry carries the current snapshot, so writing a version
// applies the record's changes to it instead of scanning the map.
//
// The meta entry is written synchronously with the record's first change to the state, so a read
// never sees a change without its event time (worker/task/keyed-context.ts); readFeature checks that no
// record touched the entity while it read the value.
import type { FeatureSpec, StageSpec, StateKind } from '../../core/manifest.ts';
import type { StateBackend, StateView } from './state-backend.ts';
import { encodeValue, packValueView, unpackValue } from './value-codec.ts';
import type { StateUndoLog } from './state-undo.ts';
import type { LiveCodec, LiveEntry } from './live-cache.ts';

export const META_STATE_PREFIX = '\u0000m:';
export const HISTORY_STATE_PREFIX = '\u0000h:';
export const HEAD_STATE_PREFIX = '\u0000s:';

const EMPTY = Buffer.alloc(0);
const EMPTY_MAP = encodeValue({});
const TIME_OFFSET = 2n ** 63n;

/** How one state of a stage is served: what the runtime keeps beside it. */
export interface FeatureStateSpec {
  state: string;
  kind: StateKind;
  /** Versions are kept this long (event time, relative to the key's newest version); undefined: no history. */
  historyRetentionMs: number | undefined;
}

/** The states of a stage that features serve, by state name. */
export function featureStates(stage: StageSpec): Map<string, FeatureStateSpec> {
  const out = new Map<string, FeatureStateSpec>();
  for (const f of stage.features) {
    const kind = stage.states.find((s) => s.name === f.state)?.kind ?? 'value';
    const previous = out.get(f.state);
    const retention = Math.max(previous?.historyRetentionMs ?? -1, f.history?.retentionMs ?? -1);
    out.set(f.state, { state: f.state, kind, historyRetentionMs: retention >= 0 ? retention : undefined });
  }
  return out;
}

/** The retention of a feature's history, or undefined when it keeps none. */
export function historyRetentionOf(spec: FeatureSpec): number | undefined {
  return spec.history?.retentionMs;
}

/** The 8 bytes of an event time in key order (offset binary: negative times sort first). */
export function encodeVersionTime(timeMs: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(Math.trunc(timeMs)) + TIME_OFFSET);
  return b;
}

export function decodeVersionTime(bytes: Buffer, offset: number): number {
  return Number(bytes.readBigUInt64BE(offset) - TIME_OFFSET);
}

export function metaKey(backend: StateBackend, stage: string, keyGroup: number, state: string, key: string): string {
  return backend.stateKeyString(stage, keyGroup, META_STATE_PREFIX + state, key);
}

export function historyPrefix(backend: StateBackend, stage: string, keyGroup: number, state: string, key: string): string {
  return backend.stateKeyString(stage, keyGroup, HISTORY_STATE_PREFIX + state, key);
}

export function versionKey(prefix: string, timeMs: number): string {
  return prefix + encodeVersionTime(timeMs).toString('latin1');
}

/** The newest version of a history feature: its time and, for a map, the whole current map. */
export interface HistoryHead {
  versionTimeMs: number;
  snapshot?: Record<string, unknown>;
}

export function encodeHead(head: HistoryHead): Buffer {
  const time = Buffer.allocUnsafe(8);
  time.writeDoubleBE(head.versionTimeMs);
  return head.snapshot === undefined ? time : Buffer.concat([time, packValueView(head.snapshot)]);
}

export function decodeHead(bytes: Buffer): HistoryHead {
  const versionTimeMs = bytes.readDoubleBE(0);
  if (bytes.length === 8) return { versionTimeMs };
  return { versionTimeMs, snapshot: unpackValue(bytes.subarray(8)) as Record<string, unknown> };
}

export function encodeEventTime(eventTimeMs: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleBE(eventTimeMs);
  return b;
}

export function encodeVersion(value: unknown): Buffer {
  return value === undefined ? EMPTY : encodeValue(value);
}

export function decodeVersion(bytes: Buffer): unknown | undefined {
  return bytes.length === 0 ? undefined : unpackValue(bytes);
}

/** A change a record made to a history map feature, replayed on the meta snapshot. */
export type MapChange = { op: 'put'; mapKey: string; value: unknown } | { op: 'remove'; mapKey: string } | { op: 'clear' };

export function headKey(backend: StateBackend, stage: string, keyGroup: number, state: string, key: string): string {
  return backend.stateKeyString(stage, keyGroup, HEAD_STATE_PREFIX + state, key);
}

// The meta entry is a live value (worker/state/live-cache.ts): a number per record, encoded once
// per key when its checkpoint freezes (or when a query reads it).
const EVENT_TIME_CODEC: LiveCodec = { encode: (value) => encodeEventTime(value as number) };

/**
 * At a record's first change to a feature state: its event time, in the same tick as the change.
 * meta: the key's metaKey, when the caller keeps it; known: its entry as this returned it last.
 */
export function touchFeature(backend: StateBackend, stage: string, keyGroup: number, key: string, spec: FeatureStateSpec, eventTimeMs: number | undefined, undo?: StateUndoLog, meta?: string, known?: LiveEntry): LiveEntry {
  // Sources give every record an event time; Date.now() covers records emitted without one.
  return backend.liveWrite(meta ?? metaKey(backend, stage, keyGroup, spec.state, key), undefined, EVENT_TIME_CODEC, eventTimeMs ?? Date.now(), 0, undo, known);
}

/**
 * After a record that changed a history feature: writes its version. Version times never go back
 * per key: a record older than the key's newest version is versioned at the newest version's time,
 * so versions stay in processing order (documented in the README).
 */
export async function recordFeatureVersion(
  backend: StateBackend,
  stage: string,
  keyGroup: number,
  key: string,
  spec: FeatureStateSpec,
  eventTimeMs: number | undefined,
  mapChanges: readonly MapChange[] | undefined,
): Promise<void> {
  const head = headKey(backend, stage, keyGroup, spec.state, key);
  const previousBytes = await backend.getRaw(head, 'latest');
  const previous = previousBytes === null ? undefined : decodeHead(previousBytes);
  let time = eventTimeMs ?? previous?.versionTimeMs ?? 0;
  if (previous !== undefined && previous.versionTimeMs > time) time = previous.versionTimeMs;
  let version: unknown;
  let snapshot: Record<string, unknown> | undefined;
  if (spec.kind === 'value') {
    version = await backend.getValue(stage, keyGroup, spec.state, key, 'latest');
  } else {
    if (previous?.snapshot !== undefined && mapChanges !== undefined) {
      snapshot = { ...previous.snapshot };
      for (const change of mapChanges) {
        if (change.op === 'put') snapshot[change.mapKey] = change.value;
        else if (change.op === 'remove') delete snapshot[change.mapKey];
        else snapshot = {};
      }
    } else {
      // First version of this key (or history declared on existing state): read the map once.
      snapshot = Object.fromEntries(await backend.mapEntries(stage, keyGroup, spec.state, key, 'latest'));
    }
    version = Object.keys(snapshot).length === 0 ? undefined : snapshot;
  }
  const encoded = encodeVersion(version);
  // The head carries the map after this record: the version's bytes, once encoded (an empty map
  // is the empty version, which decodes as "absent" and is kept as {} in the head).
  const headBytes = Buffer.allocUnsafe(8 + (snapshot === undefined ? 0 : encoded.length === 0 ? EMPTY_MAP.length : encoded.length));
  headBytes.writeDoubleBE(time);
  if (snapshot !== undefined) (encoded.length === 0 ? EMPTY_MAP : encoded).copy(headBytes, 8);
  backend.putRaw(head, headBytes);
  const prefix = historyPrefix(backend, stage, keyGroup, spec.state, key);
  backend.putRaw(versionKey(prefix, time), encoded, prefix);
}

/** Reads of an entity that a record kept changing are given up after this many attempts. */
const CONSISTENT_READ_ATTEMPTS = 5;

export interface FeatureRead {
  found: boolean;
  value: unknown;
  /** Event time of the last update (or of the version read), when known. */
  eventTimeMs: number | undefined;
  /** LATEST only: the answer includes changes not yet in a completed checkpoint. */
  uncommitted: boolean;
  /** as-of only: the time asked for is older than the key's retained history. */
  beyondRetention: boolean;
}

/**
 * The current value of a feature for one key, with its event time, in a view. The event time is
 * read before and after the value: a record that touched the entity in between makes it read again,
 * so the value and its event time belong together.
 *
 * When everything it reads is in memory (overlays, live values, the read and map caches: a hot
 * entity), it reads synchronously and returns the read itself: no record runs in between, so one
 * read of the event time is consistent with the value, and a batch of ids costs no promise per id.
 */
export function readFeature(backend: StateBackend, stage: string, keyGroup: number, spec: FeatureStateSpec, key: string, view: StateView): FeatureRead | Promise<FeatureRead> {
  const meta = metaKey(backend, stage, keyGroup, spec.state, key);
  const before = backend.getRawNow(meta, view);
  if (!(before instanceof Promise)) {
    const uncommitted = view === 'latest' && backend.overlayHas(meta);
    const read = readStateNow(backend, stage, keyGroup, spec, key, view);
    if (!(read instanceof Promise)) return featureRead(spec, read, before, uncommitted);
    // A miss: the read under way is the consistent read's first.
    return readFeatureConsistently(backend, stage, keyGroup, spec, key, view, meta, { before, uncommitted, read });
  }
  return readFeatureConsistently(backend, stage, keyGroup, spec, key, view, meta);
}

/** The feature's state: its value, or its map's entries; without a promise when in memory. */
function readStateNow(backend: StateBackend, stage: string, keyGroup: number, spec: FeatureStateSpec, key: string, view: StateView): unknown {
  return spec.kind === 'value' ? backend.getValueNow(stage, keyGroup, spec.state, key, view) : backend.mapObjectNow(stage, keyGroup, spec.state, key, view);
}

/** What readFeature answers, from the value (or map entries) and the event time read with it. */
function featureRead(spec: FeatureStateSpec, read: unknown, meta: Buffer | null, uncommitted: boolean): FeatureRead {
  // A map feature reads as its object (StateBackend.mapObjectNow), undefined when empty: shared, not to be changed.
  return { found: read !== undefined, value: read, eventTimeMs: meta === null ? undefined : meta.readDoubleBE(0), uncommitted, beyondRetention: false };
}

/** readFeature across RocksDB reads: the event time read before and after the value, again until they agree. */
async function readFeatureConsistently(
  backend: StateBackend,
  stage: string,
  keyGroup: number,
  spec: FeatureStateSpec,
  key: string,
  view: StateView,
  meta: string,
  started?: { before: Buffer | null; uncommitted: boolean; read: Promise<unknown> },
): Promise<FeatureRead> {
  for (let attempt = 1; ; attempt++) {
    const first = attempt === 1 ? started : undefined;
    const before = first !== undefined ? first.before : await backend.getRaw(meta, view);
    const uncommitted = first !== undefined ? first.uncommitted : view === 'latest' && backend.overlayHas(meta);
    const read = await (first !== undefined ? first.read : readStateNow(backend, stage, keyGroup, spec, key, view));
    if (view === 'latest' && attempt < CONSISTENT_READ_ATTEMPTS) {
      const after = await backend.getRaw(meta, view);
      // A write replaces the overlay entry's Buffer: the same object means no record touched the
      // entity meanwhile. Committed bytes may come back as another Buffer with the same content.
      const unchanged = after === before || (after !== null && before !== null && !uncommitted && !backend.overlayHas(meta) && after.equals(before));
      if (!unchanged) continue;
    }
    return featureRead(spec, read, before, uncommitted);
  }
}

/** The value of a history feature current at asOfMs: one seek to the greatest version <= asOfMs. */
export async function readFeatureAsOf(backend: StateBackend, stage: string, keyGroup: number, spec: FeatureStateSpec, key: string, view: StateView, asOfMs: number): Promise<FeatureRead> {
  const prefix = historyPrefix(backend, stage, keyGroup, spec.state, key);
  const [version, headBytes] = await Promise.all([
    backend.latestAtOrBefore(prefix, versionKey(prefix, asOfMs), view),
    backend.getRaw(headKey(backend, stage, keyGroup, spec.state, key), view),
  ]);
  // The newest version's time: what retention (and its cleanup) is measured from.
  const newest = headBytes === null ? undefined : headBytes.readDoubleBE(0);
  // Versions older than the retention may already be cleaned: do not answer from what is left.
  const beyondRetention = newest !== undefined && spec.historyRetentionMs !== undefined && asOfMs < newest - spec.historyRetentionMs;
  if (version === undefined || beyondRetention) {
    return { found: false, value: undefined, eventTimeMs: undefined, uncommitted: false, beyondRetention };
  }
  const value = decodeVersion(version.value);
  const versionTime = decodeVersionTime(Buffer.from(version.key, 'latin1'), version.key.length - 8);
  return {
    found: value !== undefined,
    value,
    eventTimeMs: versionTime,
    uncommitted: view === 'latest' && backend.overlayHas(version.key),
    beyondRetention: false,
  };
}
