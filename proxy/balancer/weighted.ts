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

/**
 * Uniform random integers without allocating: an xorshift32 generator whose results are small
 * integers (V8 Smis). `Math.random()` returns a double, which V8 boxes whenever it crosses a
 * call it does not inline — 16 bytes of garbage per call. An injected {@linkcode RandomSource}
 * (tests) is used instead when given.
 */
export class Rng {
  #state: number;
  readonly #source: RandomSource | undefined;

  constructor(source?: RandomSource) {
    this.#source = source;
    this.#state = (Math.floor(Math.random() * 0x7fffffff) | 1) >>> 0;
  }

  /** A uniform integer in [0, n), for 1 <= n <= 2^30. */
  below(n: number): number {
    if (this.#source !== undefined) return Math.floor(this.#source() * n);
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x;
    return (x >>> 0) % n;
  }
}

const UNIT = 1 << 30;

/** Orders endpoints by `key` (for balancers whose result must not depend on input order). */
export function byKey(a: EndpointConfig, b: EndpointConfig): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
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
  pick(rng: Rng): number {
    const n = this.#count;
    if (n === 0) return -1;
    if (this.#uniform) return rng.below(n);
    const target = (rng.below(UNIT) / UNIT) * this.#total;
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
