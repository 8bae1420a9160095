/**
 * @module
 * VirtualService and DestinationRule compilation: routes replace a host's default route,
 * subsets filter endpoints by label, DestinationRules choose balancers, unknown destinations
 * compile to empty clusters, and conflicting VirtualServices resolve the same way everywhere.
 */
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { parseNodeConfig } from "../config.ts";
import { canonicalHost } from "../resources/hosts.ts";
import type { Resource } from "../resources/kind.ts";
import { parseResources } from "../resources/registry.ts";
import { describeRouteDestinations, describeRouteMatch } from "../route_text.ts";
import { type CatalogEndpoint, findVirtualHost, type Snapshot } from "../snapshot.ts";
import { compileSnapshot, type SnapshotInput } from "./mod.ts";

const tuning = parseNodeConfig({}).proxy;

function endpoint(node: string, version: string, port = 15006): CatalogEndpoint {
  return {
    service: "reviews",
    node,
    nodeId: `id-${node}`,
    hostname: `10.0.0.${node.slice(-1)}`,
    port,
    protocol: "http",
    labels: { version },
    healthy: true,
  };
}

/** reviews on three nodes: v1, v1, v2. */
const reviewsCatalog = [endpoint("node1", "v1"), endpoint("node2", "v1"), endpoint("node3", "v2")];

/** Validated resources from JSON documents, as `weft apply` would store them. */
function resources(...docs: object[]): Resource[] {
  return parseResources(JSON.stringify(docs), "json");
}

function vs(name: string, spec: object): object {
  return { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name }, spec };
}

function dr(name: string, spec: object): object {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "DestinationRule",
    metadata: { name },
    spec,
  };
}

function se(name: string, spec: object): object {
  return { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name }, spec };
}

function compile(
  policy: Resource[],
  extra: Partial<SnapshotInput> = {},
): Snapshot {
  return compileSnapshot({
    nodeName: "local",
    localServices: [],
    catalog: reviewsCatalog,
    tuning,
    serviceEntries: policy.filter((r) => r.kind === "ServiceEntry"),
    virtualServices: policy.filter((r) => r.kind === "VirtualService"),
    destinationRules: policy.filter((r) => r.kind === "DestinationRule"),
    ...extra,
  }, 7);
}

const reviewsSubsets = dr("reviews", {
  host: "reviews",
  subsets: [
    { name: "v1", labels: { version: "v1" } },
    { name: "v2", labels: { version: "v2" } },
  ],
});

const canary = vs("reviews", {
  hosts: ["reviews"],
  http: [{
    name: "canary",
    route: [
      { destination: { host: "reviews", subset: "v1" }, weight: 90 },
      { destination: { host: "reviews", subset: "v2" }, weight: 10 },
    ],
  }],
});

Deno.test("a VirtualService replaces the host's default route with weighted subset routes", () => {
  const snap = compile(resources(canary, reviewsSubsets));
  const vh = snap.outbound.get("reviews")!;
  assertEquals(vh.routes.length, 1);
  const route = vh.routes[0];
  assertEquals(route.name, "canary");
  assertEquals(route.virtualService, "default/reviews");
  assertEquals(route.match, { pathPrefix: "/" });
  assertEquals(route.matches, undefined);
  assertEquals(route.destinations, [
    { cluster: "outbound|reviews|v1", weight: 90 },
    { cluster: "outbound|reviews|v2", weight: 10 },
  ]);
  assertEquals(route.timeoutMs, tuning.routeTimeoutMs);
  assert(Object.isFrozen(route.destinations), "snapshot is frozen");
});

Deno.test("subset clusters hold only the endpoints carrying the subset's labels", () => {
  const snap = compile(resources(canary, reviewsSubsets));
  const v1 = snap.clusters.get("outbound|reviews|v1")!;
  const v2 = snap.clusters.get("outbound|reviews|v2")!;
  assertEquals(v1.endpoints.map((e) => e.node), ["node1", "node2"]);
  assertEquals(v2.endpoints.map((e) => e.node), ["node3"]);
  assertEquals(v1.subset, "v1");
  assertEquals(v1.service, "reviews");
  assertEquals(v1.unresolved, undefined);
  // The whole-host cluster keeps every endpoint.
  assertEquals(snap.clusters.get("outbound|reviews")!.endpoints.length, 3);
});

Deno.test("DestinationRule load balancers apply to the host and subsets, subsets override", () => {
  const rule = dr("reviews", {
    host: "reviews.default.svc.cluster.local",
    trafficPolicy: {
      loadBalancer: { consistentHash: { httpHeaderName: "X-User", maglev: { tableSize: 251 } } },
      connectionPool: { tcp: { connectTimeout: "250ms" } },
    },
    subsets: [
      { name: "v1", labels: { version: "v1" } },
      {
        name: "v2",
        labels: { version: "v2" },
        trafficPolicy: { loadBalancer: { simple: "PEAK_EWMA" } },
      },
      {
        name: "v3",
        labels: { version: "v3" },
        trafficPolicy: { loadBalancer: { simple: "LEAST_REQUEST" } },
      },
    ],
  });
  const snap = compile(resources(canary, rule));
  const host = snap.clusters.get("outbound|reviews")!;
  assertEquals(host.loadBalancer, {
    kind: "maglev",
    tableSize: 251,
    hashPolicy: { kind: "header", name: "x-user" },
  });
  assertEquals(host.connectTimeoutMs, 250);
  assertEquals(snap.clusters.get("outbound|reviews|v1")!.loadBalancer.kind, "maglev");
  assertEquals(snap.clusters.get("outbound|reviews|v2")!.loadBalancer, {
    kind: "peak_ewma",
    decayMs: 10_000,
  });
  // Built eagerly although no route uses it; no endpoint has version v3.
  const v3 = snap.clusters.get("outbound|reviews|v3")!;
  assertEquals(v3.loadBalancer, { kind: "least_request", choiceCount: 2 });
  assertEquals(v3.endpoints, []);
  assertEquals(v3.connectTimeoutMs, 250);
});

Deno.test("hosts without a DestinationRule keep round robin", () => {
  const snap = compile(resources(canary));
  assertEquals(snap.clusters.get("outbound|reviews")!.loadBalancer, { kind: "round_robin" });
  assertEquals(snap.warnings, undefined);
});

Deno.test("an unknown subset, host or port compiles to an empty cluster with a reason", () => {
  const service = vs("reviews", {
    hosts: ["reviews"],
    http: [
      {
        match: [{ uri: { prefix: "/a" } }],
        route: [{ destination: { host: "reviews", subset: "v9" } }],
      },
      { match: [{ uri: { prefix: "/b" } }], route: [{ destination: { host: "ghost" } }] },
      {
        match: [{ uri: { prefix: "/c" } }],
        route: [{ destination: { host: "api.example.com", port: { number: 9999 } } }],
      },
      { route: [{ destination: { host: "api.example.com", port: { number: 8443 } } }] },
    ],
  });
  const entry = se("api", {
    hosts: ["api.example.com"],
    ports: [{ number: 80, name: "http", protocol: "HTTP" }, {
      number: 8443,
      name: "alt",
      protocol: "HTTP",
    }],
    resolution: "DNS",
  });
  const snap = compile(resources(service, reviewsSubsets, entry));
  const routes = snap.outbound.get("reviews")!.routes;
  assertEquals(routes.map((r) => r.destinations[0].cluster), [
    "outbound|reviews|v9",
    "outbound|ghost",
    "outbound|api.example.com:9999",
    "outbound|api.example.com:8443",
  ]);
  const v9 = snap.clusters.get("outbound|reviews|v9")!;
  assertEquals(v9.endpoints, []);
  assertEquals(v9.unresolved, 'subset "v9" is not defined by DestinationRule default/reviews');
  assertEquals(snap.clusters.get("outbound|ghost")!.unresolved, 'unknown host "ghost"');
  assertEquals(
    snap.clusters.get("outbound|api.example.com:9999")!.unresolved,
    'host "api.example.com" has no port 9999 (ports: 80, 8443)',
  );
  assertEquals(snap.clusters.get("outbound|api.example.com:8443")!.unresolved, undefined);
  // `weft routes` shows why.
  assertEquals(
    describeRouteDestinations(routes[0], snap.clusters),
    'outbound|reviews|v9 100% (unresolved: subset "v9" is not defined by DestinationRule ' +
      "default/reviews)",
  );
  assertEquals(describeRouteMatch(routes[0]), "uri prefix /a");
  // A subset without any DestinationRule.
  const bare = compile(resources(canary));
  assertEquals(
    bare.clusters.get("outbound|reviews|v1")!.unresolved,
    'no DestinationRule defines subsets for host "reviews"',
  );
});

Deno.test("a '*' VirtualService is the fallback for hosts without a virtual host", () => {
  const catchAll = vs("catch-all", {
    hosts: ["*"],
    http: [{ route: [{ destination: { host: "reviews" } }] }],
  });
  const wildcard = vs("example", {
    hosts: ["*.example.com"],
    http: [{ route: [{ destination: { host: "reviews", subset: "v2" } }] }],
  });
  const snap = compile(resources(catchAll, wildcard, reviewsSubsets));
  assertEquals(snap.outbound.get("*")!.routes[0].destinations[0].cluster, "outbound|reviews");
  // A known host keeps its own default route.
  assertEquals(findVirtualHost(snap.outbound, "reviews")!.routes[0].name, "default");
  assertEquals(findVirtualHost(snap.outbound, "unknown")!.name, "*");
  assertEquals(findVirtualHost(snap.outbound, "a.b.example.com")!.name, "*.example.com");
  assertEquals(findVirtualHost(snap.outbound, "example.com")!.name, "*");
  assertEquals(findVirtualHost(new Map(), "x"), undefined);
});

Deno.test("long service names mean the short one, and both route", () => {
  const service = vs("reviews", {
    hosts: ["reviews.default.svc.cluster.local"],
    http: [{
      route: [{ destination: { host: "reviews.default.svc.cluster.local", subset: "v2" } }],
    }],
  });
  const snap = compile(resources(service, reviewsSubsets));
  assertEquals(
    snap.outbound.get("reviews")!.routes[0].destinations[0].cluster,
    "outbound|reviews|v2",
  );
  assert(snap.outbound.get("reviews.default.svc.cluster.local") !== undefined, "long form routes");
  assertEquals(canonicalHost("Reviews.prod.svc"), "reviews");
  assertEquals(canonicalHost("api.example.com"), "api.example.com");
  assertEquals(canonicalHost("*"), "*");
});

Deno.test("route options are parsed into numbers and normalised", () => {
  const service = vs("reviews", {
    hosts: ["reviews"],
    http: [
      {
        name: "everything",
        match: [{ uri: { prefix: "/api" }, method: { exact: "GET" } }, {
          headers: { "x-user": { exact: "jason" } },
        }],
        route: [
          {
            destination: { host: "reviews", subset: "v1" },
            weight: 70,
            headers: { request: { set: { "X-Canary": "no" } } },
          },
          { destination: { host: "reviews", subset: "v2" }, weight: 30 },
        ],
        rewrite: { uri: "/v2/api", authority: "reviews.internal" },
        timeout: "1.5s",
        retries: { attempts: 3, perTryTimeout: "200ms", retryOn: "5xx,reset,503,429,unavailable" },
        fault: {
          delay: { fixedDelay: "5s", percentage: { value: 0.1 } },
          abort: { httpStatus: 503 },
        },
        mirror: { host: "reviews", subset: "v2" },
        corsPolicy: {
          allowOrigins: [{ exact: "https://example.com" }],
          allowMethods: ["GET", "POST"],
          allowHeaders: ["x-token"],
          maxAge: "24h",
        },
        headers: {
          request: { add: { "X-B3": "1" }, remove: ["X-Debug"] },
          response: { set: { "cache-control": "no-store" } },
        },
      },
      { name: "moved", redirect: { uri: "/new", authority: "elsewhere" } },
      {
        name: "no-retries",
        route: [{ destination: { host: "reviews" } }],
        retries: { attempts: 0 },
        timeout: "0s",
      },
    ],
  });
  const snap = compile(resources(service, reviewsSubsets));
  const [full, moved, plain] = snap.outbound.get("reviews")!.routes;
  assertEquals(full.matches?.length, 2);
  assertEquals(full.destinations[0].headers, {
    request: { set: [{ name: "x-canary", value: "no" }], add: [], remove: [] },
  });
  assertEquals(full.destinations[1].headers, undefined);
  assertEquals(full.rewrite, { uri: "/v2/api", authority: "reviews.internal" });
  assertEquals(full.timeoutMs, 1500);
  assertEquals(full.retries, {
    attempts: 3,
    perTryTimeoutMs: 200,
    retryOn: ["5xx", "reset", "retriable-status-codes"],
    retriableStatusCodes: [429, 503],
  });
  assertEquals(full.fault, {
    delay: { fixedDelayMs: 5000, percentage: 0.1 },
    abort: { httpStatus: 503, percentage: 0 },
  });
  assertEquals(full.mirror, { cluster: "outbound|reviews|v2", percentage: 100 });
  assertEquals(full.corsPolicy, {
    allowOrigins: [{ exact: "https://example.com" }],
    allowMethods: "GET,POST",
    allowHeaders: "x-token",
    exposeHeaders: "",
    maxAgeSeconds: 86400,
    allowCredentials: false,
  });
  assertEquals(full.headers, {
    request: { set: [], add: [{ name: "x-b3", value: "1" }], remove: ["x-debug"] },
    response: { set: [{ name: "cache-control", value: "no-store" }], add: [], remove: [] },
  });
  assertEquals(
    describeRouteMatch(full),
    "uri prefix /api, method=GET | header x-user=jason",
  );
  assertEquals(moved.destinations, []);
  assertEquals(moved.redirect, { uri: "/new", authority: "elsewhere", redirectCode: 301 });
  assertEquals(describeRouteDestinations(moved, snap.clusters), "redirect 301 elsewhere/new");
  assertEquals(plain.retries, undefined);
  assertEquals(plain.timeoutMs, 0);
  assertEquals(plain.fault, undefined);
});

Deno.test("conflicts that still reach the compiler resolve to the lowest name, with a warning", () => {
  const a = vs("a", {
    hosts: ["reviews"],
    http: [{ name: "from-a", route: [{ destination: { host: "reviews" } }] }],
  });
  const b = vs("b", {
    hosts: ["reviews"],
    http: [{ name: "from-b", route: [{ destination: { host: "reviews" } }] }],
  });
  for (const order of [[b, a], [a, b]]) {
    const snap = compile(resources(...order));
    assertEquals(snap.outbound.get("reviews")!.routes[0].name, "from-a");
    assertEquals(snap.warnings, [
      'VirtualService default/a and default/b both route host "reviews"; default/a is used',
    ]);
  }
});

Deno.test("a VirtualService routes to ServiceEntry hosts with their endpoints and labels", () => {
  const entry = se("payments", {
    hosts: ["payments.internal"],
    ports: [{ number: 80, name: "http", protocol: "HTTP" }],
    resolution: "STATIC",
    endpoints: [
      { address: "10.1.0.1", ports: { http: 8080 }, labels: { version: "v1" } },
      { address: "10.1.0.2", ports: { http: 8080 }, labels: { version: "v2" }, weight: 3 },
    ],
  });
  const rule = dr("payments", {
    host: "payments.internal",
    trafficPolicy: { loadBalancer: { simple: "RANDOM" } },
    subsets: [{ name: "v2", labels: { version: "v2" } }],
  });
  const service = vs("payments", {
    hosts: ["payments.internal"],
    http: [
      {
        match: [{ headers: { "x-beta": {} } }],
        route: [{ destination: { host: "payments.internal", subset: "v2" } }],
      },
      { route: [{ destination: { host: "payments.internal", port: { number: 80 } } }] },
    ],
  });
  const snap = compile(resources(entry, rule, service));
  const routes = snap.outbound.get("payments.internal")!.routes;
  assertEquals(routes.map((r) => r.destinations[0].cluster), [
    "outbound|payments.internal|v2",
    "outbound|payments.internal",
  ]);
  const v2 = snap.clusters.get("outbound|payments.internal|v2")!;
  assertEquals(v2.endpoints.map((e) => `${e.key} w${e.weight}`), ["10.1.0.2:8080 w3"]);
  assertEquals(v2.loadBalancer, { kind: "random" });
  assertEquals(snap.clusters.get("outbound|payments.internal")!.loadBalancer, { kind: "random" });
  assertEquals(snap.outbound.get("payments.internal")!.domains, [
    "payments.internal",
    "payments.internal:80",
  ]);
});

Deno.test("the seed's route-by-header example compiles to the expected table", () => {
  const services = ["orderservice", "stockservice", "paymentservice"];
  const policy = resources(
    ...services.map((s, i) =>
      se(s, {
        hosts: [s],
        ports: [{ number: 80, name: "http", protocol: "HTTP" }],
        resolution: "STATIC",
        endpoints: [{ address: "127.0.0.1", ports: { http: 8081 + i } }],
      })
    ),
    vs("route-by-header", {
      hosts: ["*"],
      http: services.map((s) => ({
        name: s,
        match: [{ headers: { service: { exact: s } } }],
        route: [{ destination: { host: s } }],
      })),
    }),
  );
  const snap = compile(policy, { catalog: [] });
  const table = [...snap.outbound].map(([host, vh]) => ({
    host,
    routes: vh.routes.map((
      r,
    ) => [r.name, describeRouteMatch(r), describeRouteDestinations(r, snap.clusters)]),
  }));
  assertEquals(table, [
    { host: "orderservice", routes: [["default", "prefix /", "outbound|orderservice 100%"]] },
    // ServiceEntries compile in namespace/name order.
    { host: "paymentservice", routes: [["default", "prefix /", "outbound|paymentservice 100%"]] },
    { host: "stockservice", routes: [["default", "prefix /", "outbound|stockservice 100%"]] },
    {
      host: "*",
      routes: [
        ["orderservice", "header service=orderservice", "outbound|orderservice 100%"],
        ["stockservice", "header service=stockservice", "outbound|stockservice 100%"],
        ["paymentservice", "header service=paymentservice", "outbound|paymentservice 100%"],
      ],
    },
  ]);
  assertEquals(snap.clusters.get("outbound|stockservice")!.endpoints.map((e) => e.key), [
    "127.0.0.1:8082",
  ]);
  assertEquals(snap.outbound.get("*")!.routes[1].matches, [{
    headers: { service: { exact: "stockservice" } },
  }]);
  assertEquals(findVirtualHost(snap.outbound, "localhost")!.name, "*");
});

Deno.test("without policy the snapshot is what it was", () => {
  const before = compileSnapshot({
    nodeName: "local",
    localServices: [],
    catalog: reviewsCatalog,
    tuning,
  }, 1);
  const after = compile([], {});
  assertEquals([...after.outbound], [...before.outbound]);
  assertEquals([...after.clusters], [...before.clusters]);
  assertEquals(after.warnings, undefined);
});

Deno.test("compiling does not freeze or share the store's resource objects", () => {
  const policy = resources(
    vs("reviews", {
      hosts: ["reviews"],
      http: [{
        match: [{ uri: { prefix: "/a" } }],
        route: [{ destination: { host: "reviews" } }],
        corsPolicy: { allowOrigins: [{ exact: "https://a" }] },
      }],
    }),
  );
  const snap = compile(policy);
  const spec = policy[0].spec as { http: { match: object[] }[] };
  assert(!Object.isFrozen(spec.http[0].match[0]), "store object frozen");
  assert(snap.outbound.get("reviews")!.routes[0].matches![0] !== spec.http[0].match[0], "shared");
});
