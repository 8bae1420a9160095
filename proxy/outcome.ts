/**
 * @module
 * The concrete layer's bookkeeping of a request's tries: telling outlier detection how a try
 * at an endpoint ended, telling the balancer (least request, peak EWMA) that a pick is done
 * and how long it took, and giving back what the request holds of its cluster's circuit
 * breaker. Shared by the request path (concrete.ts) and upgrades (upgrade.ts).
 */
import type { EndpointConfig } from "../lib/mod.ts";
import type { Balancer } from "./balancer/balancer.ts";
import type { Exchange } from "./exchange.ts";
import type { LocalOriginFailure } from "./outlier.ts";
import type { UpstreamFailure } from "./upstream_failure.ts";

/** Tells outlier detection how a try ended: a response status (`failure` null) or a failure. */
export function reportTry(
  x: Exchange,
  endpoint: EndpointConfig,
  failure: UpstreamFailure | null,
): void {
  x.tryReported = true;
  const state = x.clusterState;
  if (state === undefined || state.outlier === undefined) return;
  if (failure === null) {
    state.report(endpoint, x.res.status);
    return;
  }
  let kind: LocalOriginFailure = "reset";
  if (failure.flag === "UF") kind = "connect";
  else if (failure.flag === "UT") kind = "timeout";
  state.report(endpoint, 0, kind);
}

/** Ends a forwarded exchange: clears the deadline and tells the balancer how it went. */
export function releasePick(
  x: Exchange,
  balancer: Balancer,
  endpoint: EndpointConfig,
  ok: boolean,
): void {
  x.deadline = 0;
  if (x.ended === 0) x.ended = x.ctx.clock.now();
  const outcome = x.outcome;
  outcome.latencyMs = x.ended - x.started;
  outcome.ok = ok;
  balancer.release(endpoint, outcome);
}

/** Releases the pick of a try that is followed by another one. */
export function releaseTry(
  x: Exchange,
  balancer: Balancer,
  endpoint: EndpointConfig,
  tryStarted: number,
): void {
  const outcome = x.outcome;
  outcome.latencyMs = x.ctx.clock.now() - tryStarted;
  outcome.ok = false;
  balancer.release(endpoint, outcome);
}

/** Gives back what the request holds of a circuit breaker. */
export function releaseBreaker(x: Exchange): void {
  x.requestOf?.endRequest();
  x.retryOf?.endRetry();
  x.slotOf?.releaseConnection();
  x.slotOf = x.requestOf = x.retryOf = null;
}

/** Admits a retry under the breaker's `maxRetries` (one retry slot per request). */
export function startRetry(x: Exchange): boolean {
  const breaker = x.clusterState?.breaker;
  if (breaker === undefined || x.retryOf !== null) return true;
  if (!breaker.tryStartRetry()) return false;
  x.retryOf = breaker;
  return true;
}
