/**
 * @module
 * The concrete layer: per-cluster state that outlives snapshots (the balancer and its
 * counters), keyed by cluster name. A swap updates the balancer's endpoint set in place, so
 * round-robin position and learned state carry over; a cluster that disappears is dropped.
 */
import type { ClusterConfig, LoadBalancerConfig, Logger, Snapshot } from "../lib/mod.ts";
import type { Balancer } from "./balancer/balancer.ts";
import { RoundRobinBalancer } from "./balancer/round_robin.ts";
import { createBalancer } from "./balancer/factory.ts";

/** Builds a balancer for one cluster's load-balancer policy. */
export type BalancerFactory = (config: LoadBalancerConfig) => Balancer;

/**
 * Balancer factories by policy kind. Algorithms plug in by adding an entry; a kind without one
 * falls back to round robin (and is logged once), so a newer policy never breaks routing.
 */
export const balancerFactories: Map<string, BalancerFactory> = new Map(
  (["round_robin", "random", "least_request", "ring_hash", "maglev", "peak_ewma"] as const).map(
    (kind) => [kind, (config: LoadBalancerConfig) => createBalancer(config)],
  ),
);

/** State of one cluster that survives snapshot swaps. */
export class ClusterState {
  balancer: Balancer;
  lbKind: string;
  config: ClusterConfig;

  constructor(config: ClusterConfig, balancer: Balancer) {
    this.config = config;
    this.lbKind = config.loadBalancer.kind;
    this.balancer = balancer;
    balancer.update(config.endpoints);
  }
}

/** Cluster states by name, synchronised with each installed snapshot. */
export class ClusterManager {
  readonly #states = new Map<string, ClusterState>();
  readonly #warned = new Set<string>();

  constructor(readonly logger: Logger) {}

  #build(lb: LoadBalancerConfig): Balancer {
    const factory = balancerFactories.get(lb.kind);
    if (factory) return factory(lb);
    if (!this.#warned.has(lb.kind)) {
      this.#warned.add(lb.kind);
      this.logger.warn("load balancer kind not available, using round_robin", { kind: lb.kind });
    }
    return new RoundRobinBalancer();
  }

  /** Brings states in line with `snapshot`; returns every endpoint key still in use. */
  sync(snapshot: Snapshot): Set<string> {
    const keys = new Set<string>();
    for (const [name, config] of snapshot.clusters) {
      for (const e of config.endpoints) keys.add(e.key);
      const state = this.#states.get(name);
      if (!state) {
        this.#states.set(name, new ClusterState(config, this.#build(config.loadBalancer)));
      } else if (state.config !== config) {
        if (state.lbKind !== config.loadBalancer.kind) {
          state.balancer = this.#build(config.loadBalancer);
          state.lbKind = config.loadBalancer.kind;
        }
        if (state.config.endpoints !== config.endpoints) state.balancer.update(config.endpoints);
        state.config = config;
      }
    }
    for (const name of this.#states.keys()) {
      if (!snapshot.clusters.has(name)) this.#states.delete(name);
    }
    return keys;
  }

  /** The state of a cluster of the current snapshot. */
  get(name: string): ClusterState | undefined {
    return this.#states.get(name);
  }
}
