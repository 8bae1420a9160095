/**
 * @module
 * Requests that leave HTTP behind. An upgrade request (WebSocket or another HTTP/1.1
 * `Upgrade`), like Envoy's `upgrade_configs`: the head goes to the endpoint on a connection of
 * its own, never taken from nor returned to the pool. A `101` is relayed and the two sockets
 * are joined (the session's `tunnel`); any other answer is relayed as a normal response and
 * the upstream connection closed. One try: retries and mirrors do not apply (fault delay and
 * abort ran before). The route timeout covers the handshake only.
 *
 * And the inbound end of a TCP upstream (tcp.ts): a `weft-tcp/1` upgrade from another node's
 * TCP listener, joined to a connection to the local `tcp` service.
 */
import type { ClusterConfig, EndpointConfig } from "../lib/mod.ts";
import type { Balancer } from "./balancer/balancer.ts";
import { pumpRequestBody, readFinalResponseHead, sendRest } from "./endpoint_http1.ts";
import { type Exchange, noPick } from "./exchange.ts";
import { replies } from "./local_reply.ts";
import { releasePick, reportTry } from "./outcome.ts";
import { ConnectError, type UpstreamConnection } from "./pool.ts";
import {
  connectErrorFailure,
  connectTimeoutFailure,
  timedOutTry,
  UpstreamFailure,
} from "./upstream_failure.ts";

/** Runs an upgrade request's one try at `endpoint` and, after a `101`, its tunnel. */
export async function upgrade(
  x: Exchange,
  headBytes: Uint8Array,
  endpoint: EndpointConfig,
  balancer: Balancer,
): Promise<boolean> {
  const ctx = x.ctx;
  const cluster = x.cluster!;
  x.retry = undefined;
  const pool = ctx.pools.pool(endpoint.key, endpoint.hostname, endpoint.port);
  let up: UpstreamConnection | null = null;
  let released = false;
  let failed = false;
  try {
    try {
      up = await pool.connect(cluster.connectTimeoutMs);
    } catch (err) {
      if (x.timedOut) return await x.reply(replies.timeout);
      const timedOut = err instanceof ConnectError && err.timedOut;
      const failure = timedOut ? connectTimeoutFailure : connectErrorFailure;
      reportTry(x, endpoint, failure);
      return await x.reply(failure.reply);
    }
    if (x.timedOut) return await x.reply(replies.timeout);
    x.upstream = up;
    try {
      await sendRest(x, up, headBytes);
      if (!x.reqBodyDone) x.bodyPump = pumpRequestBody(x, up);
      await readFinalResponseHead(x, up, true);
    } catch (err) {
      if (!(err instanceof UpstreamFailure)) throw err;
      up.close();
      if (x.bodyPump) await x.bodyPump;
      const failure = x.timedOut ? timedOutTry : err;
      reportTry(x, endpoint, failure);
      if (x.headSent) return false;
      return await x.reply(failure.reply);
    }
    reportTry(x, endpoint, null);
    // A refusal is relayed as a response; the connection is closed afterwards (finally).
    if (x.res.status !== 101) return await x.relayResponse(up);
    // Switched: the pick's outcome is the handshake's (a tunnel's lifetime is no latency),
    // and from here on only the idle timeout applies.
    released = true;
    releasePick(x, balancer, endpoint, true);
    x.ended = 0;
    x.routeDeadline = 0;
    return await x.tunnel(up, x.snapshot!.tuning.upstreamIdleTimeoutMs);
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    if (up !== null) {
      x.upstream = null;
      pool.release(up, false, 0);
    }
    if (!released) releasePick(x, balancer, endpoint, !failed && x.status > 0 && x.status < 500);
  }
}

/**
 * The inbound end of a TCP upstream: connects to the local `tcp` service and hands both
 * connections to the session, which answers `101` and joins them. The client connection
 * closes afterwards.
 */
export async function openTcpTunnel(x: Exchange, cluster: ClusterConfig): Promise<boolean> {
  const ctx = x.ctx;
  const state = ctx.clusters.get(cluster.name);
  const endpoint = state?.pick(noPick);
  if (!state || !endpoint) return x.reply(replies.noHealthyUpstream, true);
  x.endpoint = endpoint;
  const started = ctx.clock.now();
  const pool = ctx.pools.pool(endpoint.key, endpoint.hostname, endpoint.port);
  let up: UpstreamConnection;
  try {
    up = await pool.connect(cluster.connectTimeoutMs);
  } catch (err) {
    const timedOut = err instanceof ConnectError && err.timedOut;
    state.report(endpoint, 0, timedOut ? "timeout" : "connect");
    state.balancer.release(endpoint, { latencyMs: ctx.clock.now() - started, ok: false });
    return x.reply(replies.connectError, true);
  }
  state.report(endpoint, 200);
  state.balancer.release(endpoint, { latencyMs: ctx.clock.now() - started, ok: true });
  try {
    return await x.tcpTunnel(up);
  } finally {
    pool.release(up, false, 0);
  }
}
