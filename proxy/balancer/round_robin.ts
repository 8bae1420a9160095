/**
 * @module
 * Round robin over healthy endpoints, honouring weights by smooth weighted round robin
 * (nginx's algorithm) when they differ; the plain rotation is the common fast path.
 */
import type { EndpointConfig } from "../../lib/mod.ts";
import type { Balancer, PickContext } from "./balancer.ts";

export class RoundRobinBalancer implements Balancer {
  #healthy: EndpointConfig[] = [];
  #next = 0;
  #weighted = false;
  #current: number[] = [];
  #totalWeight = 0;

  update(endpoints: readonly EndpointConfig[]): void {
    this.#healthy = endpoints.filter((e) => e.healthy);
    this.#weighted = this.#healthy.some((e) => e.weight !== this.#healthy[0].weight);
    this.#current = this.#healthy.map(() => 0);
    this.#totalWeight = this.#healthy.reduce((s, e) => s + e.weight, 0);
    if (this.#next >= this.#healthy.length) this.#next = 0;
  }

  pick(_ctx: PickContext): EndpointConfig | undefined {
    const list = this.#healthy;
    const n = list.length;
    if (n === 0) return undefined;
    if (!this.#weighted) {
      const ep = list[this.#next];
      this.#next = this.#next + 1 === n ? 0 : this.#next + 1;
      return ep;
    }
    let best = 0;
    const cur = this.#current;
    for (let i = 0; i < n; i++) {
      cur[i] += list[i].weight;
      if (cur[i] > cur[best]) best = i;
    }
    cur[best] -= this.#totalWeight;
    return list[best];
  }

  release(): void {}
}
