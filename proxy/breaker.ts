/**
 * @module
 * Envoy's cluster circuit breakers (what Istio's DestinationRule `connectionPool` sets), for one
 * cluster. Each limit guards a count of things in flight; 0 means unlimited. When a limit is
 * reached the proxy answers the request itself, 503 with response flag `UO` (upstream
 * overflow), instead of piling more load on a struggling service.
 *
 * | limit (Istio field)                       | counts                                  | when full                    |
 * | ----------------------------------------- | --------------------------------------- | ---------------------------- |
 * | `maxRequests` (`http.http2MaxRequests`)    | upstream requests in flight (each try)  | 503 UO at once               |
 * | `maxConnections` (`tcp.maxConnections`)    | upstream connections in use             | the request waits (pending)  |
 * | `maxPendingRequests` (`http1MaxPending…`)  | requests waiting for a connection       | 503 UO at once               |
 * | `maxRetries` (`http.maxRetries`)           | retries in flight                       | the retry is not made        |
 *
 * Weft speaks HTTP/1.1 upstream, where a connection carries one request at a time, and its
 * connection pools are per endpoint and shared by the clusters (subsets) that reach it. So
 * `maxConnections` bounds the connections the cluster's requests hold at once; idle pooled
 * connections do not count (Envoy counts every open connection of the cluster). A request
 * that finds the limit reached waits, first come first served, for one to be released, as
 * Envoy's pending queue does; the route timeout bounds the wait.
 *
 * `maxRequestsPerConnection` is not a breaker but a pool rule: after that many requests a
 * connection is closed instead of being returned to the pool ({@linkcode CircuitBreaker.reusable}).
 */
import type { CircuitBreakerConfig } from "../lib/mod.ts";

/** No limits: what a cluster without `connectionPool` settings gets. */
export const UNLIMITED: CircuitBreakerConfig = {
  maxConnections: 0,
  maxPendingRequests: 0,
  maxRequests: 0,
  maxRetries: 0,
  maxRequestsPerConnection: 0,
};

/** A request queued for a connection; see {@linkcode CircuitBreaker.acquireConnection}. */
export class PendingConnection {
  #resolve!: (granted: boolean) => void;
  #settled = false;
  /** Resolves true when a connection slot was handed over, false when cancelled. */
  readonly granted: Promise<boolean>;

  constructor(readonly breaker: CircuitBreaker) {
    this.granted = new Promise((resolve) => this.#resolve = resolve);
  }

  /** True once granted or cancelled. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Hands over a slot (the breaker's count already includes it). */
  grant(): void {
    this.#settled = true;
    this.#resolve(true);
  }

  /**
   * Gives up waiting (route timeout, client gone). No effect once granted: the caller that sees
   * `granted` resolve true owns the slot and releases it.
   */
  cancel(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.breaker.dequeue(this);
    this.#resolve(false);
  }
}

/** Counts an operator can read; the overflow counts are Envoy's `*_overflow` stats. */
export interface BreakerStats {
  readonly activeRequests: number;
  readonly activeConnections: number;
  readonly pendingRequests: number;
  readonly activeRetries: number;
  /** Requests refused because `maxRequests` was reached (`upstream_rq_pending_overflow`). */
  readonly requestOverflows: number;
  /** Requests refused because the pending queue was full (`upstream_rq_pending_overflow`). */
  readonly pendingOverflows: number;
  /** Requests that had to wait because `maxConnections` was reached (`upstream_cx_overflow`). */
  readonly connectionOverflows: number;
  /** Retries not made because `maxRetries` was reached (`upstream_rq_retry_overflow`). */
  readonly retryOverflows: number;
}

/** The circuit breakers of one cluster; limits change with snapshots, counts carry over. */
export class CircuitBreaker {
  #limits: CircuitBreakerConfig;
  #activeRequests = 0;
  #activeConnections = 0;
  #activeRetries = 0;
  readonly #pending: PendingConnection[] = [];
  #requestOverflows = 0;
  #pendingOverflows = 0;
  #connectionOverflows = 0;
  #retryOverflows = 0;

  constructor(limits: CircuitBreakerConfig = UNLIMITED) {
    this.#limits = limits;
  }

  get limits(): CircuitBreakerConfig {
    return this.#limits;
  }

  /** New limits (a snapshot swap). Raised connection limits let waiting requests proceed. */
  configure(limits: CircuitBreakerConfig): void {
    this.#limits = limits;
    this.#handOver();
  }

  get stats(): BreakerStats {
    return {
      activeRequests: this.#activeRequests,
      activeConnections: this.#activeConnections,
      pendingRequests: this.#pending.length,
      activeRetries: this.#activeRetries,
      requestOverflows: this.#requestOverflows,
      pendingOverflows: this.#pendingOverflows,
      connectionOverflows: this.#connectionOverflows,
      retryOverflows: this.#retryOverflows,
    };
  }

  /** Admits one upstream request (each try counts); false: answer 503 UO. */
  tryStartRequest(): boolean {
    const max = this.#limits.maxRequests;
    if (max > 0 && this.#activeRequests >= max) {
      this.#requestOverflows++;
      return false;
    }
    this.#activeRequests++;
    return true;
  }

  /** Ends a request admitted by {@linkcode tryStartRequest}. */
  endRequest(): void {
    if (this.#activeRequests > 0) this.#activeRequests--;
  }

  /**
   * Takes a connection slot for a request: `true` when one is free now, `false` when the
   * connection limit is reached and the pending queue is full (answer 503 UO), or a
   * {@linkcode PendingConnection} to wait on. Synchronous and allocation-free when free.
   */
  acquireConnection(): boolean | PendingConnection {
    const limits = this.#limits;
    const max = limits.maxConnections;
    if (max === 0 || (this.#activeConnections < max && this.#pending.length === 0)) {
      this.#activeConnections++;
      return true;
    }
    this.#connectionOverflows++;
    const maxPending = limits.maxPendingRequests;
    if (maxPending > 0 && this.#pending.length >= maxPending) {
      this.#pendingOverflows++;
      return false;
    }
    const waiter = new PendingConnection(this);
    this.#pending.push(waiter);
    return waiter;
  }

  /** Returns a slot taken by {@linkcode acquireConnection}; the oldest waiter gets it. */
  releaseConnection(): void {
    if (this.#activeConnections > 0) this.#activeConnections--;
    this.#handOver();
  }

  /** Removes a cancelled waiter (called by {@linkcode PendingConnection.cancel}). */
  dequeue(waiter: PendingConnection): void {
    const i = this.#pending.indexOf(waiter);
    if (i >= 0) this.#pending.splice(i, 1);
  }

  /** Ends every wait (the proxy is stopping): waiters see `granted` resolve false. */
  cancelPending(): void {
    for (const waiter of [...this.#pending]) waiter.cancel();
  }

  #handOver(): void {
    const max = this.#limits.maxConnections;
    while (this.#pending.length > 0 && (max === 0 || this.#activeConnections < max)) {
      const waiter = this.#pending.shift()!;
      this.#activeConnections++;
      waiter.grant();
    }
  }

  /** Admits one retry; false: the retry is not made and the last try's answer stands. */
  tryStartRetry(): boolean {
    const max = this.#limits.maxRetries;
    if (max > 0 && this.#activeRetries >= max) {
      this.#retryOverflows++;
      return false;
    }
    this.#activeRetries++;
    return true;
  }

  /** Ends a retry admitted by {@linkcode tryStartRetry}. */
  endRetry(): void {
    if (this.#activeRetries > 0) this.#activeRetries--;
  }

  /**
   * Whether a connection that has now carried `uses` requests (this one included) may go back
   * to the pool under `maxRequestsPerConnection`.
   */
  reusable(uses: number): boolean {
    const max = this.#limits.maxRequestsPerConnection;
    return max === 0 || uses < max;
  }
}
