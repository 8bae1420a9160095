/**
 * @module
 * The logical layer of the data path: request authority and path -> virtual host -> route ->
 * one weighted destination cluster. Pure functions over a snapshot, so a request that started
 * on one snapshot keeps routing on it while a newer one is installed.
 */
import type { ClusterConfig, RouteConfig, Snapshot, WeightedCluster } from "../lib/mod.ts";

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

/** The first route whose match accepts `path`, or undefined. */
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

/** Result of routing an outbound request. */
export interface OutboundRoute {
  route: RouteConfig;
  cluster: ClusterConfig;
}

/**
 * Routes an outbound request by host key and path. Undefined means "no route" (404 NR): no
 * virtual host, no matching route, or a destination cluster missing from the snapshot.
 */
export function routeOutbound(
  snapshot: Snapshot,
  host: string,
  path: string,
  random: number = Math.random(),
): OutboundRoute | undefined {
  const vhost = snapshot.outbound.get(host);
  if (!vhost) return undefined;
  const route = matchRoute(vhost.routes, path);
  if (!route) return undefined;
  const dest = pickDestination(route.destinations, random);
  if (!dest) return undefined;
  const cluster = snapshot.clusters.get(dest.cluster);
  return cluster ? { route, cluster } : undefined;
}

/** Routes an inbound request to a local cluster by destination service (header or host). */
export function routeInbound(snapshot: Snapshot, service: string): ClusterConfig | undefined {
  return snapshot.inbound.get(service);
}
