/**
 * @module
 * Helpers shared by the balancers: the healthy subset of an endpoint set and weighted random
 * choice over it (cumulative weights + binary search, O(log n), no allocation per pick).
 */
import type { EndpointConfig } from "../../lib/mod.ts";

/** A source of uniform numbers in [0, 1); injectable so tests are deterministic. */
export type RandomSource = () => number;

/** A small, fast seeded PRNG (mulberry32) for tests and benchmarks. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The endpoints a balancer may pick: healthy ones with a positive weight, in input order. */
export function healthyEndpoints(endpoints: readonly EndpointConfig[]): EndpointConfig[] {
  return endpoints.filter((e) => e.healthy && e.weight > 0);
}

/** Weighted random index over a fixed list; uniform fast path when all weights are equal. */
export class WeightedIndex {
  #cumulative = new Float64Array(0);
  #uniform = true;
  #count = 0;
  #total = 0;

  /** Rebuilds from `weights` (each > 0). */
  reset(weights: readonly number[]): void {
    const n = weights.length;
    this.#count = n;
    this.#uniform = weights.every((w) => w === weights[0]);
    this.#cumulative = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      sum += weights[i];
      this.#cumulative[i] = sum;
    }
    this.#total = sum;
  }

  get uniform(): boolean {
    return this.#uniform;
  }

  /** An index in [0, count) with probability proportional to its weight; -1 when empty. */
  pick(random: RandomSource): number {
    const n = this.#count;
    if (n === 0) return -1;
    if (this.#uniform) return Math.floor(random() * n);
    const target = random() * this.#total;
    const cumulative = this.#cumulative;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
