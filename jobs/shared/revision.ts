// Content revisions for rule and route tables kept in state: the per-worker caches of their
// compiled forms are keyed by revision, one cheap Map lookup per record.

/**
 * A short identity of a JSON value's content (two 32-bit FNV-1a hashes and the length), so that a
 * compiled rule table can be cached per worker under a key that is cheap to look up per event.
 */
export function revisionOf(value: unknown): string {
  const s = JSON.stringify(value);
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 13);
  }
  return `${s.length.toString(36)}.${(a >>> 0).toString(36)}.${(b >>> 0).toString(36)}`;
}
