/**
 * @module
 * The snapshot compiler's own part: local instances and the gossip catalog become clusters
 * and default routes, deterministically; the result is read-only and the inputs untouched.
 */
import { assert, assertEquals, assertThrows } from "../../tests/support/assert.ts";
import { parseNodeConfig } from "../config.ts";
import { FrozenMap } from "../frozen_map.ts";
import { parseResources } from "../resources/registry.ts";
import {
  type CatalogEndpoint,
  type ClusterConfig,
  emptySnapshot,
  type EndpointConfig,
} from "../snapshot.ts";
import { compileSnapshot, type SnapshotInput } from "./mod.ts";

const tuning = parseNodeConfig({}).proxy;

function input(over: Partial<SnapshotInput> = {}): SnapshotInput {
  return {
    nodeName: "a",
    localServices: [{ name: "web", port: 9080, host: "127.0.0.1", protocol: "http", labels: {} }],
    catalog: [],
    tuning,
    ...over,
  };
}

const remote: CatalogEndpoint = {
  service: "web",
  node: "b",
  nodeId: "id-b",
  hostname: "10.0.0.2",
  port: 15006,
  protocol: "http",
  labels: { version: "v2" },
  healthy: true,
};

Deno.test("local instances are direct, remote ones go through the owner's inbound listener", () => {
  const snap = compileSnapshot(input({ catalog: [remote, { ...remote, node: "a" }] }), 3);
  assertEquals(snap.version, 3);
  const eps = snap.clusters.get("outbound|web")!.endpoints;
  assertEquals(eps.map((e) => [e.key, e.node, e.viaInbound]), [
    ["10.0.0.2:15006", "b", true],
    ["127.0.0.1:9080", "a", false],
  ]);
  assertEquals(snap.inbound.get("web")!.endpoints.map((e) => e.key), ["127.0.0.1:9080"]);
  assert(Object.isFrozen(snap.clusters.get("outbound|web")));
});

Deno.test("a local service failing its health check is an unhealthy endpoint", () => {
  const snap = compileSnapshot(
    input({ catalog: [remote], unhealthyLocalServices: new Set(["web"]) }),
    1,
  );
  const byNode = Object.fromEntries(
    snap.clusters.get("outbound|web")!.endpoints.map((e) => [e.node, e.healthy]),
  );
  assertEquals(byNode, { a: false, b: true });
});

Deno.test("compiling is deterministic: same input, same routing table", () => {
  const a = compileSnapshot(input({ catalog: [remote] }), 1);
  const b = compileSnapshot(input({ catalog: [remote] }), 1);
  assertEquals([...a.clusters.keys()], [...b.clusters.keys()]);
  assertEquals([...a.outbound.keys()], [...b.outbound.keys()]);
  assertEquals(a.clusters.get("outbound|web"), b.clusters.get("outbound|web"));
});

/** Every object reachable from `root` (through properties, array items and map entries). */
function* reachable(root: unknown, seen = new Set<object>()): Generator<object> {
  if (!root || typeof root !== "object" || seen.has(root)) return;
  seen.add(root);
  yield root;
  const children = root instanceof Map
    ? [...root.keys(), ...root.values()]
    : root instanceof Set
    ? [...root]
    : Object.values(root);
  for (const child of children) yield* reachable(child, seen);
}

/** Input with every part the compiler reads: services, catalog, all policy kinds, upstreams. */
function richInput(): SnapshotInput {
  const policy = parseResources(
    JSON.stringify([
      {
        apiVersion: "networking.istio.io/v1",
        kind: "ServiceEntry",
        metadata: { name: "httpbin" },
        spec: {
          hosts: ["httpbin.org"],
          ports: [{ number: 80, name: "http", protocol: "HTTP" }],
          resolution: "STATIC",
          endpoints: [{ address: "10.1.1.1", labels: { zone: "a" } }],
        },
      },
      {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: "web" },
        spec: {
          hosts: ["web"],
          http: [{
            match: [{ uri: { prefix: "/v2" }, headers: { user: { exact: "x" } } }],
            route: [{ destination: { host: "web", subset: "v2" }, headers: { request: {} } }],
            retries: { attempts: 2, retryOn: "5xx" },
            corsPolicy: { allowOrigins: [{ exact: "https://a" }] },
            rewrite: { uri: "/" },
            mirror: { host: "httpbin.org" },
          }, { redirect: { uri: "/moved" } }],
        },
      },
      {
        apiVersion: "networking.istio.io/v1",
        kind: "DestinationRule",
        metadata: { name: "web" },
        spec: {
          host: "web",
          trafficPolicy: {
            loadBalancer: { consistentHash: { httpHeaderName: "user" } },
            outlierDetection: { consecutive5xxErrors: 3 },
            connectionPool: { tcp: { maxConnections: 10 } },
          },
          subsets: [{ name: "v2", labels: { version: "v2" } }],
        },
      },
    ]),
    "json",
  );
  return input({
    catalog: [remote],
    tuning: { ...tuning },
    serviceEntries: policy.filter((r) => r.kind === "ServiceEntry"),
    virtualServices: policy.filter((r) => r.kind === "VirtualService"),
    destinationRules: policy.filter((r) => r.kind === "DestinationRule"),
    upstreams: [{ service: "web", localHost: "127.0.0.1", localPort: 7000 }],
    unhealthyLocalServices: new Set(["web"]),
  });
}

Deno.test("a compiled snapshot cannot be changed: its maps refuse writes, its objects are frozen", () => {
  const snap = compileSnapshot(richInput(), 2);
  for (const map of [snap.outbound, snap.inbound, snap.clusters]) {
    assert(map instanceof FrozenMap, "maps are read-only at run time, not only in type");
  }
  const clusters = snap.clusters as Map<string, ClusterConfig>;
  const size = clusters.size;
  assertThrows(() => clusters.set("outbound|x", clusters.get("outbound|web")!), TypeError);
  assertThrows(() => clusters.delete("outbound|web"), TypeError);
  assertThrows(() => (snap.outbound as Map<string, unknown>).clear(), TypeError);
  assertEquals(clusters.size, size);
  // Modules run in strict mode: assigning to a frozen object throws instead of being ignored.
  const writable = snap as { version: number };
  assertThrows(() => writable.version = 3, TypeError);
  const endpoints = snap.clusters.get("outbound|web|v2")!.endpoints as EndpointConfig[];
  assertThrows(() => endpoints.push(endpoints[0]), TypeError);
  const tuned = snap.tuning as { connectTimeoutMs: number };
  assertThrows(() => tuned.connectTimeoutMs = 1, TypeError);
  const unfrozen = [...reachable(snap)].filter((o) => !Object.isFrozen(o));
  assertEquals(unfrozen, []);
  const plainMaps = [...reachable(snap)].filter((o) =>
    (o instanceof Map && !(o instanceof FrozenMap)) || o instanceof Set
  );
  assertEquals(plainMaps, []);
});

Deno.test("compiling leaves its inputs as they were: nothing frozen, nothing changed", () => {
  const given = richInput();
  const before = structuredClone(given);
  compileSnapshot(given, 1);
  compileSnapshot(given, 2); // a second compile sees the same input
  assertEquals(given, before);
  const frozen = [...reachable(given)].filter((o) => Object.isFrozen(o));
  assertEquals(frozen, []);
});

Deno.test("the empty snapshot is read-only too, and leaves the caller's tuning unfrozen", () => {
  const own = { ...tuning };
  const snap = emptySnapshot(own);
  assert(snap.outbound instanceof FrozenMap && snap.clusters instanceof FrozenMap);
  assert(Object.isFrozen(snap) && Object.isFrozen(snap.tuning), "frozen");
  assert(!Object.isFrozen(own), "caller's tuning unfrozen");
  own.connectTimeoutMs = 1;
  assertEquals(snap.tuning.connectTimeoutMs, tuning.connectTimeoutMs);
});
