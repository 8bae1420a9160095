/**
 * @module
 * Everything the proxy decides about one outbound request before it goes upstream, computed
 * synchronously from the snapshot and the parsed head: route (first matching rule), redirect,
 * CORS preflight, fault, weighted destination, consistent-hash key, rewrite, header-edit plans
 * and mirroring. The HTTP/1.1 session (session_http1.ts) owns one plan per connection and
 * reuses it for every request, so the common case (no filters configured) allocates nothing
 * beyond the route lookup's strings.
 */
import type {
  ClusterConfig,
  RouteConfig,
  RouteCorsPolicy,
  Snapshot,
  WeightedCluster,
} from "../../lib/mod.ts";
import type { PickContext } from "../balancer/balancer.ts";
import { localSourceLabels, newRouteSelection, pickDestination, selectRoute } from "../router.ts";
import { type AffinityResult, requestHashKey } from "./affinity.ts";
import { CORS_RESPONSE_NAMES, isPreflight, originAllowed, responseCorsHeaders } from "./cors.ts";
import { decideFault, type FaultDecision } from "./fault.ts";
import { dropsLine, type HeaderPlan, routeHeaderPlans } from "./headers.ts";
import { shouldMirror } from "./mirror.ts";
import { redirectLocation, rewriteTarget } from "./redirect.ts";
import { type HeadLines, lineNamed, RequestView } from "./request_view.ts";

/** What to do with a request. */
export const enum Decision {
  /** No virtual host, no matching rule, or a destination missing from the snapshot: 404 NR. */
  NoRoute,
  /** Answer `redirectCode` with `location`. */
  Redirect,
  /** Answer an allowed CORS preflight locally (`cors`, `corsOrigin`). */
  Preflight,
  /** Forward to `cluster` (after `fault.delayMs`), unless `fault.abortStatus` says abort. */
  Forward,
}

/** A source of uniform numbers in [0, 1); tests pass a fixed sequence. */
export type Random = () => number;

/** The per-request decisions; one instance per connection, overwritten by `decide`. */
export class RequestPlan {
  readonly view: RequestView = new RequestView();
  readonly selection = newRouteSelection();
  readonly fault: FaultDecision = { delayMs: 0, abortStatus: 0 };
  readonly affinity: AffinityResult = { hashKey: undefined, setCookie: "" };
  /** Balancer input (the hash key), reused for every try. */
  readonly pick: PickContext = { hashKey: undefined };

  route: RouteConfig | undefined = undefined;
  destination: WeightedCluster | undefined = undefined;
  cluster: ClusterConfig | undefined = undefined;
  /** Redirect target (Decision.Redirect). */
  location = "";
  /** CORS policy whose origin matched, and that origin ("" when none). */
  cors: RouteCorsPolicy | undefined = undefined;
  corsOrigin = "";
  /** Request header edits of route + destination, or null. */
  requestPlan: HeaderPlan | null = null;
  /** Response header edits of route + destination, or null. */
  responsePlan: HeaderPlan | null = null;
  /** Header lines appended to the response head (edits, CORS, affinity cookie). */
  responseExtra = "";
  /** Request target sent upstream when `rewrite.uri` applies (else undefined). */
  upstreamTarget: string | undefined = undefined;
  /** Authority sent upstream when `rewrite.authority` applies (else undefined). */
  upstreamAuthority: string | undefined = undefined;
  /** Mirror cluster of this request, when it is mirrored. */
  mirrorCluster: ClusterConfig | undefined = undefined;
  #snapshot: Snapshot | undefined = undefined;
  readonly #labelsOfSnapshot = () => localSourceLabels(this.#snapshot!);

  /**
   * Decides what to do with a request. `target` is the origin-form path with its query,
   * `authority` the Host as received, `host` its routing key (lower case, no port).
   */
  decide(
    snapshot: Snapshot,
    head: HeadLines,
    method: string,
    target: string,
    authority: string,
    host: string,
    clientIp: string,
    random: Random,
  ): Decision {
    this.#reset();
    const view = this.view;
    this.#snapshot = snapshot;
    // Source labels are looked up (per snapshot, cached) only when a rule asks for them.
    view.reset(head, method, target, authority, this.#labelsOfSnapshot);
    const route = selectRoute(snapshot, host, view, this.selection).route;
    if (!route) return Decision.NoRoute;
    this.route = route;

    if (route.redirect) {
      this.location = redirectLocation(route.redirect, authority, view.path, view.query);
      return Decision.Redirect;
    }

    const cors = route.corsPolicy;
    if (cors) {
      const origin = view.headers.get("origin");
      if (origin !== null && originAllowed(cors, origin)) {
        this.cors = cors;
        this.corsOrigin = origin;
        if (isPreflight(method, origin, view.headers.get("access-control-request-method"))) {
          return Decision.Preflight;
        }
      }
    }

    if (route.fault) decideFault(route.fault, random(), random(), this.fault);

    const destination = pickDestination(
      route.destinations,
      route.destinations.length > 1 ? random() : 0,
    );
    const cluster = destination && snapshot.clusters.get(destination.cluster);
    if (!destination || !cluster) return Decision.NoRoute;
    this.destination = destination;
    this.cluster = cluster;

    const lb = cluster.loadBalancer;
    if ((lb.kind === "ring_hash" || lb.kind === "maglev") && lb.hashPolicy) {
      this.pick.hashKey = requestHashKey(cluster, view, clientIp, this.affinity).hashKey;
    }

    if (route.headers || destination.headers) {
      const plans = routeHeaderPlans(route, destination);
      this.requestPlan = plans.request;
      this.responsePlan = plans.response;
    }
    const rewrite = route.rewrite;
    if (rewrite) {
      this.upstreamTarget = rewriteTarget(rewrite, this.selection.matched, view.path, view.query);
      this.upstreamAuthority = rewrite.authority;
    }
    if (route.mirror && shouldMirror(route.mirror.percentage, random())) {
      this.mirrorCluster = snapshot.clusters.get(route.mirror.cluster);
    }

    let extra = this.responsePlan?.appendText ?? "";
    if (this.cors) extra += responseCorsHeaders(this.cors, this.corsOrigin);
    if (this.affinity.setCookie !== "") extra += `set-cookie: ${this.affinity.setCookie}\r\n`;
    this.responseExtra = extra;
    return Decision.Forward;
  }

  /** True when the request head is sent as is (no edits, no rewrite). */
  get plainRequest(): boolean {
    return this.requestPlan === null && this.upstreamTarget === undefined &&
      this.upstreamAuthority === undefined;
  }

  /** True when the response head is relayed as is. */
  get plainResponse(): boolean {
    return this.responsePlan === null && this.cors === undefined && this.responseExtra === "";
  }

  /** True when request header line `i` is removed by this request's edits. */
  dropsRequestLine(head: HeadLines, i: number): boolean {
    return this.requestPlan !== null && dropsLine(this.requestPlan, head, i);
  }

  /** True when response header line `i` is removed (edits, or replaced by CORS headers). */
  dropsResponseLine(head: HeadLines, i: number): boolean {
    if (this.responsePlan !== null && dropsLine(this.responsePlan, head, i)) return true;
    if (this.cors !== undefined) {
      for (let k = 0; k < CORS_RESPONSE_NAMES.length; k++) {
        if (lineNamed(head, i, CORS_RESPONSE_NAMES[k])) return true;
      }
    }
    return false;
  }

  #reset(): void {
    this.route = undefined;
    this.destination = undefined;
    this.cluster = undefined;
    this.location = "";
    this.cors = undefined;
    this.corsOrigin = "";
    this.fault.delayMs = 0;
    this.fault.abortStatus = 0;
    this.pick.hashKey = undefined;
    this.affinity.hashKey = undefined;
    this.affinity.setCookie = "";
    this.requestPlan = null;
    this.responsePlan = null;
    this.responseExtra = "";
    this.upstreamTarget = undefined;
    this.upstreamAuthority = undefined;
    this.mirrorCluster = undefined;
  }
}
