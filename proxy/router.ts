/**
 * @module
 * The logical layer of the data path: request authority, path, method, headers and query ->
 * virtual host -> route -> one weighted destination cluster. Pure functions over a snapshot,
 * so a request that started on one snapshot keeps routing on it while a newer one is
 * installed.
 *
 * Each virtual host's routes are compiled into one match table (proxy/route_match.ts) the
 * first time the host is used and cached by the `VirtualHostConfig` object: snapshots are
 * immutable, so the table lives exactly as long as the snapshot that holds the host. Routes
 * without a VirtualService `match` list (the default route of a service or ServiceEntry) match
 * on their `pathPrefix`.
 */
import type {
  ClusterConfig,
  RouteConfig,
  Snapshot,
  VirtualHostConfig,
  WeightedCluster,
} from "../lib/mod.ts";
import { findVirtualHost } from "../lib/snapshot.ts";
import type { HttpMatchRequest } from "../lib/resources/virtual_service.ts";
import {
  compileRouteTableWithIndex,
  type MatchRequest,
  type RouteTableHit,
} from "./route_match.ts";

/**
 * The routing key of an authority: lower-cased, port stripped (`Reviews:9080` -> `reviews`,
 * `[::1]:80` -> `::1`).
 */
export function hostKey(authority: string): string {
  let host = authority;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf("]");
    host = close > 0 ? host.slice(1, close) : host;
  } else {
    const colon = host.lastIndexOf(":");
    if (colon >= 0) host = host.slice(0, colon);
  }
  return host.toLowerCase();
}

/** The first route whose path prefix accepts `path`, or undefined (ignores `matches`). */
export function matchRoute(routes: readonly RouteConfig[], path: string): RouteConfig | undefined {
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i];
    if (path.startsWith(r.match.pathPrefix)) return r;
  }
  return undefined;
}

/** Picks a destination proportionally to weight; `random` is in [0, 1). */
export function pickDestination(
  destinations: readonly WeightedCluster[],
  random: number,
): WeightedCluster | undefined {
  const n = destinations.length;
  if (n <= 1) return destinations[0];
  let total = 0;
  for (let i = 0; i < n; i++) total += destinations[i].weight;
  if (total <= 0) return destinations[0];
  let point = random * total;
  for (let i = 0; i < n; i++) {
    point -= destinations[i].weight;
    if (point < 0) return destinations[i];
  }
  return destinations[n - 1];
}

type RouteLookup = (request: MatchRequest, out: RouteTableHit) => RouteTableHit | undefined;

/** Compiled match tables by virtual host; dropped with the snapshot that holds the host. */
const tables = new WeakMap<VirtualHostConfig, RouteLookup>();

/** The match list a route is selected by: its VirtualService `match`, else its path prefix. */
export function effectiveMatches(route: RouteConfig): readonly HttpMatchRequest[] | undefined {
  if (route.matches !== undefined || route.virtualService !== undefined) return route.matches;
  const prefix = route.match.pathPrefix;
  return prefix === "/" || prefix === "" ? undefined : [{ uri: { prefix } }];
}

function tableOf(vhost: VirtualHostConfig): RouteLookup {
  let lookup = tables.get(vhost);
  if (!lookup) {
    lookup = compileRouteTableWithIndex(vhost.routes.map((r) => ({ match: effectiveMatches(r) })));
    tables.set(vhost, lookup);
  }
  return lookup;
}

/** A route lookup's result: the route and which of its match alternatives matched. */
export interface RouteSelection {
  route: RouteConfig | undefined;
  /** The alternative that matched (for `rewrite.uri`), undefined when the route has none. */
  matched: HttpMatchRequest | undefined;
  /** Scratch for the table lookup; reused by the caller across requests. */
  hit: RouteTableHit;
}

/** A reusable selection record (one per connection). */
export function newRouteSelection(): RouteSelection {
  return { route: undefined, matched: undefined, hit: { routeIndex: -1, matchIndex: -1 } };
}

/**
 * Selects the route for an outbound request: the virtual host of `host` (exact, else the most
 * specific `*.suffix`, else `*`), then its first route whose match list accepts `request`.
 * Fills and returns `out`; `out.route` is undefined when nothing matches (404 NR).
 */
export function selectRoute(
  snapshot: Snapshot,
  host: string,
  request: MatchRequest,
  out: RouteSelection,
): RouteSelection {
  out.route = undefined;
  out.matched = undefined;
  const vhost = findVirtualHost(snapshot.outbound, host);
  if (!vhost) return out;
  const hit = tableOf(vhost)(request, out.hit);
  if (!hit) return out;
  const route = vhost.routes[hit.routeIndex];
  out.route = route;
  out.matched = effectiveMatches(route)?.[hit.matchIndex];
  return out;
}

/** Result of routing an outbound request. */
export interface OutboundRoute {
  route: RouteConfig;
  cluster: ClusterConfig;
  /** The destination picked among the route's weighted clusters. */
  destination: WeightedCluster;
}

/** A request with only a method and a path, for callers that route on the path alone. */
function pathOnlyRequest(path: string, authority: string): MatchRequest {
  const q = path.indexOf("?");
  return {
    method: "GET",
    path: q < 0 ? path : path.slice(0, q),
    query: q < 0 ? "" : path.slice(q + 1),
    authority,
    headers: { get: () => null },
  };
}

/**
 * Routes an outbound request by host key and request. Undefined means "no route" (404 NR): no
 * virtual host, no matching route, a redirect route (no destination), or a destination cluster
 * missing from the snapshot. `request` may be a path, matched with no headers.
 */
export function routeOutbound(
  snapshot: Snapshot,
  host: string,
  request: string | MatchRequest,
  random: number = Math.random(),
): OutboundRoute | undefined {
  const r = typeof request === "string" ? pathOnlyRequest(request, host) : request;
  const selection = selectRoute(snapshot, host, r, newRouteSelection());
  const route = selection.route;
  if (!route) return undefined;
  const destination = pickDestination(route.destinations, random);
  if (!destination) return undefined;
  const cluster = snapshot.clusters.get(destination.cluster);
  return cluster ? { route, cluster, destination } : undefined;
}

/** Routes an inbound request to a local cluster by destination service (header or host). */
export function routeInbound(snapshot: Snapshot, service: string): ClusterConfig | undefined {
  return snapshot.inbound.get(service);
}

const sourceLabelsBySnapshot = new WeakMap<Snapshot, Readonly<Record<string, string>>>();

/**
 * Labels of the workload calling the outbound listener, for `sourceLabels` matches. The
 * outbound listener serves every local service of the node and cannot tell which one sent a
 * request, so a label counts only when every local service carries it with the same value
 * (with one local service: exactly its labels). A node without local services has none.
 */
export function localSourceLabels(snapshot: Snapshot): Readonly<Record<string, string>> {
  let labels = sourceLabelsBySnapshot.get(snapshot);
  if (labels) return labels;
  let common: Record<string, string> | undefined;
  for (const cluster of snapshot.inbound.values()) {
    const own = cluster.endpoints[0]?.labels ?? {};
    if (common === undefined) common = { ...own };
    else {
      for (const k of Object.keys(common)) if (own[k] !== common[k]) delete common[k];
    }
  }
  labels = Object.freeze(common ?? {});
  sourceLabelsBySnapshot.set(snapshot, labels);
  return labels;
}
