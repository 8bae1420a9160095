/**
 * @module
 * The logical layer: what a request is for, before any endpoint is chosen. Outbound, the
 * request target (origin-form `/p` or a proxy request's `http://svc/p`) and `Host` select a
 * route on the snapshot current when the request started (filters/request_plan.ts:
 * VirtualService match, redirect, CORS preflight, fault, weighted destination, hash key,
 * rewrite, header edits, mirror); inbound, `x-weft-destination` names the local service, and a
 * raw TCP service takes the `weft-tcp/1` upgrade. Then the fault filter (delay, then abort)
 * and the hand-over to the concrete layer with the chosen cluster.
 *
 * Everything up to the hand-over is synchronous, so a concurrent snapshot swap cannot mix two
 * snapshots within one request's routing.
 */
import type { ClusterConfig } from "../lib/mod.ts";
import { dispatch } from "./concrete.ts";
import type { Exchange } from "./exchange.ts";
import { Framing } from "./http1.ts";
import { faultAbortReply, notTcpServiceReply, replies, tcpExpectedReply } from "./local_reply.ts";
import { hostKey } from "./router.ts";
import { preflightReplyBytes } from "./filters/cors.ts";
import { redirectReplyBytes } from "./filters/redirect.ts";
import { Decision } from "./filters/request_plan.ts";
import { tcpUpgradeProtocol } from "./tcp.ts";
import { openTcpTunnel } from "./upgrade.ts";

/** Routes the request in `x.req` and forwards it; resolves whether the client stays usable. */
export function forward(x: Exchange): Promise<boolean> {
  const ctx = x.ctx;
  const req = x.req;

  // Request target: origin-form "/p" or absolute-form "http://svc/p" (proxy requests).
  let path = req.target;
  let authority: string | null = null;
  if (path.charCodeAt(0) !== 47 /* / */) {
    if (path.length > 7 && path.slice(0, 7).toLowerCase() === "http://") {
      const slash = path.indexOf("/", 7);
      authority = slash < 0 ? path.slice(7) : path.slice(7, slash);
      const at = authority.lastIndexOf("@");
      if (at >= 0) authority = authority.slice(at + 1);
      path = slash < 0 ? "/" : path.slice(slash);
    } else {
      x.path = path;
      return x.reply(replies.badTarget, true);
    }
  }
  x.path = path;
  req.replaceHost = authority !== null;
  const hostHeader = req.host;
  x.requestId = req.requestId;

  const snapshot = ctx.snapshot();
  x.snapshot = snapshot;
  x.authority = authority;
  let cluster: ClusterConfig | undefined;
  if (ctx.kind === "outbound") {
    x.host = hostKey(authority ?? hostHeader);
    const plan = x.plan;
    const decision = plan.decide(
      snapshot,
      req,
      req.method,
      path,
      authority ?? hostHeader,
      x.host,
      x.clientIp,
      Math.random,
    );
    if (decision === Decision.NoRoute) return x.reply(replies.noRoute);
    const route = plan.route!;
    if (decision === Decision.Redirect) {
      const code = route.redirect!.redirectCode;
      const location = plan.location;
      return x.replyWith(code, (c) => redirectReplyBytes(code, location, c));
    }
    if (decision === Decision.Preflight) {
      const cors = plan.cors!;
      const origin = plan.corsOrigin;
      return x.replyWith(200, (c) => preflightReplyBytes(cors, origin, c));
    }
    cluster = x.cluster = plan.cluster!;
    x.timeoutMs = route.timeoutMs;
    x.pick = plan.pick;
    x.plainRequest = plan.plainRequest;
    x.plainResponse = plan.plainResponse;
    if (plan.upstreamAuthority !== undefined) req.replaceHost = true;
    x.retry = route.retries;
    const fault = plan.fault;
    if (fault.delayMs > 0 || fault.abortStatus > 0) return faultThenDispatch(x, cluster);
  } else {
    const destination = req.destination;
    x.host = destination !== "" ? destination : hostKey(authority ?? hostHeader);
    cluster = snapshot.inbound.get(x.host);
    if (!cluster) return x.reply(replies.noLocalService);
    // Raw TCP tunnels (tcp.ts): one field test on the plain request path.
    if (cluster.protocol === "tcp" || req.upgrade !== "") {
      const tcpAsked = req.upgrade.toLowerCase() === tcpUpgradeProtocol;
      if (cluster.protocol === "tcp") {
        x.clusterName = cluster.name;
        if (!tcpAsked || req.framing !== Framing.None) {
          return x.reply(tcpExpectedReply(tcpUpgradeProtocol), true);
        }
        return openTcpTunnel(x, cluster);
      }
      if (tcpAsked) return x.reply(notTcpServiceReply(x.host), true);
    }
    x.cluster = cluster;
    x.timeoutMs = snapshot.tuning.routeTimeoutMs;
  }
  return dispatch(x, x.started);
}

/** Fault injection (delay, then abort) before the request is dispatched. */
async function faultThenDispatch(x: Exchange, cluster: ClusterConfig): Promise<boolean> {
  const fault = x.plan.fault;
  // The delay comes first and is not part of the route timeout (Envoy's fault filter runs
  // before the router).
  if (fault.delayMs > 0) {
    x.flag = "DI";
    await new Promise<void>((resolve) => x.ctx.clock.setTimeout(resolve, fault.delayMs));
  }
  if (fault.abortStatus > 0) {
    x.clusterName = cluster.name;
    return x.reply(faultAbortReply(fault.abortStatus));
  }
  // The parsed head points into the read buffer, which nothing has read into since.
  const start = fault.delayMs > 0 ? x.ctx.clock.now() : x.started;
  return dispatch(x, start);
}
