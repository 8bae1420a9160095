/**
 * @module
 * ServiceEntry -> outbound clusters and virtual hosts. Pure; `./mod.ts` merges its output,
 * letting services the mesh runs itself (local or from the catalog) keep precedence over an
 * entry naming the same host.
 *
 * Naming: the first port of a host gets cluster `outbound|HOST` (what the host's virtual host
 * routes to, and what a VirtualService destination `host: HOST` resolves to); further ports
 * get `outbound|HOST:PORT`.
 */
import type { Protocol } from "../config.ts";
import type { Resource } from "../resources/kind.ts";
import type { ServiceEntryProtocol, ServiceEntrySpec } from "../resources/service_entry.ts";
import type { ClusterConfig, EndpointConfig, VirtualHostConfig } from "../snapshot.ts";

/** Timeouts the compiled clusters and routes use (from the node's proxy tuning). */
export interface ServiceEntryCompileOptions {
  connectTimeoutMs: number;
  routeTimeoutMs: number;
}

/** What a set of ServiceEntries compiles to. */
export interface CompiledServiceEntries {
  clusters: ClusterConfig[];
  /** Keyed like `Snapshot.outbound`: lower-case host without port. */
  virtualHosts: Map<string, VirtualHostConfig>;
}

const protocolOf: Record<ServiceEntryProtocol, Protocol> = {
  HTTP: "http",
  HTTP2: "http2",
  GRPC: "grpc",
  TCP: "tcp",
  // Weft does not originate TLS: encrypted traffic is forwarded as opaque bytes.
  HTTPS: "tcp",
  TLS: "tcp",
};

/** Istio's implicit port when an entry lists none: plain HTTP on 80. */
const defaultPort = { number: 80, protocol: "HTTP" as const, name: "http" };

/**
 * Compiles ServiceEntries (other kinds are ignored). Resources are taken in key order, and
 * the first entry naming a host wins, so every node compiles the same table.
 */
export function compileServiceEntries(
  resources: readonly Resource[],
  options: ServiceEntryCompileOptions,
): CompiledServiceEntries {
  const clusters: ClusterConfig[] = [];
  const virtualHosts = new Map<string, VirtualHostConfig>();
  const entries = resources.filter((r) => r.kind === "ServiceEntry").sort((a, b) => {
    const ka = `${a.metadata.namespace}/${a.metadata.name}`;
    const kb = `${b.metadata.namespace}/${b.metadata.name}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  for (const r of entries) {
    const spec = r.spec as ServiceEntrySpec;
    const resolution = spec.resolution ?? "NONE";
    const ports = spec.ports && spec.ports.length > 0 ? spec.ports : [defaultPort];
    for (const rawHost of spec.hosts) {
      const host = rawHost.toLowerCase();
      // A wildcard host has no single address to send to; it needs the traffic to carry
      // its own destination, which the outbound listener does not see.
      if (host.startsWith("*") || virtualHosts.has(host)) continue;
      let first: string | undefined;
      const domains: string[] = [host];
      ports.forEach((port, i) => {
        const name = i === 0 ? `outbound|${host}` : `outbound|${host}:${port.number}`;
        first ??= name;
        domains.push(`${host}:${port.number}`);
        const target = "targetPort" in port && port.targetPort ? port.targetPort : port.number;
        const endpoints: EndpointConfig[] = [];
        const eps = spec.endpoints ?? [];
        if (
          (resolution === "STATIC" || resolution === "DNS" || resolution === "DNS_ROUND_ROBIN") &&
          eps.length > 0
        ) {
          for (const ep of eps) {
            const epPort = ep.ports?.[port.name] ?? target;
            endpoints.push({
              key: `${ep.address}:${epPort}`,
              hostname: ep.address,
              port: epPort,
              node: "",
              labels: { ...(ep.labels ?? {}) },
              weight: ep.weight && ep.weight > 0 ? ep.weight : 1,
              healthy: true,
              viaInbound: false,
            });
          }
        } else if (resolution !== "STATIC") {
          // DNS without endpoints resolves the host itself; NONE forwards to the host the
          // application asked for, which through an HTTP proxy is the same thing.
          endpoints.push({
            key: `${host}:${target}`,
            hostname: host,
            port: target,
            node: "",
            labels: {},
            weight: 1,
            healthy: true,
            viaInbound: false,
          });
        }
        endpoints.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        clusters.push({
          name,
          service: host,
          protocol: protocolOf[port.protocol],
          endpoints,
          loadBalancer: { kind: "round_robin" },
          connectTimeoutMs: options.connectTimeoutMs,
        });
      });
      virtualHosts.set(host, {
        name: host,
        domains,
        routes: [{
          name: "default",
          match: { pathPrefix: "/" },
          destinations: [{ cluster: first!, weight: 100 }],
          timeoutMs: options.routeTimeoutMs,
        }],
      });
    }
  }
  return { clusters, virtualHosts };
}
