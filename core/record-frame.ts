// Framed ingest (docs/ARCHITECTURE.md, "Sources and sinks"): many source records in one JetStream
// message. Every message costs the same per-message work in NATS, the JetStream consumer and the
// source loop, whatever it carries: one record per message spends more CPU there than on the
// record itself (issue 15's profile: ~8 µs of ~35 µs per event). A frame carries records as lines.
//
// The format, for any producer:
// - the message has the header `Eddy-Frame: ndjson`;
// - its payload is records of JSON text, each ended by a newline (0x0A); the last newline may be
//   left out. JSON text never holds a raw newline, so the lines are the records.
// - a message without the header is one record, as before.
//
// A frame is read as one unit: the source emits all of its records before the next barrier can be
// cut, so a checkpoint's position is still a stream sequence and a replay starts at a frame's first
// record. A record that cannot be decoded is dead-lettered alone, with its frame's sequence and
// its index in the frame (the line number, from 0).

/** The header that marks a message as a frame, and its only value so far. */
export const FRAME_HEADER = 'Eddy-Frame';
export const FRAME_FORMAT_NDJSON = 'ndjson';

const NEWLINE = 0x0a;
const encoder = new TextEncoder();

/**
 * Calls `record(start, end, index)` for each line of a frame's payload (`end` exclusive, the
 * newline not included). An empty last line (after the final newline) is no record.
 */
export function forEachFrameRecord(payload: Uint8Array, record: (start: number, end: number, index: number) => void): number {
  let start = 0;
  let index = 0;
  while (start < payload.length) {
    let end = payload.indexOf(NEWLINE, start);
    if (end < 0) end = payload.length;
    record(start, end, index++);
    start = end + 1;
  }
  return index;
}

/** Records in a frame's payload. */
export function countFrameRecords(payload: Uint8Array): number {
  return forEachFrameRecord(payload, () => {});
}

/** A frame's payload from records' JSON texts (each must be one line: JSON.stringify output is). */
export function encodeFrame(lines: readonly string[]): Uint8Array {
  return encoder.encode(lines.length === 0 ? '' : lines.join('\n') + '\n');
}

export interface FrameLimits {
  /** Records in one frame at most. @default 500 */
  maxRecords?: number;
  /**
   * Payload bytes of one frame at most, below NATS's max_payload (1 MiB by default); a record
   * larger than this goes alone. @default 262144
   */
  maxBytes?: number;
}

export const DEFAULT_FRAME_MAX_RECORDS = 500;
export const DEFAULT_FRAME_MAX_BYTES = 256 * 1024;

/**
 * Collects records into frames per subject: `add` returns a frame's payload when the subject's
 * buffer is full, `drain` every partial frame. Callers publish what comes back with FRAME_HEADER.
 */
export class FrameBuilder {
  readonly #maxRecords: number;
  readonly #maxBytes: number;
  readonly #open = new Map<string, { lines: string[]; bytes: number }>();

  constructor(limits: FrameLimits = {}) {
    this.#maxRecords = Math.max(1, limits.maxRecords ?? DEFAULT_FRAME_MAX_RECORDS);
    this.#maxBytes = Math.max(1, limits.maxBytes ?? DEFAULT_FRAME_MAX_BYTES);
  }

  /** Adds one record's JSON text; a frame that is now full comes back, to be published. */
  add(subject: string, line: string): Uint8Array | undefined {
    if (line.includes('\n')) throw new Error('a framed record must be one line of JSON text (JSON.stringify output is)');
    let open = this.#open.get(subject);
    // Bytes as UTF-16 code units × 3 bound the UTF-8 length without encoding twice.
    const bytes = line.length * 3 + 1;
    let full: Uint8Array | undefined;
    if (open !== undefined && open.lines.length > 0 && open.bytes + bytes > this.#maxBytes) {
      full = encodeFrame(open.lines);
      open.lines = [];
      open.bytes = 0;
    }
    if (open === undefined) this.#open.set(subject, (open = { lines: [], bytes: 0 }));
    open.lines.push(line);
    open.bytes += bytes;
    if (full === undefined && open.lines.length >= this.#maxRecords) {
      full = encodeFrame(open.lines);
      open.lines = [];
      open.bytes = 0;
    }
    return full;
  }

  /** Every partial frame, by subject, emptied. */
  drain(): Array<[subject: string, payload: Uint8Array]> {
    const out: Array<[string, Uint8Array]> = [];
    for (const [subject, open] of this.#open) if (open.lines.length > 0) out.push([subject, encodeFrame(open.lines)]);
    this.#open.clear();
    return out;
  }
}
