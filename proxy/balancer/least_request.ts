/**
 * @module
 * Least request with Envoy's semantics. When all healthy endpoints have the same weight it is
 * "power of N choices" (default N = 2): pick N endpoints at random and take the one with the
 * fewest active requests. When weights differ it is Envoy's weighted mode: an earliest-deadline-
 * first schedule where an endpoint's effective weight is `weight / (active + 1) ^ bias`, computed
 * each time the endpoint is (re)scheduled, with `active_request_bias` = 1.0 by default.
 *
 * Active-request counts live in per-endpoint state keyed by `EndpointConfig.key`, so they
 * survive `update` (a new snapshot) for endpoints that persist.
 */
import type { EndpointConfig } from "../../lib/mod.ts";
import type { Balancer, PickContext, PickOutcome } from "./balancer.ts";
import { EdfSchedule } from "./edf.ts";
import { healthyEndpoints, type RandomSource, Rng } from "./weighted.ts";

/** Per-endpoint load carried across updates. */
interface LoadState {
  active: number;
}

export interface LeastRequestOptions {
  /** Endpoints sampled per pick when weights are equal (Envoy `choice_count`, default 2). */
  choiceCount?: number;
  /** Envoy `active_request_bias` for the weighted mode (default 1.0; 0 = plain weighted). */
  activeRequestBias?: number;
  random?: RandomSource;
}

export class LeastRequestBalancer implements Balancer {
  #healthy: EndpointConfig[] = [];
  #states: LoadState[] = [];
  #byKey = new Map<string, LoadState>();
  #weighted = false;
  #schedule = new EdfSchedule();
  readonly #choiceCount: number;
  readonly #bias: number;
  readonly #rng: Rng;

  constructor(options: LeastRequestOptions = {}) {
    this.#choiceCount = Math.max(1, Math.floor(options.choiceCount ?? 2));
    this.#bias = options.activeRequestBias ?? 1.0;
    this.#rng = new Rng(options.random);
  }

  update(endpoints: readonly EndpointConfig[]): void {
    const healthy = healthyEndpoints(endpoints);
    const byKey = new Map<string, LoadState>();
    // Keep the counters of every listed endpoint (healthy or not): requests in flight to an
    // endpoint that just turned unhealthy still get released.
    for (const e of endpoints) byKey.set(e.key, this.#byKey.get(e.key) ?? { active: 0 });
    this.#byKey = byKey;
    this.#healthy = healthy;
    this.#states = healthy.map((e) => byKey.get(e.key)!);
    this.#weighted = healthy.some((e) => e.weight !== healthy[0].weight);
    if (this.#weighted) {
      this.#schedule.reset(healthy.length);
      for (let i = 0; i < healthy.length; i++) this.#schedule.add(i, this.#effectiveWeight(i));
    }
  }

  /** Active requests to the endpoint with `key` (0 when unknown); for tests and metrics. */
  active(key: string): number {
    return this.#byKey.get(key)?.active ?? 0;
  }

  pick(_ctx: PickContext): EndpointConfig | undefined {
    const n = this.#healthy.length;
    if (n === 0) return undefined;
    let chosen: number;
    if (this.#weighted) {
      chosen = this.#schedule.pop();
      this.#states[chosen].active++;
      this.#schedule.add(chosen, this.#effectiveWeight(chosen));
      return this.#healthy[chosen];
    }
    chosen = this.#rng.below(n);
    for (let c = 1; c < this.#choiceCount; c++) {
      const candidate = this.#rng.below(n);
      if (this.#states[candidate].active < this.#states[chosen].active) chosen = candidate;
    }
    this.#states[chosen].active++;
    return this.#healthy[chosen];
  }

  release(endpoint: EndpointConfig, _outcome?: PickOutcome): void {
    const state = this.#byKey.get(endpoint.key);
    if (state && state.active > 0) state.active--;
  }

  #effectiveWeight(i: number): number {
    const weight = this.#healthy[i].weight;
    const active = this.#states[i].active;
    if (this.#bias === 0) return weight;
    if (this.#bias === 1) return weight / (active + 1);
    return weight / Math.pow(active + 1, this.#bias);
  }
}
