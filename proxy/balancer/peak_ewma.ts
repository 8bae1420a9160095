/**
 * @module
 * Latency-aware balancing as Linkerd does it (tower's `PeakEwma` + power of two choices), a
 * Weft extension beyond Istio's algorithms. Each endpoint keeps a round-trip estimate that
 * jumps up to any slower observation at once (the "peak") and otherwise decays towards new
 * observations with time constant `decayMs` (default 10 s, Linkerd's). Its cost is
 * `estimate * (active + 1)`; a pick samples two distinct endpoints and takes the cheaper one.
 * Weights (which tower lacks) bias the sampling: candidates are drawn in proportion to weight,
 * and on a tie the first drawn wins, so equal costs give exactly the weighted split while
 * latency and load still decide between candidates. Between observations the estimate also decays towards
 * zero, so a once-slow endpoint is tried again later instead of being starved forever.
 *
 * Failures are observed like successes (as tower does): ejecting fast-failing endpoints is
 * the outlier detector's job, not the balancer's.
 */
import type { Clock, EndpointConfig } from "../../lib/mod.ts";
import type { Balancer, PickContext, PickOutcome } from "./balancer.ts";
import { healthyEndpoints, type RandomSource, Rng, WeightedIndex } from "./weighted.ts";

/** Linkerd's defaults: 10 s decay; 30 ms assumed for an endpoint never measured. */
export const DEFAULT_PEAK_EWMA_DECAY_MS = 10_000;
export const DEFAULT_INITIAL_RTT_MS = 30;

interface LatencyState {
  active: number;
  estimateMs: number;
  updatedAt: number;
}

export interface PeakEwmaOptions {
  decayMs?: number;
  /** Round-trip time assumed for an endpoint with no observation yet. */
  initialRttMs?: number;
  clock?: Pick<Clock, "now">;
  random?: RandomSource;
}

export class PeakEwmaBalancer implements Balancer {
  #healthy: EndpointConfig[] = [];
  #states: LatencyState[] = [];
  #byKey = new Map<string, LatencyState>();
  #index = new WeightedIndex();
  readonly #decayMs: number;
  readonly #initialRttMs: number;
  readonly #clock: Pick<Clock, "now">;
  readonly #rng: Rng;

  constructor(options: PeakEwmaOptions = {}) {
    this.#decayMs = options.decayMs ?? DEFAULT_PEAK_EWMA_DECAY_MS;
    if (!(this.#decayMs > 0)) throw new RangeError(`decayMs must be > 0, got ${this.#decayMs}`);
    this.#initialRttMs = options.initialRttMs ?? DEFAULT_INITIAL_RTT_MS;
    this.#clock = options.clock ?? { now: () => performance.now() };
    this.#rng = new Rng(options.random);
  }

  update(endpoints: readonly EndpointConfig[]): void {
    const now = this.#clock.now();
    const byKey = new Map<string, LatencyState>();
    for (const e of endpoints) {
      byKey.set(
        e.key,
        this.#byKey.get(e.key) ?? { active: 0, estimateMs: this.#initialRttMs, updatedAt: now },
      );
    }
    this.#byKey = byKey;
    this.#healthy = healthyEndpoints(endpoints);
    this.#states = this.#healthy.map((e) => byKey.get(e.key)!);
    this.#index.reset(this.#healthy.map((e) => e.weight));
  }

  pick(_ctx: PickContext): EndpointConfig | undefined {
    const n = this.#healthy.length;
    if (n === 0) return undefined;
    let chosen = this.#index.pick(this.#rng);
    if (n > 1) {
      let other = this.#index.pick(this.#rng);
      // Two distinct candidates; bounded retries, then the neighbour, for skewed weights.
      for (let tries = 0; other === chosen && tries < 4; tries++) {
        other = this.#index.pick(this.#rng);
      }
      if (other === chosen) other = chosen + 1 === n ? 0 : chosen + 1;
      const now = this.#clock.now();
      if (this.#cost(other, now) < this.#cost(chosen, now)) chosen = other;
    }
    this.#states[chosen].active++;
    return this.#healthy[chosen];
  }

  release(endpoint: EndpointConfig, outcome: PickOutcome): void {
    const state = this.#byKey.get(endpoint.key);
    if (!state) return;
    if (state.active > 0) state.active--;
    const now = this.#clock.now();
    const rtt = Math.max(0, outcome.latencyMs);
    if (rtt > state.estimateMs) {
      state.estimateMs = rtt; // peak: react to a slowdown immediately
    } else {
      const decay = Math.exp(-Math.max(0, now - state.updatedAt) / this.#decayMs);
      state.estimateMs = state.estimateMs * decay + rtt * (1 - decay);
    }
    state.updatedAt = now;
  }

  /** Current latency estimate of the endpoint with `key`, decayed to now (for tests/metrics). */
  estimateMs(key: string): number | undefined {
    const state = this.#byKey.get(key);
    return state && this.#decayed(state, this.#clock.now());
  }

  #decayed(state: LatencyState, now: number): number {
    const elapsed = now - state.updatedAt;
    return elapsed > 0 ? state.estimateMs * Math.exp(-elapsed / this.#decayMs) : state.estimateMs;
  }

  #cost(i: number, now: number): number {
    const state = this.#states[i];
    return this.#decayed(state, now) * (state.active + 1);
  }
}
