// Decoding untrusted source records without letting one of them take the worker down (issue 12).
//
// JSON.parse itself is iterative, but every later step that walks a value recursively is not:
// JSON.stringify (dead letters, sinks), msgpack (state), structuredClone. A record nested 100,000
// deep parses fine and then overflows the stack wherever it goes next, and a worker that re-reads
// it after a restart dies again. So the nesting depth is bounded before parsing, by a scan of the
// raw bytes that counts brackets outside strings. Number literals that may not be finite (1e999
// parses to Infinity, which msgpack stores and JSON serves as null) are looked for in the text,
// and only then is the parsed value walked to find them.

/** Deepest nesting of arrays and objects a source record may have. */
export const DEFAULT_MAX_JSON_DEPTH = 256;

/**
 * The greatest event time a record may carry: 9999-12-31T23:59:59.999Z. Later times are not
 * representable as an ISO date with a four-digit year (files sinks bucket by it) and are not
 * plausible event times; a record with one is rejected before it reaches state.
 */
export const MAX_EVENT_TIME_MS = 253_402_300_799_999;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_SQUARE = 0x5b;
const CLOSE_SQUARE = 0x5d;
const OPEN_CURLY = 0x7b;
const CLOSE_CURLY = 0x7d;

/**
 * A number literal that may not be finite: an exponent of 3+ digits, or a run of 300+ digits
 * (looked for only in texts that long: a {300} repetition costs ~1 µs per record otherwise). A
 * match inside a string only costs a walk of the value that finds nothing. Regular expressions
 * run natively: ~0.2 µs for a 100-byte record, beside ~1.5 µs for JSON.parse (loaded machine).
 */
const EXPONENT_3_DIGITS = /[eE][+-]?\d\d\d/;
const DIGITS_300 = /\d{300}/;

/** A decoded record, or why it is not one (a dead letter's reason). */
export type Decoded = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * Parses a UTF-8 JSON record: refused when nested deeper than maxDepth, when it is not JSON, or
 * when a number in it is not finite. `text` is the record as a string (decoded by the caller).
 */
export function decodeJsonRecord(bytes: Uint8Array, text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): Decoded {
  // Valid JSON nested d deep has at least 2d bytes: short records need no scan (most records).
  if (bytes.length > 2 * maxDepth && depthExceeds(bytes, maxDepth)) {
    return { ok: false, reason: `JSON nested deeper than ${maxDepth} levels (the limit of a source record)` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: `invalid JSON: ${(e as Error).message}` };
  }
  if (EXPONENT_3_DIGITS.test(text) || (text.length >= 300 && DIGITS_300.test(text))) {
    const where = nonFinitePath(value, '$');
    if (where !== undefined) return { ok: false, reason: `${where} is not a finite number (a JSON number beyond ±1.8e308 reads as Infinity)` };
  }
  return { ok: true, value };
}

/**
 * True when arrays and objects nest deeper than maxDepth: one pass over the bytes counting
 * brackets outside strings (multi-byte UTF-8 sequences never contain ASCII bytes).
 */
function depthExceeds(bytes: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_SQUARE || b === OPEN_CURLY) {
      if (++depth > maxDepth) return true;
    } else if (b === CLOSE_SQUARE || b === CLOSE_CURLY) depth--;
  }
  return false;
}

/** The JSONPath of the first non-finite number in a parsed value (depth already bounded). */
function nonFinitePath(value: unknown, path: string): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path;
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nonFinitePath(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    const found = nonFinitePath(v, `${path}.${k}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Why a number cannot be a record's event time (ms since the epoch), or undefined when it can.
 * `what` names it in the reason ("field ts", "the timestamp assigner's result").
 */
export function eventTimeProblem(ms: unknown, what: string): string | undefined {
  if (typeof ms !== 'number') return `${what} is ${describeType(ms)}, not a number of ms since the epoch`;
  if (!Number.isFinite(ms)) return `${what} is ${ms}, not a finite time`;
  if (ms < 0 || ms > MAX_EVENT_TIME_MS) return `${what} is ${ms}, not a time between 1970 and 9999 (ms since the epoch)`;
  return undefined;
}

/** "an object", "an array", "null", "a boolean (true)": what a value is, for error messages. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'object':
      return 'an object';
    case 'string':
      return value === '' ? 'an empty string' : `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
    case 'number':
      return `a number (${value})`;
    case 'boolean':
      return `a boolean (${value})`;
    case 'bigint':
      return `a bigint (${value})`;
    case 'function':
      return 'a function';
    default:
      return `a ${typeof value}`;
  }
}

/**
 * What is wrong with a keyBy result as a key ("an object", "an empty string", …), or undefined
 * when it is one: a non-empty string or a finite number. A string with a lone surrogate is
 * refused: state keys are stored as UTF-8 (a lone surrogate becomes U+FFFD, so two such keys
 * would share state) and gRPC queries carry well-formed UTF-8 only, so it could never be queried.
 */
export function keyProblem(raw: unknown): string | undefined {
  if (typeof raw === 'string') {
    if (raw === '') return 'an empty string';
    if (!(raw as unknown as { isWellFormed(): boolean }).isWellFormed()) return 'a string with a lone surrogate (not well-formed UTF-16), which could be neither stored exactly nor queried';
    return undefined;
  }
  if (typeof raw === 'number') return Number.isFinite(raw) ? undefined : `${raw}, not a finite number`;
  return describeType(raw);
}
