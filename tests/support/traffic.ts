/**
 * @module
 * Shared setup of the traffic-management tests: upstreams that answer with their own name,
 * catalog entries pointing at them (so subsets select them by label), snapshots compiled from
 * Istio resources through `parseResources` + `compileSnapshot` exactly as an agent does, and a
 * real in-process {@linkcode Proxy} on ephemeral loopback ports.
 */
import {
  type CatalogEndpoint,
  type Clock,
  compileSnapshot,
  type LocalService,
  parseNodeConfig,
  Registry,
  silentLogger,
  type Snapshot,
} from "../../lib/mod.ts";
import type { Resource } from "../../lib/resources/kind.ts";
import { parseResources } from "../../lib/resources/registry.ts";
import { type AccessLogEntry, Proxy } from "../../proxy/mod.ts";
import { startUpstream, type TestResponse, type TestUpstream } from "./proxy.ts";

const loopback = { hostname: "127.0.0.1", port: 0 };

/** A named upstream; its responses' body is its name unless a handler says otherwise. */
export interface Backend extends TestUpstream {
  name: string;
  labels: Record<string, string>;
}

/** Starts an upstream answering `name` (or whatever `handler` returns). */
export async function backend(
  name: string,
  labels: Record<string, string> = {},
  handler?: (req: Request) => Response | Promise<Response>,
): Promise<Backend> {
  const up = await startUpstream(handler ?? (() => new Response(name)));
  return { ...up, name, labels };
}

/** A catalog entry for `service` served by `b` on its own node. */
export function catalogEntry(service: string, b: Backend): CatalogEndpoint {
  return {
    service,
    node: `node-${b.name}`,
    nodeId: `id-${b.name}`,
    hostname: b.addr.hostname,
    port: b.addr.port,
    protocol: "http",
    labels: b.labels,
    healthy: true,
  };
}

/** Tuning of the test snapshots (defaults of the node config). */
export const tuning = parseNodeConfig({}).proxy;

/** Compiles a snapshot from YAML resources and catalog entries, as an agent does. */
export function snapshotOf(
  yaml: string,
  catalog: CatalogEndpoint[],
  options: { version?: number; localServices?: LocalService[] } = {},
): Snapshot {
  const resources: Resource[] = yaml.trim() === "" ? [] : parseResources(yaml);
  return compileSnapshot({
    nodeName: "local",
    localServices: options.localServices ?? [],
    catalog,
    tuning,
    serviceEntries: resources.filter((r) => r.kind === "ServiceEntry"),
    virtualServices: resources.filter((r) => r.kind === "VirtualService"),
    destinationRules: resources.filter((r) => r.kind === "DestinationRule"),
  }, options.version ?? 1);
}

/** A running proxy and what a test needs from it. */
export interface RunningProxy {
  proxy: Proxy;
  outbound: { hostname: string; port: number };
  log: AccessLogEntry[];
  metrics: Registry;
  stop(): Promise<void>;
}

/**
 * Starts a proxy on ephemeral loopback ports. With `clock` (a FakeClock), its timeouts,
 * retry backoffs and fault delays run on that clock, so a test moves time instead of waiting.
 */
export async function runProxy(
  snapshot: Snapshot,
  options: { clock?: Clock } = {},
): Promise<RunningProxy> {
  const log: AccessLogEntry[] = [];
  const metrics = new Registry();
  const proxy = new Proxy({
    snapshot,
    logger: silentLogger,
    metrics,
    accessLog: (e) => log.push(e),
    clock: options.clock,
  });
  const addrs = await proxy.start({ outbound: loopback, inbound: loopback });
  return { proxy, outbound: addrs.outbound, log, metrics, stop: () => proxy.stop(0) };
}

/** Stops the proxy and every backend, whatever happened. */
export async function stopAll(p: RunningProxy | undefined, backends: Backend[]): Promise<void> {
  await p?.stop();
  await Promise.all(backends.map((b) => b.close()));
}

/** Request head text for `GET path` to `host` with extra header lines. */
export function get(
  host: string,
  path = "/",
  headers: Record<string, string> = {},
  method = "GET",
) {
  let head = `${method} ${path} HTTP/1.1\nHost: ${host}`;
  for (const [k, v] of Object.entries(headers)) head += `\n${k}: ${v}`;
  return head;
}

/** Counts of response bodies. */
export function tally(responses: TestResponse[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of responses) counts.set(r.body, (counts.get(r.body) ?? 0) + 1);
  return counts;
}

export { CHI_SQUARE_P00001, chiSquare } from "./balancer.ts";
