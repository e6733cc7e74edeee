// Timers of one keyed stage on this worker, kept in the state store (docs/ARCHITECTURE.md, "State":
// timers are state too), not on the heap.
//
// Layout: one map per key group and time domain, under a reserved state name (user state names
// cannot start with a control character, sdk/state.ts):
//   [stage][keyGroup]["\x01timer-event" | "\x01timer-proc"][key ""][mapKey = hex14(time) + key]
// hex14 is the time in ms as 14 lowercase hex digits (up to 2^53 - 1), so byte order is time
// order, and a key group's timers sort by (time, key): firing is a range scan from the start up to
// the watermark. A registered timer's value is one marker byte. Registering writes to the overlay
// like any state, so timers are checkpointed, restored and moved with their key group, and they
// count against the overlay's memory bound (maxOverlayBytes), which asks for an early checkpoint:
// the heap holds only the timers registered since the last checkpoint, and those are bounded.
//
// Heap state, all of it caches:
// - the earliest timer time per (domain, key group), which lets a watermark or clock tick skip key
//   groups with nothing due; it is re-learned by a scan of one entry whenever unknown (after
//   construction, i.e. after every restore);
// - the head of each key group's timers: the last page read while firing, kept exact as timers
//   are registered, deleted and fired, so that the next firing reads it instead of RocksDB (each
//   range read is an iterator: 8 % of Nexmark q4's busy samples went to reading timer pages). A
//   page that was not full holds every timer of the key group; a full one, every timer up to its
//   last. Flink keeps the head of each key group's timer queue in memory the same way, over
//   timers in RocksDB. A head holds at most HEAD_MAX timers, so the heap stays bounded by the
//   number of key groups, whatever the number of timers.
import { InvalidArgumentError } from '../../core/errors.ts';
import type { StateBackend } from '../state/index.ts';
import type { StateUndoLog } from '../state/state-undo.ts';

export type TimeDomain = 'event' | 'processing';

export const TIMER_STATE: Readonly<Record<TimeDomain, string>> = { event: '\u0001timer-event', processing: '\u0001timer-proc' };

const TIME_DIGITS = 14;
const MARK = Buffer.from([1]);
/** Timers read per range scan while firing. */
const FIRE_PAGE = 512;
/** Timers a head holds at most: past this, registrations at its end shorten what it covers. */
const HEAD_MAX = 2 * FIRE_PAGE;

/**
 * The smallest live timers of one (domain, key group), ascending from keys[start]: every live timer
 * with map key <= last when `last` is set, every live timer of the key group when it is not.
 */
interface Head {
  keys: string[];
  start: number;
  last: string | undefined;
}

/** The first index in keys[from..] whose key is >= key. */
function lowerBound(keys: readonly string[], key: string, from: number): number {
  let lo = from;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The map key of a timer: 14 hex digits of time, then the key. */
export function timerMapKey(timestampMs: number, key: string): string {
  return timestampMs.toString(16).padStart(TIME_DIGITS, '0') + key;
}

function timeKey(timestampMs: number): string {
  return timestampMs.toString(16).padStart(TIME_DIGITS, '0');
}

function parseTimerMapKey(mapKey: string): { timestampMs: number; key: string } {
  return { timestampMs: Number.parseInt(mapKey.slice(0, TIME_DIGITS), 16), key: mapKey.slice(TIME_DIGITS) };
}

function checkTime(timestampMs: number): void {
  if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) throw new InvalidArgumentError(`a timer time must be an integer in 0..2^53-1 ms, got ${String(timestampMs)}`);
}

export type FireTimer = (key: string, timestampMs: number) => void | Promise<void>;

export class TimerService {
  readonly #backend: StateBackend;
  readonly #stage: string;
  /** "<domain>|<keyGroup>" → the earliest registered time (Infinity: none); absent: unknown. */
  readonly #earliest = new Map<string, number>();
  /** Ids with a registration since fire() last looked, and the earliest time registered: a callback may have added a due timer. */
  readonly #touched = new Map<string, number>();
  /** Ids being fired, and timers ("<id>|<mapKey>") their callbacks deleted: a page read before must skip them. */
  readonly #firing = new Set<string>();
  readonly #deletedWhileFiring = new Set<string>();
  /** "<domain>|<keyGroup>" → the head of its timers (absent: unknown, read from the store). */
  readonly #heads = new Map<string, Head>();
  /** Ids whose page is being read: reads under way, and whether a timer of theirs was written meanwhile (the page may then miss it: not kept as the head). */
  readonly #reading = new Map<string, { reads: number; written: boolean }>();
  /** Range reads of timer pages (RocksDB iterators), for tests and diagnostics. */
  pageReads = 0;
  readonly #dropHead = (id: string): void => void this.#heads.delete(id);

  constructor(backend: StateBackend, stage: string) {
    this.#backend = backend;
    this.#stage = stage;
  }

  /** Drops what is cached of a key group's timers (it moved in or out; its state was replaced). */
  forgetKeyGroup(keyGroup: number): void {
    for (const domain of ['event', 'processing'] as const) {
      this.#earliest.delete(`${domain}|${keyGroup}`);
      this.#heads.delete(`${domain}|${keyGroup}`);
    }
  }

  /** Keeps the head of `id` exact over a write of one of its timers (value null: deleted). */
  #headWrite(id: string, mapKey: string, registered: boolean, undo: StateUndoLog | undefined): void {
    const reading = this.#reading.get(id);
    if (reading !== undefined) reading.written = true;
    const head = this.#heads.get(id);
    if (head === undefined) return;
    // An undone record takes its timer writes back in the store; the head would keep them.
    undo?.noteAfterUndo(this.#dropHead, id);
    if (head.last !== undefined && mapKey > head.last) return;
    const keys = head.keys;
    const i = lowerBound(keys, mapKey, head.start);
    const present = i < keys.length && keys[i] === mapKey;
    if (registered) {
      if (present) return;
      keys.splice(i, 0, mapKey);
      if (keys.length - head.start > HEAD_MAX) {
        keys.length = head.start + HEAD_MAX;
        head.last = keys[keys.length - 1];
      }
    } else if (present) {
      if (i === head.start) head.start++;
      else keys.splice(i, 1);
      if (head.start > FIRE_PAGE) {
        head.keys = keys.slice(head.start);
        head.start = 0;
      }
    }
  }

  /** undo: the registering record's undo log (worker/state-undo.ts); an undone registration leaves the earliest cache early, which costs one empty scan. */
  register(domain: TimeDomain, keyGroup: number, key: string, timestampMs: number, undo?: StateUndoLog): void {
    checkTime(timestampMs);
    const mapKey = timerMapKey(timestampMs, key);
    this.#backend.writeBytes(this.#stage, keyGroup, TIMER_STATE[domain], '', mapKey, MARK, undo);
    const id = `${domain}|${keyGroup}`;
    this.#headWrite(id, mapKey, true, undo);
    const earliest = this.#earliest.get(id);
    if (earliest !== undefined && timestampMs < earliest) this.#earliest.set(id, timestampMs);
    const touched = this.#touched.get(id);
    if (touched === undefined || timestampMs < touched) this.#touched.set(id, timestampMs);
  }

  delete(domain: TimeDomain, keyGroup: number, key: string, timestampMs: number, undo?: StateUndoLog): void {
    checkTime(timestampMs);
    // A tombstone; the earliest cache may now be too early, which costs one empty scan.
    const mapKey = timerMapKey(timestampMs, key);
    this.#backend.writeBytes(this.#stage, keyGroup, TIMER_STATE[domain], '', mapKey, null, undo);
    const id = `${domain}|${keyGroup}`;
    this.#headWrite(id, mapKey, false, undo);
    if (this.#firing.has(id)) this.#deletedWhileFiring.add(`${id}|${mapKey}`);
  }

  /** The earliest registered time of a key group (Infinity: none). */
  async earliest(domain: TimeDomain, keyGroup: number): Promise<number> {
    const id = `${domain}|${keyGroup}`;
    const known = this.#earliest.get(id);
    if (known !== undefined) return known;
    return this.#learnEarliest(domain, keyGroup, 0);
  }

  /**
   * Fires, in (time, key) order, every timer of the key group with time <= upToMs, deleting each
   * before its callback runs. Timers that callbacks register at or before upToMs fire in the same
   * call, as in Flink. Returns the number fired.
   */
  async fire(domain: TimeDomain, keyGroup: number, upToMs: number, onTimer: FireTimer): Promise<number> {
    if (!(upToMs >= 0)) return 0;
    const id = `${domain}|${keyGroup}`;
    const known = this.#earliest.get(id) ?? (await this.#learnEarliest(domain, keyGroup, 0));
    if (known > upToMs) return 0;
    const upTo = Math.min(Math.floor(upToMs), Number.MAX_SAFE_INTEGER - 1);
    let fired = 0;
    this.#touched.delete(id);
    this.#firing.add(id);
    try {
      fired = await this.#firePages(id, domain, keyGroup, upTo, onTimer);
    } finally {
      this.#firing.delete(id);
      for (const deleted of this.#deletedWhileFiring) if (deleted.startsWith(`${id}|`)) this.#deletedWhileFiring.delete(deleted);
    }
    return fired;
  }

  /**
   * Fires the due timers page by page. A page is read without an upper bound, so the first timer
   * after upTo on it is the next earliest: no scan of its own to learn it (each range read is a
   * RocksDB iterator; three per key group and watermark step were 10 % of a timer-heavy worker).
   * A callback that registers a timer makes the page be read again only when that timer is due
   * in this call: one that registers a later timer (Nexmark q4 keeps a closed auction a while
   * longer) otherwise cost an iterator per timer fired. Leaves #earliest at the next live timer
   * after upTo (Infinity: none).
   */
  async #firePages(id: string, domain: TimeDomain, keyGroup: number, upTo: number, onTimer: FireTimer): Promise<number> {
    const state = TIMER_STATE[domain];
    let fired = 0;
    // The earliest timer callbacks registered after upTo: not on a page read before them.
    let later = Number.POSITIVE_INFINITY;
    // Each page starts at the earliest time still registered, not at the start of the key group:
    // timers fired since the last checkpoint are tombstones over RocksDB, and scanning past them
    // again on every page would make firing many timers quadratic. #earliest stays a lower bound
    // of the live timers: it rises as timers fire, and registrations in callbacks lower it.
    pages: for (;;) {
      const page = await this.#page(id, keyGroup, state, timeKey(this.#earliest.get(id)!));
      let next = Number.POSITIVE_INFINITY;
      entries: for (const mapKey of page.keys) {
        const { timestampMs, key } = parseTimerMapKey(mapKey);
        // A callback registered a timer due now, maybe before the rest of this page: read again
        // from the earliest (the last fired time, or the new one if earlier).
        const touched = this.#takeTouched(id);
        if (touched <= upTo) continue pages;
        if (touched < later) later = touched;
        if (timestampMs > upTo) {
          next = timestampMs;
          break entries;
        }
        // A callback deleted this one after the page was read: it must not fire.
        if (this.#deletedWhileFiring.size > 0 && this.#deletedWhileFiring.delete(`${id}|${mapKey}`)) continue;
        this.#earliest.set(id, timestampMs);
        // Deleted first: a callback that registers the same timer again gets a new one.
        this.#backend.writeBytes(this.#stage, keyGroup, state, '', mapKey, null);
        this.#headWrite(id, mapKey, false, undefined);
        fired++;
        await onTimer(key, timestampMs);
      }
      // The last callback may have registered one due now: look again.
      const touched = this.#takeTouched(id);
      if (touched <= upTo) continue pages;
      if (touched < later) later = touched;
      // A page that ended with due timers, and more may follow.
      if (next === Number.POSITIVE_INFINITY && page.more) continue pages;
      this.#earliest.set(id, Math.min(next, later));
      return fired;
    }
  }

  /**
   * The live timers of `id` from `from` on, at most FIRE_PAGE, and whether more may follow: from
   * its head when that covers them, else read from the store (and kept as the head, unless a
   * timer of `id` was written while the read was under way). `from` is at or below the earliest
   * live timer, so a page read from it holds the smallest timers of the key group.
   */
  async #page(id: string, keyGroup: number, state: string, from: string): Promise<{ keys: string[]; more: boolean }> {
    const head = this.#heads.get(id);
    if (head !== undefined) {
      // Every live timer is at or after `from`: the head's first is where the page starts.
      const remaining = head.keys.length - head.start;
      if (remaining > 0 || head.last === undefined) {
        const n = Math.min(remaining, FIRE_PAGE);
        return { keys: head.keys.slice(head.start, head.start + n), more: n < remaining || head.last !== undefined };
      }
    }
    this.#heads.delete(id);
    let reading = this.#reading.get(id);
    if (reading === undefined) this.#reading.set(id, (reading = { reads: 0, written: false }));
    reading.reads++;
    let entries: Array<[string, Buffer]>;
    try {
      this.pageReads++;
      entries = await this.#backend.mapRangeBytes(this.#stage, keyGroup, state, '', { from, limit: FIRE_PAGE });
    } finally {
      if (--reading.reads === 0) this.#reading.delete(id);
    }
    const keys = entries.map(([mapKey]) => mapKey);
    const more = keys.length === FIRE_PAGE;
    // Another read under way may finish later with an older page: only the last one keeps its page.
    if (!reading.written && reading.reads === 0) this.#heads.set(id, { keys: [...keys], start: 0, last: more ? keys[keys.length - 1] : undefined });
    return { keys, more };
  }

  /** Takes the earliest time registered since the last look (Infinity: none). */
  #takeTouched(id: string): number {
    const touched = this.#touched.get(id);
    if (touched === undefined) return Number.POSITIVE_INFINITY;
    this.#touched.delete(id);
    return touched;
  }

  /** Every timer of a key group, in order: for tests and diagnostics (reads them all). */
  async list(domain: TimeDomain, keyGroup: number): Promise<Array<{ timestampMs: number; key: string }>> {
    const entries = await this.#backend.mapRangeBytes(this.#stage, keyGroup, TIMER_STATE[domain], '', {});
    return entries.map(([mapKey]) => parseTimerMapKey(mapKey));
  }

  /** Finds the earliest live timer at or after fromMs (the caller knows there is none before). */
  async #learnEarliest(domain: TimeDomain, keyGroup: number, fromMs: number): Promise<number> {
    const id = `${domain}|${keyGroup}`;
    const head = this.#heads.get(id);
    if (head !== undefined && (head.start < head.keys.length || head.last === undefined)) {
      const earliest = head.start < head.keys.length ? parseTimerMapKey(head.keys[head.start]!).timestampMs : Number.POSITIVE_INFINITY;
      this.#earliest.set(id, earliest);
      return earliest;
    }
    // Registrations during the scan lower this; the scan's answer must not raise it back.
    this.#earliest.set(id, Number.POSITIVE_INFINITY);
    const first = await this.#backend.mapRangeBytes(this.#stage, keyGroup, TIMER_STATE[domain], '', { from: timeKey(fromMs), limit: 1 });
    const found = first[0] === undefined ? Number.POSITIVE_INFINITY : parseTimerMapKey(first[0][0]).timestampMs;
    const earliest = Math.min(found, this.#earliest.get(id) ?? Number.POSITIVE_INFINITY);
    this.#earliest.set(id, earliest);
    return earliest;
  }
}
