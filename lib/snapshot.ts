/**
 * @module
 * The proxy's whole configuration as one read-only value: its types, and the small pure
 * lookups that read it. `lib/compile/` builds it from the node config, the gossip catalog and
 * the policy store; the proxy holds one reference and swaps it atomically, and imports this
 * module, never the compiler. A compiled snapshot is frozen deeply and its maps are
 * {@linkcode FrozenMap}s, so nothing that reads it can change it for the other readers.
 */
import type { Protocol, ProxyTuning } from "./config.ts";
import { FrozenMap } from "./frozen_map.ts";
import type {
  HttpMatchRequest,
  RetryOnCondition,
  StringMatch,
} from "./resources/virtual_service.ts";

/** One service instance discovered through gossip (or local). */
export interface CatalogEndpoint {
  service: string;
  /** Name and stable id of the node that runs it. */
  node: string;
  nodeId: string;
  /** The node's inbound listener, where other nodes deliver requests for this instance. */
  hostname: string;
  port: number;
  protocol: Protocol;
  labels: Readonly<Record<string, string>>;
  /** False when the member is suspect or the service's own health check fails. */
  healthy: boolean;
}

/** A local TCP port whose connections are carried to an instance of `service`. */
export interface TcpUpstreamConfig {
  readonly service: string;
  /** `outbound|SERVICE`; may be absent from `clusters` while the service has no endpoints. */
  readonly cluster: string;
  readonly localHost: string;
  readonly localPort: number;
}

/** One upstream address of a cluster. */
export interface EndpointConfig {
  /** Stable identity (`host:port`) for state carried across snapshots: pools, counters. */
  readonly key: string;
  readonly hostname: string;
  readonly port: number;
  /** Node that runs it ("" when unknown). */
  readonly node: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Relative weight for weighted balancers (>= 1). */
  readonly weight: number;
  readonly healthy: boolean;
  /**
   * True when the address is another node's inbound listener: the proxy then tells that
   * listener which service is meant (header `x-weft-destination`).
   */
  readonly viaInbound: boolean;
}

/** Load-balancing policy of a cluster; algorithms are added by the traffic-management work. */
export type LoadBalancerConfig =
  | { readonly kind: "round_robin" }
  | { readonly kind: "random" }
  | { readonly kind: "least_request"; readonly choiceCount: number }
  | {
    readonly kind: "ring_hash";
    readonly minimumRingSize: number;
    readonly hashPolicy?: HashPolicy;
  }
  | { readonly kind: "maglev"; readonly tableSize: number; readonly hashPolicy?: HashPolicy }
  | { readonly kind: "peak_ewma"; readonly decayMs: number };

/**
 * Where a consistent-hash balancer takes its key from (Istio `consistentHash`). A cookie
 * policy with `ttlMs` makes the proxy generate the cookie when the request lacks it.
 */
export type HashPolicy =
  | { readonly kind: "header"; readonly name: string }
  | {
    readonly kind: "cookie";
    readonly name: string;
    readonly path?: string;
    readonly ttlMs?: number;
  }
  | { readonly kind: "source_ip" }
  | { readonly kind: "query_parameter"; readonly name: string };

/** A set of interchangeable endpoints and how to spread requests over them. */
export interface ClusterConfig {
  /** `outbound|SERVICE` or `inbound|SERVICE`. */
  readonly name: string;
  readonly service: string;
  readonly protocol: Protocol;
  readonly endpoints: readonly EndpointConfig[];
  readonly loadBalancer: LoadBalancerConfig;
  readonly connectTimeoutMs: number;
  /** DestinationRule subset this cluster selects (`outbound|HOST|SUBSET`). */
  readonly subset?: string;
  /**
   * Why a route destination has no endpoints by construction (unknown host, subset or port),
   * as opposed to a known service that merely has none right now. The proxy answers 503 UH
   * either way; `weft routes` shows the reason.
   */
  readonly unresolved?: string;
  /** DestinationRule `outlierDetection`, parsed; absent: no passive ejection (Istio's default). */
  readonly outlierDetection?: OutlierDetectionConfig;
  /** DestinationRule `connectionPool` limits, parsed; absent: no limits (Istio's default). */
  readonly circuitBreaker?: CircuitBreakerConfig;
}

/**
 * Envoy's consecutive-error outlier detection (Istio `outlierDetection`), with Istio's
 * defaults filled in. A threshold of 0 disables that kind of ejection.
 */
export interface OutlierDetectionConfig {
  /** Consecutive 5xx (and, unless split, local-origin failures) before ejection; Istio: 5. */
  readonly consecutive5xxErrors: number;
  /** Consecutive 502/503/504 (and, unless split, local-origin failures); Istio: 0 (off). */
  readonly consecutiveGatewayErrors: number;
  /** Count connect failures, resets and timeouts apart from HTTP statuses (Istio: false). */
  readonly splitExternalLocalOriginErrors: boolean;
  /** Consecutive local-origin failures before ejection when split; Istio: 5. */
  readonly consecutiveLocalOriginFailures: number;
  /** Period by which an endpoint's ejection multiplier decays while it behaves; Istio: 10 s. */
  readonly intervalMs: number;
  /** Ejection time is this times the number of ejections; Istio: 30 s. */
  readonly baseEjectionTimeMs: number;
  /** Cap on one ejection's time: Envoy's `max_ejection_time`, 300 s or the base if larger. */
  readonly maxEjectionTimeMs: number;
  /** At most this % of the cluster's endpoints ejected at once; Istio: 10. */
  readonly maxEjectionPercent: number;
  /** Below this % of usable endpoints, ejections are ignored (Envoy panic); Istio: 0 (off). */
  readonly minHealthPercent: number;
}

/**
 * Envoy's cluster circuit breakers (Istio `connectionPool`). 0 means unlimited, as in Istio,
 * which sets Envoy's thresholds to 2^32-1 when a field is unset.
 */
export interface CircuitBreakerConfig {
  /** Upstream connections in use by the cluster at once (`tcp.maxConnections`). */
  readonly maxConnections: number;
  /** Requests waiting for a connection (`http.http1MaxPendingRequests`). */
  readonly maxPendingRequests: number;
  /** Requests in flight to the cluster (`http.http2MaxRequests`, Envoy `max_requests`). */
  readonly maxRequests: number;
  /** Retries in flight to the cluster (`http.maxRetries`). */
  readonly maxRetries: number;
  /** A pooled connection is closed after this many requests (`http.maxRequestsPerConnection`). */
  readonly maxRequestsPerConnection: number;
}

/** Request match of a route; the traffic-management work adds headers, methods, etc. */
export interface RouteMatch {
  readonly pathPrefix: string;
}

/** A weighted destination of a route. */
export interface WeightedCluster {
  readonly cluster: string;
  readonly weight: number;
  /** Header edits applied only when this destination is picked (VirtualService `route[].headers`). */
  readonly headers?: HeaderPolicy;
}

/** One header and its value; names are lower-case. */
export interface HeaderValue {
  readonly name: string;
  readonly value: string;
}

/** Istio `HeaderOperations`, normalised: lower-case names, applied in the order set, add, remove. */
export interface HeaderEdits {
  readonly set: readonly HeaderValue[];
  readonly add: readonly HeaderValue[];
  readonly remove: readonly string[];
}

/** Header edits of a route or destination, for requests (to upstream) and responses. */
export interface HeaderPolicy {
  readonly request?: HeaderEdits;
  readonly response?: HeaderEdits;
}

/** VirtualService `rewrite`: `uri` replaces the matched prefix (see `rewritePath`). */
export interface RouteRewrite {
  readonly uri?: string;
  readonly authority?: string;
}

/** VirtualService `redirect`: the proxy answers it locally, nothing goes upstream. */
export interface RouteRedirect {
  readonly uri?: string;
  readonly authority?: string;
  readonly port?: number;
  readonly scheme?: "http" | "https";
  /** Istio's default 301 when unset. */
  readonly redirectCode: number;
}

/** VirtualService `retries`, parsed. Only present when `attempts` > 0. */
export interface RouteRetryPolicy {
  /** Retries after the first try (Istio `attempts`). */
  readonly attempts: number;
  /** 0: no per-try limit (the route timeout bounds all tries). */
  readonly perTryTimeoutMs: number;
  /** Envoy `retry_on` conditions, deduplicated, in a fixed order. */
  readonly retryOn: readonly RetryOnCondition[];
  /** Status codes that are retried (`retryOn: "503,429"`), sorted. */
  readonly retriableStatusCodes: readonly number[];
}

/** VirtualService `fault`, parsed. Percentages are 0..100 (fractions allowed). */
export interface RouteFault {
  readonly delay?: { readonly fixedDelayMs: number; readonly percentage: number };
  readonly abort?: { readonly httpStatus: number; readonly percentage: number };
}

/** VirtualService `mirror` + `mirrorPercentage` (Istio's default 100 when unset). */
export interface RouteMirror {
  readonly cluster: string;
  readonly percentage: number;
}

/** VirtualService `corsPolicy`, normalised into response header values. */
export interface RouteCorsPolicy {
  /** Matched against the request's `Origin` (exact, prefix or full-match regex). */
  readonly allowOrigins: readonly StringMatch[];
  /** Values for the `Access-Control-*` headers ("" when not configured). */
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  /** Whole seconds for `Access-Control-Max-Age`; undefined when not configured. */
  readonly maxAgeSeconds?: number;
  readonly allowCredentials: boolean;
}

export interface RouteConfig {
  readonly name: string;
  /** Always `/` for VirtualService routes: they match with `matches` instead. */
  readonly match: RouteMatch;
  /** Redirect routes have none. */
  readonly destinations: readonly WeightedCluster[];
  /** 0 disables the timeout. */
  readonly timeoutMs: number;
  /** `namespace/name` of the VirtualService the route comes from. */
  readonly virtualService?: string;
  /**
   * The VirtualService `match[]` as validated (ORed alternatives of ANDed conditions), for
   * `compileRouteTableWithIndex`; undefined matches every request.
   */
  readonly matches?: readonly HttpMatchRequest[];
  readonly rewrite?: RouteRewrite;
  readonly redirect?: RouteRedirect;
  readonly retries?: RouteRetryPolicy;
  readonly fault?: RouteFault;
  readonly mirror?: RouteMirror;
  readonly headers?: HeaderPolicy;
  readonly corsPolicy?: RouteCorsPolicy;
}

/** Routes for one set of domains (a service name, possibly with `:port`). */
export interface VirtualHostConfig {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly RouteConfig[];
}

export interface Snapshot {
  /** Increases with every compile; shown in `weft routes` and logs. */
  readonly version: number;
  /** Outbound: lower-case host without port -> virtual host. */
  readonly outbound: ReadonlyMap<string, VirtualHostConfig>;
  /** Inbound: service name -> cluster of the local instance. */
  readonly inbound: ReadonlyMap<string, ClusterConfig>;
  /** Every cluster by name. */
  readonly clusters: ReadonlyMap<string, ClusterConfig>;
  readonly tuning: Readonly<ProxyTuning>;
  /** Problems found while compiling policy (e.g. two VirtualServices for one host). */
  readonly warnings?: readonly string[];
  /** Local TCP listeners for mesh services (config `upstreams`); absent when none. */
  readonly tcpUpstreams?: readonly TcpUpstreamConfig[];
}

/** An empty snapshot: every request gets 404 NR. Frozen like a compiled one. */
export function emptySnapshot(tuning: ProxyTuning): Snapshot {
  return Object.freeze({
    version: 0,
    outbound: new FrozenMap<string, VirtualHostConfig>(),
    inbound: new FrozenMap<string, ClusterConfig>(),
    clusters: new FrozenMap<string, ClusterConfig>(),
    // Copied: freezing the caller's tuning object would change it for its other users.
    tuning: Object.freeze({ ...tuning }),
  });
}

/**
 * The virtual host for a request's host key (lower-case, no port): the exact entry, else the
 * most specific `*.suffix` entry, else the catch-all `*`. Only the exact lookup happens when
 * the host is known, so the common case costs one map lookup.
 */
export function findVirtualHost(
  outbound: ReadonlyMap<string, VirtualHostConfig>,
  host: string,
): VirtualHostConfig | undefined {
  const exact = outbound.get(host);
  if (exact) return exact;
  for (let dot = host.indexOf("."); dot >= 0; dot = host.indexOf(".", dot + 1)) {
    const wildcard = outbound.get(`*${host.slice(dot)}`);
    if (wildcard) return wildcard;
  }
  return outbound.get("*");
}
