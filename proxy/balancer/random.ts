/**
 * @module
 * Random choice among healthy endpoints, proportional to weight (Envoy's `RANDOM`). Often as
 * good as round robin and needs no shared counter.
 */
import type { EndpointConfig } from "../../lib/mod.ts";
import type { Balancer, PickContext } from "./balancer.ts";
import { healthyEndpoints, type RandomSource, WeightedIndex } from "./weighted.ts";

export class RandomBalancer implements Balancer {
  #healthy: EndpointConfig[] = [];
  #index = new WeightedIndex();
  #random: RandomSource;

  constructor(options: { random?: RandomSource } = {}) {
    this.#random = options.random ?? Math.random;
  }

  update(endpoints: readonly EndpointConfig[]): void {
    this.#healthy = healthyEndpoints(endpoints);
    this.#index.reset(this.#healthy.map((e) => e.weight));
  }

  pick(_ctx: PickContext): EndpointConfig | undefined {
    const i = this.#index.pick(this.#random);
    return i < 0 ? undefined : this.#healthy[i];
  }

  release(): void {}
}
