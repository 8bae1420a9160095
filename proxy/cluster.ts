/**
 * @module
 * The concrete layer: per-cluster state that outlives snapshots (the balancer and its
 * counters), keyed by cluster name. A swap updates the balancer's endpoint set in place, so
 * round-robin position and learned state carry over; the balancer is rebuilt only when the
 * cluster's load-balancer settings change (kind, ring or table size, choice count, decay), and
 * a cluster that disappears is dropped.
 *
 * A cluster's outlier detector (outlier.ts) and circuit breaker (breaker.ts) live here too and
 * carry over the same way. The balancer is given the cluster's endpoints minus the ejected
 * ones, unless that leaves fewer than `minHealthPercent` usable (Envoy's panic mode: then every
 * endpoint is used). The request path calls {@linkcode ClusterState.pick},
 * {@linkcode ClusterState.report} and the breaker's admit/release pairs; each is a field check
 * when the cluster has no such policy.
 */
import {
  type Clock,
  type ClusterConfig,
  type EndpointConfig,
  type LoadBalancerConfig,
  type Logger,
  realClock,
  type Snapshot,
} from "../lib/mod.ts";
import type { Balancer, PickContext } from "./balancer/balancer.ts";
import { CircuitBreaker } from "./breaker.ts";
import { type LocalOriginFailure, OutlierDetector } from "./outlier.ts";
import { RoundRobinBalancer } from "./balancer/round_robin.ts";
import { createBalancer, sameBalancerConfig } from "./balancer/factory.ts";

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
  config: ClusterConfig;
  /** Present while the cluster has `outlierDetection`. */
  outlier: OutlierDetector | undefined = undefined;
  /** Present while the cluster has `connectionPool` limits. */
  breaker: CircuitBreaker | undefined = undefined;
  /** True while ejections are ignored because too few endpoints are usable (Envoy panic). */
  panic = false;

  constructor(config: ClusterConfig, balancer: Balancer, readonly clock: Clock = realClock) {
    this.config = config;
    this.balancer = balancer;
    this.#configure(config);
    this.updateBalancer();
  }

  /** Takes a new config (same cluster name): policies are updated, their state kept. */
  apply(config: ClusterConfig): void {
    this.config = config;
    this.#configure(config);
  }

  #configure(config: ClusterConfig): void {
    const od = config.outlierDetection;
    if (!od) this.outlier = undefined;
    else if (this.outlier) this.outlier.configure(od);
    else this.outlier = new OutlierDetector(od);
    this.outlier?.setEndpoints(config.endpoints.map((e) => e.key));
    const cb = config.circuitBreaker;
    if (!cb) this.breaker = undefined;
    else if (this.breaker) this.breaker.configure(cb);
    else this.breaker = new CircuitBreaker(cb);
  }

  /** Gives the balancer the endpoints it may pick: all of them minus the ejected ones. */
  updateBalancer(): void {
    const endpoints = this.config.endpoints;
    const outlier = this.outlier;
    if (!outlier || outlier.stats.ejectedNow === 0) {
      this.panic = false;
      this.balancer.update(endpoints);
      return;
    }
    const kept = endpoints.filter((e) => !outlier.isEjected(e.key));
    const usable = kept.reduce((n, e) => e.healthy ? n + 1 : n, 0);
    // Envoy's healthy panic threshold (Istio minHealthPercent): below it, ejections are ignored.
    this.panic = endpoints.length > 0 &&
      (100 * usable) / endpoints.length < outlier.config.minHealthPercent;
    this.balancer.update(this.panic ? endpoints : kept);
  }

  /**
   * Picks an endpoint, first returning to service any endpoint whose ejection has ended (a
   * comparison against the earliest end; no clock read while nothing is ejected).
   */
  pick(ctx: PickContext): EndpointConfig | undefined {
    const outlier = this.outlier;
    if (outlier !== undefined && outlier.nextExpiry !== Infinity) {
      if (outlier.refresh(this.clock.now())) this.updateBalancer();
    }
    return this.balancer.pick(ctx);
  }

  /**
   * Tells outlier detection how an exchange with `endpoint` ended: the upstream's response
   * `status`, or a `failure` the proxy observed before any response. Requests the client
   * abandoned are not reported (they say nothing about the endpoint).
   */
  report(endpoint: EndpointConfig, status: number, failure?: LocalOriginFailure): void {
    const outlier = this.outlier;
    if (outlier === undefined) return;
    const now = this.clock.now();
    const ejected = failure !== undefined
      ? outlier.reportLocalFailure(endpoint.key, failure, now)
      : outlier.reportStatus(endpoint.key, status, now);
    if (ejected) this.updateBalancer();
  }

  /** Admits one upstream request under `maxRequests`; false: answer 503 UO. */
  admit(): boolean {
    return this.breaker === undefined || this.breaker.tryStartRequest();
  }

  /** Ends a request admitted by {@linkcode admit}. */
  done(): void {
    this.breaker?.endRequest();
  }
}

/** Cluster states by name, synchronised with each installed snapshot. */
export class ClusterManager {
  readonly #states = new Map<string, ClusterState>();
  readonly #warned = new Set<string>();

  constructor(readonly logger: Logger, readonly clock: Clock = realClock) {}

  #build(lb: LoadBalancerConfig): Balancer {
    const factory = balancerFactories.get(lb.kind);
    if (factory) return factory(lb);
    if (!this.#warned.has(lb.kind)) {
      this.#warned.add(lb.kind);
      this.logger.warn("load balancer kind not available, using round_robin", { kind: lb.kind });
    }
    return new RoundRobinBalancer();
  }

  /** Every cluster state with its name (for metrics collected at scrape time). */
  entries(): IterableIterator<[string, ClusterState]> {
    return this.#states.entries();
  }

  /** Brings states in line with `snapshot`; returns every endpoint key still in use. */
  sync(snapshot: Snapshot): Set<string> {
    const keys = new Set<string>();
    for (const [name, config] of snapshot.clusters) {
      for (const e of config.endpoints) keys.add(e.key);
      const state = this.#states.get(name);
      if (!state) {
        this.#states.set(
          name,
          new ClusterState(config, this.#build(config.loadBalancer), this.clock),
        );
      } else if (state.config !== config) {
        const previous = state.config;
        state.apply(config);
        if (!sameBalancerConfig(previous.loadBalancer, config.loadBalancer)) {
          state.balancer = this.#build(config.loadBalancer);
          state.updateBalancer();
        } else if (
          previous.endpoints !== config.endpoints ||
          previous.outlierDetection !== config.outlierDetection
        ) {
          state.updateBalancer();
        }
      }
    }
    for (const name of this.#states.keys()) {
      if (!snapshot.clusters.has(name)) this.#states.delete(name);
    }
    return keys;
  }

  /** Ends every request waiting for a connection slot (on stop: nothing will free one). */
  cancelPending(): void {
    for (const state of this.#states.values()) state.breaker?.cancelPending();
  }

  /** The state of a cluster of the current snapshot. */
  get(name: string): ClusterState | undefined {
    return this.#states.get(name);
  }
}
