// Event-time windows: which windows a record belongs to, and how session windows merge.
// Pure functions over numbers, shared by the window operator (sdk/window-operator.ts) and by
// anyone who wants to compute an expectation the same way.

/** A window of event time [start, end) in ms; its last instant is end - 1. */
export interface TimeWindow {
  readonly start: number;
  readonly end: number;
}

export type WindowAssigner =
  | { readonly kind: 'tumbling'; readonly sizeMs: number; readonly offsetMs: number }
  | { readonly kind: 'sliding'; readonly sizeMs: number; readonly slideMs: number; readonly offsetMs: number }
  | { readonly kind: 'session'; readonly gapMs: number; readonly maxLengthMs: number | undefined };

/** Fixed, non-overlapping windows of sizeMs, aligned to the epoch (plus offsetMs). */
export function tumblingWindows(sizeMs: number, options: { offsetMs?: number } = {}): WindowAssigner {
  checkPositive('tumbling window sizeMs', sizeMs);
  const offsetMs = options.offsetMs ?? 0;
  if (!Number.isSafeInteger(offsetMs) || offsetMs < 0 || offsetMs >= sizeMs) throw new TypeError(`tumbling window offsetMs must be an integer in 0..sizeMs-1, got ${String(offsetMs)}`);
  return { kind: 'tumbling', sizeMs, offsetMs };
}

/** Windows of sizeMs starting every slideMs: a record belongs to sizeMs / slideMs of them. */
export function slidingWindows(sizeMs: number, slideMs: number, options: { offsetMs?: number } = {}): WindowAssigner {
  checkPositive('sliding window sizeMs', sizeMs);
  checkPositive('sliding window slideMs', slideMs);
  if (slideMs > sizeMs) throw new TypeError(`sliding window slideMs ${slideMs} is larger than sizeMs ${sizeMs}: records between windows would be lost`);
  const offsetMs = options.offsetMs ?? 0;
  if (!Number.isSafeInteger(offsetMs) || offsetMs < 0 || offsetMs >= slideMs) throw new TypeError(`sliding window offsetMs must be an integer in 0..slideMs-1, got ${String(offsetMs)}`);
  return { kind: 'sliding', sizeMs, slideMs, offsetMs };
}

/**
 * Session windows per key: a session lasts while records come at most gapMs apart, and at most
 * maxLengthMs from its first record (a bot that never pauses still gets its sessions closed).
 * A session is [first record, min(last record + gapMs, first record + maxLengthMs)).
 */
export function sessionWindows(gapMs: number, options: { maxLengthMs?: number } = {}): WindowAssigner {
  checkPositive('session window gapMs', gapMs);
  if (options.maxLengthMs !== undefined) checkPositive('session window maxLengthMs', options.maxLengthMs);
  return { kind: 'session', gapMs, maxLengthMs: options.maxLengthMs };
}

/** The windows a record at timestampMs belongs to (tumbling and sliding), oldest first. */
export function assignWindows(assigner: WindowAssigner, timestampMs: number): TimeWindow[] {
  switch (assigner.kind) {
    case 'tumbling': {
      const start = windowStart(timestampMs, assigner.offsetMs, assigner.sizeMs);
      return [{ start, end: start + assigner.sizeMs }];
    }
    case 'sliding': {
      const out: TimeWindow[] = [];
      const last = windowStart(timestampMs, assigner.offsetMs, assigner.slideMs);
      for (let start = last; start > timestampMs - assigner.sizeMs; start -= assigner.slideMs) out.unshift({ start, end: start + assigner.sizeMs });
      return out;
    }
    case 'session':
      return [{ start: timestampMs, end: timestampMs + sessionLength(assigner, assigner.gapMs) }];
  }
}

/**
 * Where a record at timestampMs goes among a key's sessions: the sessions it merges (touching or
 * overlapping ones that fit, with it, within maxLengthMs of the merged start) and the resulting
 * session. A record beyond a session's maximum length starts a new session instead of extending it;
 * a session that merging would cut short stays apart (the result may then overlap it).
 */
export function mergeSession(assigner: Extract<WindowAssigner, { kind: 'session' }>, sessions: readonly TimeWindow[], timestampMs: number): { merged: TimeWindow[]; result: TimeWindow } {
  let start = timestampMs;
  let end = timestampMs + sessionLength(assigner, assigner.gapMs);
  const merged: TimeWindow[] = [];
  // Sessions in start order; merging one may make the next reachable.
  const sorted = [...sessions].sort((a, b) => a.start - b.start);
  for (const s of sorted) {
    if (s.start > end || s.end < start) continue;
    const newStart = Math.min(start, s.start);
    const cap = assigner.maxLengthMs === undefined ? Number.POSITIVE_INFINITY : newStart + assigner.maxLengthMs;
    // The record, and every session merged, must lie inside the merged session once capped:
    // a session that would be cut stays apart (and so may overlap the result).
    if (timestampMs >= cap || s.end > cap) continue;
    start = newStart;
    end = Math.min(Math.max(end, s.end), cap);
    merged.push(s);
  }
  return { merged, result: { start, end } };
}

function sessionLength(assigner: Extract<WindowAssigner, { kind: 'session' }>, gapMs: number): number {
  return assigner.maxLengthMs === undefined ? gapMs : Math.min(gapMs, assigner.maxLengthMs);
}

function windowStart(timestampMs: number, offsetMs: number, sizeMs: number): number {
  // Correct for negative remainders too.
  return timestampMs - ((((timestampMs - offsetMs) % sizeMs) + sizeMs) % sizeMs);
}

function checkPositive(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`${what} must be a positive integer, got ${String(value)}`);
}
