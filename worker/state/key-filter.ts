// A Bloom filter of the keys RocksDB may hold (docs/ARCHITECTURE.md, "State"): a key it has never
// seen is absent, and a read of it needs no RocksDB read batch (tens of µs of CPU each, whatever
// it holds). The first read of a new key (a new entity, a new window, a new auction) used to be
// one. The committed store keeps the filter a superset of RocksDB's keys: it adds a key before
// the write that puts it, and never removes one (a delete leaves a false positive, which costs
// only the read the filter would have saved). It is rebuilt from a scan once as many keys were
// added as it was sized for (committed-store.ts).
//
// Keys are the state backend's encoded keys, as latin1 strings (one char per byte) or as bytes:
// both hash the same. One FNV-1a pass, finished two ways into two 32-bit hashes, combined by double
// hashing into HASHES probes of one bit array.

/** Bits per key at capacity, and probes per key: ~0.8 % false positives when full. */
const BITS_PER_KEY = 10;
const HASHES = 7;

export class KeyFilter {
  /** Keys it was sized for; past them its false positives grow (it stays correct). */
  readonly capacity: number;
  /** Keys added since it was built that it did not seem to hold already (about its distinct keys). */
  added = 0;
  readonly #bits: Int32Array;
  readonly #mask: number;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`a key filter's capacity must be a positive integer, got ${String(capacity)}`);
    this.capacity = capacity;
    // A power of two of bits, at least BITS_PER_KEY per key: a probe is a mask, not a division.
    let bits = 1024;
    while (bits < capacity * BITS_PER_KEY && bits < 2 ** 31) bits *= 2;
    this.#bits = new Int32Array(bits / 32);
    this.#mask = bits - 1;
  }

  /** Bytes of memory the bit array takes. */
  get bytes(): number {
    return this.#bits.byteLength;
  }

  /** Adds a key; `added` counts only keys it did not seem to hold (a key put again is not new). */
  addString(key: string): void {
    hashString(key);
    this.#set();
  }

  addBytes(key: Uint8Array): void {
    hashBytes(key);
    this.#set();
  }

  /** False: the key was never added. True: it may have been. */
  mayContainString(key: string): boolean {
    hashString(key);
    return this.#test();
  }

  mayContainBytes(key: Uint8Array): boolean {
    hashBytes(key);
    return this.#test();
  }

  /** Sets the last hashed key's bits; counts it when one of them was clear (a key not held yet). */
  #set(): void {
    const bits = this.#bits;
    const mask = this.#mask;
    let h = h1;
    let fresh = false;
    for (let i = 0; i < HASHES; i++) {
      const bit = h & mask;
      const word = bit >>> 5;
      const flag = 1 << (bit & 31);
      if ((bits[word]! & flag) === 0) {
        bits[word] = bits[word]! | flag;
        fresh = true;
      }
      h = (h + h2) | 0;
    }
    if (fresh) this.added++;
  }

  #test(): boolean {
    const bits = this.#bits;
    const mask = this.#mask;
    let h = h1;
    for (let i = 0; i < HASHES; i++) {
      const bit = h & mask;
      if ((bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
      h = (h + h2) | 0;
    }
    return true;
  }
}

// The two hashes of the last key hashed (module scope: no object per call).
let h1 = 0;
let h2 = 0;

function hashString(key: string): void {
  let a = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) a = Math.imul(a ^ (key.charCodeAt(i) & 0xff), 0x01000193);
  finish(a, key.length);
}

function hashBytes(key: Uint8Array): void {
  let a = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) a = Math.imul(a ^ key[i]!, 0x01000193);
  finish(a, key.length);
}

/** The two probes' hashes from one FNV-1a pass: murmur3's finalizer with two seeds. */
function finish(a: number, length: number): void {
  h1 = fmix(a ^ length);
  // Odd, so that the probes differ.
  h2 = fmix(a ^ 0x9747b28c) | 1;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
