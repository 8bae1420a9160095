/**
 * @module
 * Consistent hashing on a ring, as Envoy's `RING_HASH` (ketama-like). Each healthy endpoint
 * gets a number of points proportional to its weight, hashed from `"<key>_<i>"`; the ring has
 * at least `minimumRingSize` points (default 1024) and at most 8M. A request's `hashKey` is
 * hashed and served by the first point at or after it, wrapping around. Removing one of N
 * endpoints moves only the keys that landed on its points (about 1/N).
 *
 * Differences from Envoy: a 32-bit MurmurHash3 instead of 64-bit xxHash (see hash.ts). Like
 * Envoy, a request without a key gets a random point, so weights still hold.
 */
import type { EndpointConfig } from "../../lib/mod.ts";
import type { Balancer, PickContext } from "./balancer.ts";
import { hash32 } from "./hash.ts";
import { byKey, healthyEndpoints, type RandomSource, Rng } from "./weighted.ts";

/** Envoy's defaults and limits for `minimum_ring_size` / `maximum_ring_size`. */
export const DEFAULT_MINIMUM_RING_SIZE = 1024;
export const MAXIMUM_RING_SIZE = 8 * 1024 * 1024;

/** Host indices are packed beside the hash in one float64 (hash * 2^21 + index) for sorting. */
const INDEX_BITS = 2 ** 21;
const UNIT = 1 << 30;

export interface RingHashOptions {
  minimumRingSize?: number;
  random?: RandomSource;
}

export class RingHashBalancer implements Balancer {
  #healthy: EndpointConfig[] = [];
  #hashes = new Uint32Array(0);
  #owners = new Int32Array(0);
  #signature = "";
  readonly #minimumRingSize: number;
  readonly #rng: Rng;

  constructor(options: RingHashOptions = {}) {
    const size = options.minimumRingSize ?? DEFAULT_MINIMUM_RING_SIZE;
    if (!Number.isInteger(size) || size < 1 || size > MAXIMUM_RING_SIZE) {
      throw new RangeError(
        `minimumRingSize must be an integer from 1 to ${MAXIMUM_RING_SIZE}, got ${size}`,
      );
    }
    this.#minimumRingSize = size;
    this.#rng = new Rng(options.random);
  }

  /** Number of points on the current ring (for tests and `weft routes`). */
  get ringSize(): number {
    return this.#hashes.length;
  }

  update(endpoints: readonly EndpointConfig[]): void {
    // Sorted by key so the mapping depends only on the set, not on its order: every node
    // (and every recompiled snapshot) maps a key to the same endpoint.
    const healthy = healthyEndpoints(endpoints).sort(byKey);
    if (healthy.length >= INDEX_BITS) throw new RangeError("too many endpoints for a hash ring");
    const signature = healthy.map((e) => `${e.key}*${e.weight}`).join(" ");
    this.#healthy = healthy;
    if (signature === this.#signature) return; // same ring; only the endpoint objects changed
    this.#signature = signature;
    this.#build();
  }

  pick(ctx: PickContext): EndpointConfig | undefined {
    const hashes = this.#hashes;
    const n = hashes.length;
    if (n === 0) return undefined;
    const h = ctx.hashKey === undefined
      ? this.#rng.below(UNIT) * 4 // a random point: 2^30 values spread over 2^32
      : hash32(ctx.hashKey);
    // First point with hash >= h; past the end wraps to the first point.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    return this.#healthy[this.#owners[lo === n ? 0 : lo]];
  }

  release(): void {}

  #build(): void {
    const healthy = this.#healthy;
    if (healthy.length === 0) {
      this.#hashes = new Uint32Array(0);
      this.#owners = new Int32Array(0);
      return;
    }
    let totalWeight = 0;
    for (const e of healthy) totalWeight += e.weight;
    let minNormalized = 1;
    for (const e of healthy) minNormalized = Math.min(minNormalized, e.weight / totalWeight);
    // Envoy: scale so the lightest endpoint gets at least ceil(minNormalized * minimum) points.
    const scale = Math.min(
      Math.ceil(minNormalized * this.#minimumRingSize) / minNormalized,
      MAXIMUM_RING_SIZE,
    );
    const packed = new Float64Array(Math.ceil(scale) + healthy.length);
    let count = 0;
    let target = 0;
    for (let host = 0; host < healthy.length; host++) {
      target += (scale * healthy[host].weight) / totalWeight;
      const prefix = healthy[host].key + "_";
      for (let i = 0; count < target && count < packed.length; i++) {
        packed[count++] = hash32(prefix + i) * INDEX_BITS + host;
      }
    }
    const sorted = packed.subarray(0, count).sort();
    this.#hashes = new Uint32Array(count);
    this.#owners = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const v = sorted[i];
      const host = v % INDEX_BITS;
      this.#owners[i] = host;
      this.#hashes[i] = (v - host) / INDEX_BITS;
    }
  }
}
