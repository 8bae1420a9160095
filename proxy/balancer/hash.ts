/**
 * @module
 * A fast, allocation-free 32-bit string hash for consistent hashing: MurmurHash3 (x86, 32-bit)
 * applied to the string's UTF-16 code units, two per 32-bit block. For ASCII keys (header
 * values, `host:port`) this spreads as well as hashing the bytes, without encoding to UTF-8.
 * Envoy uses 64-bit xxHash; 32 bits are enough here because a ring holds at most 8M points and
 * a Maglev table at most a few million entries.
 */

/** MurmurHash3-32 of `text`'s code units with `seed`; returns an unsigned 32-bit integer. */
export function hash32(text: string, seed = 0): number {
  let h = seed | 0;
  const n = text.length;
  const pairs = n & ~1;
  for (let i = 0; i < pairs; i += 2) {
    let k = (text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16)) | 0;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (pairs !== n) {
    let k = text.charCodeAt(pairs);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
