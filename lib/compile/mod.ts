/**
 * @module
 * The compiler: node config + gossip catalog + policy store -> the proxy's read-only
 * {@linkcode Snapshot}. One pure function, {@linkcode compileSnapshot}; this module compiles
 * the mesh's own services (local instances and the catalog) and hands the policy to its parts:
 *
 * - `./service_entries.ts`: ServiceEntry -> outbound hosts and their clusters;
 * - `./routes.ts`: VirtualService (+ DestinationRule) -> routes, subsets, balancers;
 * - `./destination_rules.ts`: a DestinationRule's traffic policy -> cluster settings;
 * - `./freeze.ts`: the result as a deeply frozen value with read-only maps.
 *
 * It imports no proxy code and does not change its inputs. The proxy needs only the
 * snapshot's types and lookups (`lib/snapshot.ts`); no proxy module calls the compiler.
 */
import type { LocalService, Protocol, ProxyTuning, Upstream } from "../config.ts";
import type { Resource } from "../resources/kind.ts";
import type {
  CatalogEndpoint,
  ClusterConfig,
  EndpointConfig,
  Snapshot,
  TcpUpstreamConfig,
  VirtualHostConfig,
} from "../snapshot.ts";
import { freezeSnapshot } from "./freeze.ts";
import { compileTraffic } from "./routes.ts";
import { compileServiceEntries } from "./service_entries.ts";

/** Everything a snapshot is compiled from. */
export interface SnapshotInput {
  /** This node's name; its own catalog entries are replaced by the direct local services. */
  nodeName: string;
  localServices: readonly LocalService[];
  catalog: readonly CatalogEndpoint[];
  tuning: ProxyTuning;
  /** Live resources from the policy store; ServiceEntries add outbound hosts. */
  serviceEntries?: readonly Resource[];
  /** VirtualServices from the store: routes for their hosts (see `./routes.ts`). */
  virtualServices?: readonly Resource[];
  /** DestinationRules from the store: subsets and load balancing of their hosts. */
  destinationRules?: readonly Resource[];
  /** Mesh services offered as local TCP ports (config `upstreams`). */
  upstreams?: readonly Upstream[];
  /**
   * Local services whose active health check fails: their outbound endpoint is unhealthy so
   * this node's balancers skip it; the inbound one stays usable for requests already routed.
   */
  unhealthyLocalServices?: ReadonlySet<string>;
}

/**
 * Compiles a snapshot. Pure: the same input and version give the same snapshot. Endpoints are
 * sorted by key so that a recompile with unchanged membership balances identically.
 */
export function compileSnapshot(input: SnapshotInput, version: number): Snapshot {
  // Copied: the snapshot is frozen, and the caller's tuning object is not the compiler's.
  const tuning = { ...input.tuning };
  const clusters = new Map<string, ClusterConfig>();
  const inbound = new Map<string, ClusterConfig>();
  const outbound = new Map<string, VirtualHostConfig>();
  const byService = new Map<string, { protocol: Protocol; endpoints: EndpointConfig[] }>();
  const tcp = input.upstreams?.length
    ? {
      tcpUpstreams: input.upstreams.map((u): TcpUpstreamConfig => ({
        service: u.service,
        cluster: `outbound|${u.service}`,
        localHost: u.localHost,
        localPort: u.localPort,
      })),
    }
    : {};

  for (const s of input.localServices) {
    const ep: EndpointConfig = {
      key: `${s.host}:${s.port}`,
      hostname: s.host,
      port: s.port,
      node: input.nodeName,
      labels: { ...s.labels },
      weight: 1,
      healthy: true,
      viaInbound: false,
    };
    const name = `inbound|${s.name}`;
    const cluster: ClusterConfig = {
      name,
      service: s.name,
      protocol: s.protocol,
      endpoints: [ep],
      loadBalancer: { kind: "round_robin" },
      connectTimeoutMs: tuning.connectTimeoutMs,
    };
    clusters.set(name, cluster);
    inbound.set(s.name, cluster);
    const healthy = !input.unhealthyLocalServices?.has(s.name);
    byService.set(s.name, { protocol: s.protocol, endpoints: [healthy ? ep : { ...ep, healthy }] });
  }

  for (const c of input.catalog) {
    if (c.node === input.nodeName) continue; // local instances are reached directly
    let entry = byService.get(c.service);
    if (!entry) {
      entry = { protocol: c.protocol, endpoints: [] };
      byService.set(c.service, entry);
    }
    entry.endpoints.push({
      key: `${c.hostname}:${c.port}`,
      hostname: c.hostname,
      port: c.port,
      node: c.node,
      labels: { ...c.labels },
      weight: 1,
      healthy: c.healthy,
      viaInbound: true,
    });
  }

  for (
    const [service, { protocol, endpoints }] of [...byService].sort((a, b) => a[0] < b[0] ? -1 : 1)
  ) {
    endpoints.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const name = `outbound|${service}`;
    clusters.set(name, {
      name,
      service,
      protocol,
      endpoints,
      loadBalancer: { kind: "round_robin" },
      connectTimeoutMs: tuning.connectTimeoutMs,
    });
    outbound.set(service, {
      name: service,
      domains: [service],
      routes: [{
        name: "default",
        match: { pathPrefix: "/" },
        destinations: [{ cluster: name, weight: 100 }],
        timeoutMs: tuning.routeTimeoutMs,
      }],
    });
  }

  if (input.serviceEntries?.length) {
    // Hosts the mesh runs itself keep precedence over a ServiceEntry naming the same host.
    // Clusters grouped by host once: scanning every cluster for each host was quadratic
    // (10k hosts took 1.5 s, 200k would take minutes).
    const compiled = compileServiceEntries(input.serviceEntries, tuning);
    const byHost = new Map<string, ClusterConfig[]>();
    for (const c of compiled.clusters) {
      const list = byHost.get(c.service);
      if (list) list.push(c);
      else byHost.set(c.service, [c]);
    }
    for (const [host, vh] of compiled.virtualHosts) {
      if (outbound.has(host)) continue;
      outbound.set(host, vh);
      for (const c of byHost.get(host) ?? []) clusters.set(c.name, c);
    }
  }

  if (input.virtualServices?.length || input.destinationRules?.length) {
    const traffic = compileTraffic({
      virtualServices: input.virtualServices ?? [],
      destinationRules: input.destinationRules ?? [],
      clusters,
      outbound,
      tuning,
    });
    return freezeSnapshot({
      version,
      outbound: traffic.outbound,
      inbound,
      clusters: traffic.clusters,
      tuning,
      ...(traffic.warnings.length > 0 ? { warnings: traffic.warnings } : {}),
      ...tcp,
    });
  }

  return freezeSnapshot({ version, outbound, inbound, clusters, tuning, ...tcp });
}
