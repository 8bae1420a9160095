/**
 * @module
 * Builds the balancer for a cluster's {@linkcode LoadBalancerConfig}. The cluster keeps the
 * balancer while its config stays the same (compare with {@linkcode sameBalancerConfig}) and
 * only calls `update` on a new snapshot, so per-endpoint state survives.
 */
import type { LoadBalancerConfig } from "../../lib/mod.ts";
import type { Balancer } from "./balancer.ts";
import { LeastRequestBalancer } from "./least_request.ts";
import { MaglevBalancer } from "./maglev.ts";
import { PeakEwmaBalancer } from "./peak_ewma.ts";
import { RandomBalancer } from "./random.ts";
import { RingHashBalancer } from "./ring_hash.ts";
import { RoundRobinBalancer } from "./round_robin.ts";
import type { RandomSource } from "./weighted.ts";

/** Test hooks; production passes none. */
export interface BalancerDeps {
  random?: RandomSource;
  clock?: { now(): number };
}

export function createBalancer(config: LoadBalancerConfig, deps: BalancerDeps = {}): Balancer {
  switch (config.kind) {
    case "round_robin":
      return new RoundRobinBalancer();
    case "random":
      return new RandomBalancer(deps);
    case "least_request":
      return new LeastRequestBalancer({ choiceCount: config.choiceCount, random: deps.random });
    case "ring_hash":
      return new RingHashBalancer({ minimumRingSize: config.minimumRingSize, random: deps.random });
    case "maglev":
      return new MaglevBalancer({ tableSize: config.tableSize, random: deps.random });
    case "peak_ewma":
      return new PeakEwmaBalancer({ decayMs: config.decayMs, ...deps });
  }
}

/**
 * True when a balancer built for `a` can serve `b` unchanged (the hash policy is applied by the
 * caller, so it does not matter here).
 */
export function sameBalancerConfig(a: LoadBalancerConfig, b: LoadBalancerConfig): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case "least_request":
      return a.choiceCount === (b as typeof a).choiceCount;
    case "ring_hash":
      return a.minimumRingSize === (b as typeof a).minimumRingSize;
    case "maglev":
      return a.tableSize === (b as typeof a).tableSize;
    case "peak_ewma":
      return a.decayMs === (b as typeof a).decayMs;
    default:
      return true;
  }
}
