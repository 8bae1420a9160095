/**
 * @module
 * The interface every load-balancing algorithm implements. A balancer lives as long as its
 * cluster name, across snapshots: `update` gives it the new endpoint set and it keeps
 * per-endpoint state (counters, latency estimates) for keys that persist.
 */
import type { EndpointConfig } from "../../lib/mod.ts";

/** Per-request input to a pick. */
export interface PickContext {
  /**
   * Key for consistent hashing (header value, cookie, source IP, …), computed by the caller
   * from the cluster's policy; undefined for non-hashing balancers.
   */
  hashKey?: string;
}

/** How an upstream exchange ended, for balancers that learn (least request, peak EWMA). */
export interface PickOutcome {
  latencyMs: number;
  ok: boolean;
}

export interface Balancer {
  /** Replaces the endpoint set (only healthy endpoints should be picked). */
  update(endpoints: readonly EndpointConfig[]): void;
  /** Chooses an endpoint, or undefined when there is no healthy one. Must not allocate much. */
  pick(ctx: PickContext): EndpointConfig | undefined;
  /** Called once for every successful pick when the exchange ends. */
  release(endpoint: EndpointConfig, outcome: PickOutcome): void;
}
