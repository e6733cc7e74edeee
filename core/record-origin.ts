// Where a record came from: the source split and stream sequence of the source record it derives
// from, packed into one number so that it travels with the record through channels at the cost of
// one msgpack number (core/record-batch.ts). Poison records are counted and skipped by it
// (docs/ARCHITECTURE.md, "Poison records").
//
// origin = sequence × 2^13 + split: exact in a double for sequences below 2^40 (about 10^12
// messages per partition) and splits below 8192. A record outside that range or a record a timer
// emitted has no origin (-1): a failure on it is not attributed. asyncMap results and side outputs
// keep the origin of the record they came from; a generator's event n of a split is at sequence n.

/** No known source position. */
export const NO_ORIGIN = -1;

const SPLIT_BITS = 8192;
const MAX_SEQUENCE = 2 ** 40;

export function encodeOrigin(split: number, sequence: number): number {
  if (split < 0 || split >= SPLIT_BITS || sequence < 1 || sequence >= MAX_SEQUENCE) return NO_ORIGIN;
  return sequence * SPLIT_BITS + split;
}

/** The split and sequence of an origin, or undefined for NO_ORIGIN (or anything not an origin). */
export function decodeOrigin(origin: number): { split: number; sequence: number } | undefined {
  if (!Number.isSafeInteger(origin) || origin < SPLIT_BITS) return undefined;
  return { split: origin % SPLIT_BITS, sequence: Math.floor(origin / SPLIT_BITS) };
}
