/**
 * @module
 * VirtualService + DestinationRule -> routes and clusters of the snapshot. Pure: it takes the
 * clusters and virtual hosts already compiled from local services, the catalog and
 * ServiceEntries, and returns new maps with:
 *
 * - **Routes.** Each host of a VirtualService gets a virtual host whose routes are the
 *   VirtualService's `http[]` rules in order (the router takes the first that matches),
 *   replacing the host's default route. Everything the proxy needs per request is parsed here
 *   (durations to ms, `retryOn` to conditions, percentages to numbers, header names lower-cased)
 *   so the hot path parses nothing.
 * - **Host names.** Weft services have flat names, so a Kubernetes-style name
 *   `NAME.NAMESPACE.svc[.cluster.local]` means `NAME` (in VirtualService hosts, destinations
 *   and DestinationRule hosts). `*` and `*.suffix` hosts are stored under those keys; the
 *   router falls back to them only when the request's host has no virtual host of its own
 *   (see `findVirtualHost` in `lib/snapshot.ts`).
 * - **Subsets.** A destination with `subset` goes to cluster `outbound|HOST|SUBSET` whose
 *   endpoints are the host's endpoints whose labels carry every label of the subset.
 * - **Load balancing.** The DestinationRule's `trafficPolicy.loadBalancer` (with a subset's
 *   own policy overriding it, field by field) sets each cluster's balancer. Without one the
 *   balancer stays round robin (Istio's default is LEAST_REQUEST; see docs/traffic.md).
 * - **Resilience.** The same policy's `outlierDetection` and `connectionPool` limits become
 *   the cluster's `outlierDetection` and `circuitBreaker` (durations in ms, Istio's defaults
 *   filled in); absent when not configured, so such clusters cost nothing per request.
 * - **Nothing silently dropped.** A destination naming an unknown host, subset or port gets a
 *   cluster with no endpoints and an `unresolved` reason (the proxy answers 503 UH and
 *   `weft routes` shows why). Two VirtualServices naming one host are refused at apply by
 *   `virtualServiceConflicts` (`lib/resources/hosts.ts`); if both still arrive (concurrent applies on two
 *   nodes), every node keeps the one with the lowest `namespace/name` and reports a warning.
 */
import type { DestinationRuleSpec, TrafficPolicy } from "../resources/destination_rule.ts";
import { byResourceId, canonicalHost, hostClaims, resourceId } from "../resources/hosts.ts";
import type { Resource } from "../resources/kind.ts";
import {
  type CorsPolicy,
  type Destination,
  destinationWeights,
  durationMs,
  type HeaderOperations,
  type HeadersPolicy,
  type HttpRoute,
  parseRetryOn,
  RETRY_ON_CONDITIONS,
  type StringMatch,
  type VirtualServiceSpec,
} from "../resources/virtual_service.ts";
import type {
  ClusterConfig,
  HeaderEdits,
  HeaderPolicy,
  LoadBalancerConfig,
  RouteConfig,
  RouteCorsPolicy,
  RouteFault,
  RouteRetryPolicy,
  VirtualHostConfig,
  WeightedCluster,
} from "../snapshot.ts";
import {
  circuitBreakerConfigOf,
  DEFAULT_LOAD_BALANCER,
  effectiveTrafficPolicy,
  loadBalancerConfigOf,
  matchesSubset,
  outlierDetectionConfigOf,
} from "./destination_rules.ts";

/** What {@linkcode compileTraffic} works from. */
export interface TrafficCompileInput {
  virtualServices: readonly Resource[];
  destinationRules: readonly Resource[];
  /** Clusters compiled so far (local, catalog, ServiceEntry), by name. Not modified. */
  clusters: ReadonlyMap<string, ClusterConfig>;
  /** Outbound virtual hosts compiled so far, by host key. Not modified. */
  outbound: ReadonlyMap<string, VirtualHostConfig>;
  tuning: { connectTimeoutMs: number; routeTimeoutMs: number };
}

/** The snapshot's outbound side after applying VirtualServices and DestinationRules. */
export interface CompiledTraffic {
  clusters: Map<string, ClusterConfig>;
  outbound: Map<string, VirtualHostConfig>;
  /** Conflicts resolved by the deterministic rule, for logs and `weft status`. */
  warnings: string[];
}

/** Istio's default redirect status. */
const DEFAULT_REDIRECT_CODE = 301;

function lowerHeaderValues(record: Record<string, string> | undefined) {
  return Object.entries(record ?? {}).map(([name, value]) => ({
    name: name.toLowerCase(),
    value,
  }));
}

function headerEdits(ops: HeaderOperations | undefined): HeaderEdits | undefined {
  if (!ops) return undefined;
  return {
    set: lowerHeaderValues(ops.set),
    add: lowerHeaderValues(ops.add),
    remove: (ops.remove ?? []).map((n) => n.toLowerCase()),
  };
}

function headerPolicy(h: HeadersPolicy | undefined): HeaderPolicy | undefined {
  if (!h || (!h.request && !h.response)) return undefined;
  const request = headerEdits(h.request);
  const response = headerEdits(h.response);
  return { ...(request ? { request } : {}), ...(response ? { response } : {}) };
}

function retryPolicy(r: HttpRoute["retries"]): RouteRetryPolicy | undefined {
  // Istio: attempts 0 disables retries.
  if (!r || r.attempts === 0) return undefined;
  const parsed = parseRetryOn(r.retryOn);
  return {
    attempts: r.attempts,
    perTryTimeoutMs: r.perTryTimeout !== undefined ? durationMs(r.perTryTimeout) : 0,
    retryOn: RETRY_ON_CONDITIONS.filter((c) => parsed.conditions.has(c)),
    retriableStatusCodes: [...parsed.statusCodes].sort((a, b) => a - b),
  };
}

function faultPolicy(f: HttpRoute["fault"]): RouteFault | undefined {
  if (!f || (!f.delay && !f.abort)) return undefined;
  // An unset percentage injects nothing: what Istio does (istio/api#2522), so a rule behaves
  // the same in both meshes.
  return {
    ...(f.delay
      ? {
        delay: {
          fixedDelayMs: durationMs(f.delay.fixedDelay),
          percentage: f.delay.percentage?.value ?? 0,
        },
      }
      : {}),
    ...(f.abort
      ? { abort: { httpStatus: f.abort.httpStatus, percentage: f.abort.percentage?.value ?? 0 } }
      : {}),
  };
}

function corsPolicy(c: CorsPolicy | undefined): RouteCorsPolicy | undefined {
  if (!c) return undefined;
  return {
    allowOrigins: (c.allowOrigins ?? []).map((m): StringMatch => ({ ...m })),
    allowMethods: (c.allowMethods ?? []).join(","),
    allowHeaders: (c.allowHeaders ?? []).join(","),
    exposeHeaders: (c.exposeHeaders ?? []).join(","),
    ...(c.maxAge !== undefined ? { maxAgeSeconds: Math.floor(durationMs(c.maxAge) / 1000) } : {}),
    allowCredentials: c.allowCredentials ?? false,
  };
}

/** One DestinationRule chosen for a host. */
interface RuleForHost {
  id: string;
  spec: DestinationRuleSpec;
  /** `spec.subsets` by name (the first of a name), so a lookup does not scan the list. */
  subsets: Map<string, NonNullable<DestinationRuleSpec["subsets"]>[number]>;
}

/** Mutable state of one compile. */
class TrafficCompiler {
  readonly clusters: Map<string, ClusterConfig>;
  readonly outbound: Map<string, VirtualHostConfig>;
  readonly warnings: string[] = [];
  readonly #base: ReadonlyMap<string, ClusterConfig>;
  readonly #baseOutbound: ReadonlyMap<string, VirtualHostConfig>;
  readonly #tuning: TrafficCompileInput["tuning"];
  /** Exact-host rules (canonical host -> rule) and wildcard rules by suffix (`.example.com`). */
  readonly #exactRules = new Map<string, RuleForHost>();
  readonly #wildcardRules = new Map<string, RuleForHost>();
  /** Hosts that have a cluster of their own (`outbound|HOST`). */
  readonly #knownHosts = new Set<string>();

  constructor(input: TrafficCompileInput) {
    this.#base = input.clusters;
    this.#baseOutbound = input.outbound;
    this.#tuning = input.tuning;
    this.clusters = new Map(input.clusters);
    this.outbound = new Map(input.outbound);
    for (const c of input.clusters.values()) {
      if (c.name === `outbound|${c.service}`) this.#knownHosts.add(c.service);
    }
    this.#indexRules(input.destinationRules);
  }

  #indexRules(rules: readonly Resource[]): void {
    for (const r of [...rules].filter((x) => x.kind === "DestinationRule").sort(byResourceId)) {
      const spec = r.spec as DestinationRuleSpec;
      const host = canonicalHost(spec.host);
      const subsets = new Map<string, NonNullable<DestinationRuleSpec["subsets"]>[number]>();
      for (const s of spec.subsets ?? []) if (!subsets.has(s.name)) subsets.set(s.name, s);
      const rule = { id: resourceId(r), spec, subsets };
      if (host.startsWith("*.")) {
        const taken = this.#wildcardRules.get(host.slice(1));
        if (taken) {
          this.warnings.push(
            `DestinationRule ${taken.id} and ${rule.id} both apply to host "${host}"; ` +
              `${taken.id} is used`,
          );
        } else this.#wildcardRules.set(host.slice(1), rule);
        continue;
      }
      const taken = this.#exactRules.get(host);
      if (taken) {
        this.warnings.push(
          `DestinationRule ${taken.id} and ${rule.id} both apply to host "${host}"; ` +
            `${taken.id} is used`,
        );
      } else this.#exactRules.set(host, rule);
    }
  }

  /**
   * The DestinationRule for a canonical host: exact, else the longest wildcard suffix. The
   * host's own suffixes are looked up, longest first, so the cost is its number of labels,
   * not the number of wildcard rules.
   */
  ruleFor(host: string): RuleForHost | undefined {
    const exact = this.#exactRules.get(host);
    if (exact) return exact;
    if (this.#wildcardRules.size === 0) return undefined;
    for (let dot = host.indexOf("."); dot !== -1; dot = host.indexOf(".", dot + 1)) {
      const rule = this.#wildcardRules.get(host.slice(dot));
      if (rule) return rule;
    }
    return undefined;
  }

  #loadBalancer(policy: TrafficPolicy | undefined): LoadBalancerConfig {
    return loadBalancerConfigOf(policy?.loadBalancer, DEFAULT_LOAD_BALANCER);
  }

  #connectTimeoutMs(policy: TrafficPolicy | undefined, fallback: number): number {
    const text = policy?.connectionPool?.tcp?.connectTimeout;
    return text !== undefined ? durationMs(text) : fallback;
  }

  /** `outlierDetection` and `circuitBreaker` of a cluster, present only when configured. */
  #resilience(
    policy: TrafficPolicy | undefined,
  ): Pick<ClusterConfig, "outlierDetection" | "circuitBreaker"> {
    const outlierDetection = outlierDetectionConfigOf(policy?.outlierDetection);
    const circuitBreaker = circuitBreakerConfigOf(policy?.connectionPool);
    return {
      ...(outlierDetection ? { outlierDetection } : {}),
      ...(circuitBreaker ? { circuitBreaker } : {}),
    };
  }

  /** Applies each host's DestinationRule to its port clusters and builds its subsets. */
  applyDestinationRules(): void {
    for (const base of [...this.#base.values()].sort((a, b) => a.name < b.name ? -1 : 1)) {
      if (!base.name.startsWith("outbound|")) continue;
      const rule = this.ruleFor(base.service);
      if (!rule) continue;
      const policy = effectiveTrafficPolicy(rule.spec);
      this.clusters.set(base.name, {
        ...base,
        loadBalancer: this.#loadBalancer(policy),
        connectTimeoutMs: this.#connectTimeoutMs(policy, base.connectTimeoutMs),
        ...this.#resilience(policy),
      });
      // Subsets of the host's default port are built eagerly so `weft routes` lists them;
      // those of other ports when a destination names them.
      if (base.name === `outbound|${base.service}`) {
        for (const s of rule.spec.subsets ?? []) this.#subsetCluster(base.name, s.name);
      }
    }
  }

  /** `outbound|...|SUBSET` built from the port cluster `portCluster` (must exist). */
  #subsetCluster(portCluster: string, subset: string): string {
    const name = `${portCluster}|${subset}`;
    if (this.clusters.has(name)) return name;
    const base = this.#base.get(portCluster);
    if (!base) return name; // callers check first
    const rule = this.ruleFor(base.service);
    const definition = rule?.subsets.get(subset);
    if (!rule || !definition) {
      this.clusters.set(name, {
        name,
        service: base.service,
        protocol: base.protocol,
        endpoints: [],
        loadBalancer: DEFAULT_LOAD_BALANCER,
        connectTimeoutMs: base.connectTimeoutMs,
        subset,
        unresolved: rule
          ? `subset "${subset}" is not defined by DestinationRule ${rule.id}`
          : `no DestinationRule defines subsets for host "${base.service}"`,
      });
      return name;
    }
    const policy = effectiveTrafficPolicy(rule.spec, subset);
    this.clusters.set(name, {
      name,
      service: base.service,
      protocol: base.protocol,
      endpoints: base.endpoints.filter((e) => matchesSubset(e.labels, definition.labels)),
      loadBalancer: this.#loadBalancer(policy),
      connectTimeoutMs: this.#connectTimeoutMs(policy, base.connectTimeoutMs),
      subset,
      ...this.#resilience(policy),
    });
    return name;
  }

  #emptyCluster(name: string, service: string, reason: string, subset?: string): string {
    if (!this.clusters.has(name)) {
      this.clusters.set(name, {
        name,
        service,
        protocol: "http",
        endpoints: [],
        loadBalancer: DEFAULT_LOAD_BALANCER,
        connectTimeoutMs: this.#tuning.connectTimeoutMs,
        ...(subset !== undefined ? { subset } : {}),
        unresolved: reason,
      });
    }
    return name;
  }

  /** The cluster a destination resolves to; created (possibly empty) when missing. */
  destinationCluster(d: Destination): string {
    const lower = d.host.toLowerCase();
    const host = this.#knownHosts.has(lower) ? lower : canonicalHost(lower);
    const port = d.port?.number;
    const suffix = d.subset !== undefined ? `|${d.subset}` : "";
    if (!this.#knownHosts.has(host)) {
      const name = `outbound|${host}${port !== undefined ? `:${port}` : ""}${suffix}`;
      return this.#emptyCluster(name, host, `unknown host "${host}"`, d.subset);
    }
    let portCluster = `outbound|${host}`;
    if (port !== undefined && this.#base.has(`outbound|${host}:${port}`)) {
      portCluster = `outbound|${host}:${port}`;
    } else if (port !== undefined) {
      // Hosts from a ServiceEntry list their ports as `host:port` domains; a mesh service has
      // one port, so any port number means it.
      const domains = this.#baseOutbound.get(host)?.domains ?? [];
      const declared = domains.filter((x) => x.startsWith(`${host}:`));
      if (declared.length > 0 && !declared.includes(`${host}:${port}`)) {
        const name = `outbound|${host}:${port}${suffix}`;
        return this.#emptyCluster(
          name,
          host,
          `host "${host}" has no port ${port} (ports: ${
            declared.map((x) => x.slice(host.length + 1)).join(", ")
          })`,
          d.subset,
        );
      }
    }
    return d.subset !== undefined ? this.#subsetCluster(portCluster, d.subset) : portCluster;
  }

  #route(id: string, r: HttpRoute, index: number): RouteConfig {
    const weights = r.route ? destinationWeights(r.route) : [];
    const destinations: WeightedCluster[] = (r.route ?? []).map((d, i) => {
      const headers = headerPolicy(d.headers);
      return {
        cluster: this.destinationCluster(d.destination),
        weight: weights[i],
        ...(headers ? { headers } : {}),
      };
    });
    const retries = retryPolicy(r.retries);
    const fault = faultPolicy(r.fault);
    const headers = headerPolicy(r.headers);
    const cors = corsPolicy(r.corsPolicy);
    return {
      name: r.name ?? `http[${index}]`,
      match: { pathPrefix: "/" },
      destinations,
      timeoutMs: r.timeout !== undefined ? durationMs(r.timeout) : this.#tuning.routeTimeoutMs,
      virtualService: id,
      // Copied: the snapshot is frozen deeply and must not freeze the store's objects.
      ...(r.match?.length ? { matches: structuredClone(r.match) } : {}),
      ...(r.rewrite ? { rewrite: { ...r.rewrite } } : {}),
      ...(r.redirect
        ? {
          redirect: {
            ...r.redirect,
            redirectCode: r.redirect.redirectCode ?? DEFAULT_REDIRECT_CODE,
          },
        }
        : {}),
      ...(retries ? { retries } : {}),
      ...(fault ? { fault } : {}),
      ...(r.mirror
        ? {
          mirror: {
            cluster: this.destinationCluster(r.mirror),
            percentage: r.mirrorPercentage?.value ?? 100,
          },
        }
        : {}),
      ...(headers ? { headers } : {}),
      ...(cors ? { corsPolicy: cors } : {}),
    };
  }

  /** Replaces the virtual hosts of every VirtualService host with its routes. */
  applyVirtualServices(resources: readonly Resource[]): void {
    const owners = new Map<string, string>();
    for (const r of [...resources].filter((x) => x.kind === "VirtualService").sort(byResourceId)) {
      const id = resourceId(r);
      const spec = r.spec as VirtualServiceSpec;
      const keys: string[] = [];
      for (const [key, claim] of hostClaims(r)) {
        const owner = owners.get(key);
        if (owner !== undefined) {
          this.warnings.push(
            `VirtualService ${owner} and ${id} both route host "${key}"; ${owner} is used`,
          );
          continue;
        }
        owners.set(key, id);
        keys.push(key);
        // A request may also name the service by its long form.
        const written = claim.host.toLowerCase();
        if (written !== key && !this.outbound.has(written)) keys.push(written);
      }
      if (keys.length === 0) continue;
      const routes = (spec.http ?? []).map((h, i) => this.#route(id, h, i));
      for (const key of keys) {
        this.outbound.set(key, {
          name: key,
          domains: this.#baseOutbound.get(key)?.domains ?? [key],
          routes,
        });
      }
    }
  }
}

/**
 * Applies VirtualServices and DestinationRules to the clusters and virtual hosts compiled
 * from services and ServiceEntries. Resources are taken in `namespace/name` order, so every
 * node compiles the same table from the same store.
 */
export function compileTraffic(input: TrafficCompileInput): CompiledTraffic {
  const compiler = new TrafficCompiler(input);
  compiler.applyDestinationRules();
  compiler.applyVirtualServices(input.virtualServices);
  return { clusters: compiler.clusters, outbound: compiler.outbound, warnings: compiler.warnings };
}
