/**
 * @module
 * Random choice among healthy endpoints, proportional to weight (Envoy's `RANDOM`). Often as
 * good as round robin and needs no shared counter.
 */
import type { EndpointConfig } from "../../lib/mod.ts";
import type { Balancer, PickContext } from "./balancer.ts";
import { healthyEndpoints, type RandomSource, Rng, WeightedIndex } from "./weighted.ts";

export class RandomBalancer implements Balancer {
  #healthy: EndpointConfig[] = [];
  #index = new WeightedIndex();
  #rng: Rng;

  constructor(options: { random?: RandomSource } = {}) {
    this.#rng = new Rng(options.random);
  }

  update(endpoints: readonly EndpointConfig[]): void {
    this.#healthy = healthyEndpoints(endpoints);
    this.#index.reset(this.#healthy.map((e) => e.weight));
  }

  pick(_ctx: PickContext): EndpointConfig | undefined {
    const i = this.#index.pick(this.#rng);
    return i < 0 ? undefined : this.#healthy[i];
  }

  release(): void {}
}
