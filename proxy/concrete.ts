/**
 * @module
 * The concrete layer: a request that the logical layer sent to a cluster. It is admitted by
 * the cluster's circuit breaker (a connection slot and a request under `connectionPool`
 * limits: 503 UO, or a wait bounded by the route timeout), gets an endpoint from the balancer
 * (without ejected endpoints: 503 UH when none is left), has its route deadline armed, and runs
 * its tries (endpoint_http1.ts) under the route's retry policy (retry_state.ts): each try's
 * outcome goes to outlier detection and the balancer (outcome.ts); a retry backs off, then
 * picks again. Small request bodies are read in full first when a retry or a mirror needs
 * them, and mirror copies leave from here. Upgrades branch off to upgrade.ts after the pick.
 *
 * Which state a request reads: the cluster's *config* (timeouts, policies, endpoints' ports)
 * comes from the snapshot the request started with, kept to the end; the endpoints a retry
 * picks from are the cluster's live balancer (cluster.ts), which a newer snapshot, a health
 * verdict or an ejection may have changed since the first try, because a retry exists to
 * avoid the endpoint that just failed or left.
 */
import type { ClusterConfig, EndpointConfig } from "../lib/mod.ts";
import type { Balancer, PickOutcome } from "./balancer/balancer.ts";
import type { ClusterState } from "./cluster.ts";
import type { PendingConnection } from "./breaker.ts";
import type { Exchange } from "./exchange.ts";
import { buildRequestHead, TryEnd, tryOnce } from "./endpoint_http1.ts";
import { Framing } from "./http1.ts";
import { replies } from "./local_reply.ts";
import { mirrorHeadText, withBody } from "./filters/mirror.ts";
import { headValue } from "./filters/request_view.ts";
import {
  CONNECT_FAILURE,
  RESET,
  retryBackoffMs,
  tryDeadline,
  type TryResult,
} from "./filters/retry.ts";
import { releaseBreaker, releasePick, releaseTry, reportTry, startRetry } from "./outcome.ts";
import { RetryVerdict } from "./retry_state.ts";
import { timedOutTry } from "./upstream_failure.ts";
import { upgrade } from "./upgrade.ts";

/** Largest request body the proxy reads in full before forwarding, for retries and mirrors. */
const maxHeldBodyBytes = 16 * 1024;

/**
 * Picks a retry makes before it settles for an endpoint it already tried: Envoy's
 * `previous_hosts` retry predicate with `host_selection_retry_max_attempts: 5`, as Istio
 * configures every route. A pick put back is released at once, with no latency to learn from.
 */
const retryHostSelectionAttempts = 5;
const putBack: PickOutcome = { latencyMs: 0, ok: true };

/**
 * The failure a 5xx from another node's inbound listener reports when that node's proxy made
 * it (`x-weft-flag`): it could not connect to the instance (UF), or the instance reset or
 * closed the exchange (UR, UC). For retries this is the failure this node would have met
 * reaching the instance itself, so `connect-failure` and `reset` cover it.
 */
function peerFailure(x: Exchange, endpoint: EndpointConfig): TryResult | null {
  if (!endpoint.viaInbound || x.res.status < 500 || x.retries.policy === undefined) return null;
  const flag = headValue(x.res, "x-weft-flag");
  if (flag === "UF") return CONNECT_FAILURE;
  if (flag === "UR" || flag === "UC") return RESET;
  return null;
}

/** An endpoint for the next try, avoiding those the request already tried while it can. */
function pickForRetry(x: Exchange, state: ClusterState): EndpointConfig | undefined {
  let endpoint = state.pick(x.pick);
  for (
    let i = 1;
    endpoint !== undefined && i < retryHostSelectionAttempts &&
    x.triedEndpoints.includes(endpoint.key);
    i++
  ) {
    state.balancer.release(endpoint, putBack);
    endpoint = state.pick(x.pick);
  }
  return endpoint;
}

/** Picks an endpoint, builds the upstream head, and runs the exchange. */
export function dispatch(x: Exchange, start: number): Promise<boolean> {
  const ctx = x.ctx;
  const req = x.req;
  const cluster = x.cluster!;
  x.clusterName = cluster.name;
  const state = ctx.clusters.get(cluster.name);
  const breaker = state?.breaker;
  if (breaker !== undefined && x.slotOf === null) {
    // Circuit breaker (DestinationRule connectionPool): a connection slot, then a request.
    const slot = breaker.acquireConnection();
    if (slot === false) return x.reply(replies.overflow);
    if (slot !== true) {
      return queueThenDispatch(x, slot, start);
    }
    x.slotOf = breaker;
    if (!breaker.tryStartRequest()) return x.reply(replies.overflow);
    x.requestOf = breaker;
  }
  x.clusterState = state;
  const endpoint = state?.pick(x.pick);
  if (!state || !endpoint) return x.reply(replies.noHealthyUpstream);
  x.endpoint = endpoint;

  let headBytes = buildRequestHead(x, endpoint);
  x.armRouteDeadline(start, x.timeoutMs);
  // WebSocket and other upgrades: one try on a connection of their own, never mirrored.
  if (req.upgrade !== "") return upgrade(x, headBytes, endpoint, state.balancer);
  const mirror = x.plan.mirrorCluster;
  if (ctx.kind === "outbound" && (x.retry !== undefined || mirror !== undefined)) {
    const mirrorHead = mirror === undefined ? "" : mirrorHeadOf(x, mirror);
    // A client that sent `Expect: 100-continue` waits for the upstream's 100 before sending
    // its body, so that body is streamed (one try, no mirror) rather than waited for.
    if (
      !x.reqBodyDone && req.framing === Framing.Length &&
      req.contentLength <= maxHeldBodyBytes && headValue(req, "expect") === null
    ) {
      return holdBodyThenExchange(x, state.balancer, endpoint, mirror, mirrorHead);
    }
    // Retries resend the head: keep a copy, as the response head reuses the writer.
    if (x.retry !== undefined && x.reqBodyDone) headBytes = headBytes.slice();
    if (mirror !== undefined) sendMirror(x, mirror, mirrorHead, headBytes);
  }
  // No async frame of its own: exchange releases the pick when it ends.
  return exchange(x, headBytes, endpoint, state.balancer);
}

/**
 * Waits (bounded by the route timeout) for a connection slot of the cluster's circuit
 * breaker, then dispatches; 503 UO when the request cannot be admitted after all.
 */
async function queueThenDispatch(
  x: Exchange,
  waiter: PendingConnection,
  start: number,
): Promise<boolean> {
  x.armRouteDeadline(start, x.timeoutMs);
  x.pending = waiter;
  const granted = await waiter.granted;
  x.pending = null;
  if (granted) x.slotOf = waiter.breaker;
  if (x.timedOut) return x.reply(replies.timeout);
  if (!granted || !waiter.breaker.tryStartRequest()) return x.reply(replies.overflow);
  x.requestOf = waiter.breaker;
  // The parsed head still points into the read buffer, which nothing has read into since.
  return dispatch(x, start);
}

/** Gives back what the request holds when it finishes (breaker slots). */
export function finishConcrete(x: Exchange): void {
  if (x.slotOf !== null || x.retryOf !== null) releaseBreaker(x);
}

/**
 * Reads a small request body in full before forwarding, so that retries can resend it and a
 * mirror can copy it. The upstream head is already in the writer, so the read buffer may be
 * compacted.
 */
async function holdBodyThenExchange(
  x: Exchange,
  balancer: Balancer,
  endpoint: EndpointConfig,
  mirror: ClusterConfig | undefined,
  mirrorHead: string,
): Promise<boolean> {
  const reader = x.reader;
  const length = x.req.contentLength;
  let complete = true;
  try {
    while (reader.buffered < length) {
      if (!(await reader.fill())) {
        complete = false;
        break;
      }
    }
  } catch {
    complete = false;
  }
  if (!complete) {
    // The client went away mid-body: nothing was sent upstream.
    x.flag = "DC";
    releasePick(x, balancer, endpoint, false);
    return false;
  }
  const w = x.out;
  w.copy(reader.buf, reader.start, reader.start + length);
  reader.start += length;
  x.reqBodyDone = true;
  let headBytes = w.view();
  if (x.retry !== undefined) headBytes = headBytes.slice();
  if (mirror !== undefined) sendMirror(x, mirror, mirrorHead, headBytes);
  return exchange(x, headBytes, endpoint, balancer);
}

/** The head of this request's mirror copy (before the read buffer is reused). */
function mirrorHeadOf(x: Exchange, mirror: ClusterConfig): string {
  const req = x.req;
  const plan = x.plan;
  const viaInbound = mirror.endpoints.some((e) => e.viaInbound);
  return mirrorHeadText(req, {
    method: req.method,
    target: plan.upstreamTarget ?? x.path,
    authority: plan.upstreamAuthority ?? x.authority ?? req.host,
    destinationService: viaInbound ? mirror.service : undefined,
    clientIp: x.clientIp,
    forwardedFor: req.forwardedFor,
    requestPlan: plan.requestPlan,
    bodyLength: req.framing === Framing.Length ? req.contentLength : 0,
  });
}

/**
 * Sends the mirror copy when the whole body is in hand (the tail of `headBytes`); requests
 * whose body streams are not mirrored.
 */
function sendMirror(
  x: Exchange,
  mirror: ClusterConfig,
  mirrorHead: string,
  headBytes: Uint8Array,
): void {
  const req = x.req;
  const mirrors = x.ctx.mirrors;
  if (!x.reqBodyDone || req.framing === Framing.Chunked) {
    mirrors.counts.skipped++;
    return;
  }
  const state = x.ctx.clusters.get(mirror.name);
  const endpoint = state?.balancer.pick(x.plan.pick);
  if (!state || !endpoint) {
    mirrors.counts.skipped++;
    return;
  }
  const length = req.framing === Framing.Length ? req.contentLength : 0;
  const body = length > 0 ? headBytes.subarray(headBytes.length - length) : null;
  const balancer = state.balancer;
  mirrors.send(endpoint.hostname, endpoint.port, withBody(mirrorHead, body), (ok, latencyMs) => {
    balancer.release(endpoint, { ok, latencyMs });
  });
}

/**
 * Runs the tries (with the route's retries) and relays the final response, then releases the
 * last pick (ok when a status below 500 was sent and nothing threw); picks of earlier tries
 * are released as each try ends.
 */
async function exchange(
  x: Exchange,
  headBytes: Uint8Array,
  endpoint: EndpointConfig,
  balancer: Balancer,
): Promise<boolean> {
  let failed = false;
  let released = false;
  try {
    const ctx = x.ctx;
    const cluster = x.cluster!;
    let pool = ctx.pools.pool(endpoint.key, endpoint.hostname, endpoint.port);
    const retries = x.retries;
    // Only a request whose body is in hand (or has none) can be sent again.
    retries.start(x.reqBodyDone ? x.retry : undefined);
    const perTryMs = retries.perTryTimeoutMs;
    let tryStarted = x.started;
    if (retries.policy !== undefined) x.triedEndpoints.push(endpoint.key);

    for (;;) {
      x.tryReported = false;
      if (perTryMs > 0) {
        tryStarted = ctx.clock.now();
        x.tryTimedOut = false;
        x.deadline = tryDeadline(x.routeDeadline, tryStarted, perTryMs);
        ctx.deadlines.arm(x.deadline);
      }
      const end = await tryOnce(x, pool, cluster.connectTimeoutMs, headBytes);
      if (end === TryEnd.RouteTimeout) return await x.reply(replies.timeout);
      if (end === TryEnd.Abandoned) return false;
      if (end === TryEnd.Response) {
        reportTry(x, endpoint, null);
        // Once the client has seen an interim answer, this exchange is not tried again.
        if (x.interimRelayed) retries.stop();
        const verdict = retries.afterResponse(x.res.status, peerFailure(x, endpoint));
        if (verdict === RetryVerdict.Relay) break;
        if (verdict === RetryVerdict.RelayExhausted) {
          x.flag = "URX";
          break;
        }
        // maxRetries reached: no retry, this answer stands (Envoy's retry overflow).
        if (!startRetry(x)) break;
        // Drop this answer: its body is not read, so the connection cannot be reused.
        const dropped = x.upstream!;
        dropped.close();
        pool.release(dropped, false, 0);
        x.upstream = null;
      } else {
        const failure = x.failure!;
        reportTry(x, endpoint, failure);
        let verdict = retries.afterFailure(x.failureResult);
        if (verdict === RetryVerdict.Retry && !startRetry(x)) verdict = RetryVerdict.ReplyExhausted;
        if (verdict !== RetryVerdict.Retry) {
          const exhausted = verdict === RetryVerdict.ReplyExhausted && failure.flag !== "UT";
          return await x.reply(failure.reply, false, exhausted ? "URX" : failure.flag);
        }
      }

      // Another try: release this pick, back off, pick again.
      released = true;
      releaseTry(x, balancer, endpoint, tryStarted);
      const backoffMs = retryBackoffMs(retries.next(), Math.random());
      if (backoffMs > 0) {
        await new Promise<void>((resolve) => ctx.clock.setTimeout(resolve, backoffMs));
      }
      if (x.timedOut) return await x.reply(replies.timeout);
      const state = ctx.clusters.get(cluster.name);
      x.clusterState = state;
      const next = state === undefined ? undefined : pickForRetry(x, state);
      if (!state || !next) return await x.reply(replies.noHealthyUpstream);
      x.triedEndpoints.push(next.key);
      balancer = state.balancer;
      endpoint = next;
      x.endpoint = next;
      released = false;
      pool = ctx.pools.pool(endpoint.key, endpoint.hostname, endpoint.port);
    }
    // Past the response head, only the route timeout applies.
    if (perTryMs > 0) x.deadline = x.routeDeadline;
    const up = x.upstream!;
    const relayed = x.relayResponse(up);
    const keepClient = typeof relayed === "boolean" ? relayed : await relayed;
    const breaker = x.clusterState?.breaker;
    const reusable = x.upstreamReusable && !x.res.close && up.reader.buffered === 0 &&
      !x.timedOut && (breaker === undefined || breaker.reusable(up.uses + 1));
    x.upstream = null;
    // The exchange ends here: one clock read serves the pool's idle mark and releasePick.
    x.ended = ctx.clock.now();
    pool.release(up, reusable, x.snapshot!.tuning.maxIdlePerEndpoint, x.ended);
    return keepClient;
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    // A try ended by the route timeout, before its outcome was known, is an endpoint timeout.
    if (!x.tryReported && x.flag === "UT") reportTry(x, endpoint, timedOutTry);
    if (!released) releasePick(x, balancer, endpoint, !failed && x.status > 0 && x.status < 500);
    else {
      x.deadline = 0;
      x.ended = x.ctx.clock.now();
    }
  }
}
