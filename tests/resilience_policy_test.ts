/**
 * @module
 * DestinationRule `outlierDetection` and `connectionPool` from `weft apply` to the snapshot:
 * parsed with Istio's defaults, subset policies override the host's, and fields Weft does not
 * implement are refused with their path instead of being ignored.
 */
import { assertEquals, assertThrows } from "./support/assert.ts";
import { parseNodeConfig } from "../lib/config.ts";
import { UserError } from "../lib/errors.ts";
import { parseResources } from "../lib/resources/registry.ts";
import { type CatalogEndpoint, compileSnapshot } from "../lib/mod.ts";

const tuning = parseNodeConfig({}).proxy;

function endpoint(node: string, version: string): CatalogEndpoint {
  return {
    service: "reviews",
    node,
    nodeId: `id-${node}`,
    hostname: `10.0.0.${node.slice(-1)}`,
    port: 15006,
    protocol: "http",
    labels: { version },
    healthy: true,
  };
}

function destinationRule(spec: object): string {
  return JSON.stringify({
    apiVersion: "networking.istio.io/v1",
    kind: "DestinationRule",
    metadata: { name: "reviews" },
    spec,
  });
}

function compileRule(spec: object) {
  return compileSnapshot({
    nodeName: "local",
    localServices: [],
    catalog: [endpoint("node1", "v1"), endpoint("node2", "v2")],
    tuning,
    destinationRules: parseResources(destinationRule(spec), "json"),
  }, 1);
}

Deno.test("outlierDetection compiles to milliseconds with Istio's defaults", () => {
  const snap = compileRule({
    host: "reviews",
    trafficPolicy: { outlierDetection: { consecutive5xxErrors: 3, baseEjectionTime: "200ms" } },
  });
  assertEquals(snap.clusters.get("outbound|reviews")!.outlierDetection, {
    consecutive5xxErrors: 3,
    consecutiveGatewayErrors: 0,
    splitExternalLocalOriginErrors: false,
    consecutiveLocalOriginFailures: 5,
    intervalMs: 10_000,
    baseEjectionTimeMs: 200,
    maxEjectionTimeMs: 300_000,
    maxEjectionPercent: 10,
    minHealthPercent: 0,
  });
  assertEquals(snap.clusters.get("outbound|reviews")!.circuitBreaker, undefined);
});

Deno.test("connectionPool limits compile to a circuit breaker; 0 and unset mean unlimited", () => {
  const snap = compileRule({
    host: "reviews",
    trafficPolicy: {
      connectionPool: {
        tcp: { maxConnections: 10, connectTimeout: "1s" },
        http: { http2MaxRequests: 2, maxRetries: 0, maxRequestsPerConnection: 100 },
      },
    },
  });
  const cluster = snap.clusters.get("outbound|reviews")!;
  assertEquals(cluster.circuitBreaker, {
    maxConnections: 10,
    maxPendingRequests: 0,
    maxRequests: 2,
    maxRetries: 0,
    maxRequestsPerConnection: 100,
  });
  assertEquals(cluster.connectTimeoutMs, 1000);
  assertEquals(cluster.outlierDetection, undefined);

  // Only a connect timeout: no breaker at all, so the request path does no counting.
  const plain = compileRule({
    host: "reviews",
    trafficPolicy: { connectionPool: { tcp: { connectTimeout: "1s" } } },
  });
  assertEquals(plain.clusters.get("outbound|reviews")!.circuitBreaker, undefined);
});

Deno.test("a subset's connectionPool and outlierDetection replace the host's", () => {
  const snap = compileRule({
    host: "reviews",
    trafficPolicy: {
      connectionPool: { http: { http2MaxRequests: 100 } },
      outlierDetection: { consecutive5xxErrors: 7 },
    },
    subsets: [
      { name: "v1", labels: { version: "v1" } },
      {
        name: "v2",
        labels: { version: "v2" },
        trafficPolicy: {
          connectionPool: { http: { http2MaxRequests: 5 } },
          outlierDetection: { consecutiveGatewayErrors: 2, maxEjectionPercent: 100 },
        },
      },
    ],
  });
  const v1 = snap.clusters.get("outbound|reviews|v1")!;
  const v2 = snap.clusters.get("outbound|reviews|v2")!;
  assertEquals(v1.circuitBreaker?.maxRequests, 100);
  assertEquals(v1.outlierDetection?.consecutive5xxErrors, 7);
  assertEquals(v2.circuitBreaker?.maxRequests, 5);
  // Istio replaces the whole outlierDetection: the host's 7 does not carry into v2.
  assertEquals(v2.outlierDetection?.consecutive5xxErrors, 5);
  assertEquals(v2.outlierDetection?.consecutiveGatewayErrors, 2);
  assertEquals(v2.outlierDetection?.maxEjectionPercent, 100);
});

Deno.test("connectionPool fields Weft does not implement are refused with their path", () => {
  const refused: [object, string][] = [
    [
      { tcp: { tcpKeepalive: { time: "7200s" } } },
      "trafficPolicy.connectionPool.tcp.tcpKeepalive",
    ],
    [{ http: { idleTimeout: "1m" } }, "trafficPolicy.connectionPool.http.idleTimeout"],
    [{ http: { h2UpgradePolicy: "UPGRADE" } }, "trafficPolicy.connectionPool.http"],
    [{ tcp: { maxConnectionDuration: "1h" } }, "trafficPolicy.connectionPool.tcp"],
  ];
  for (const [connectionPool, path] of refused) {
    const err = assertThrows(
      () =>
        parseResources(
          destinationRule({ host: "reviews", trafficPolicy: { connectionPool } }),
          "json",
        ),
      UserError,
    );
    assertEquals(err.message.includes(path), true, `${err.message} names ${path}`);
  }
  // The same check applies inside subsets.
  const err = assertThrows(
    () =>
      parseResources(
        destinationRule({
          host: "reviews",
          subsets: [{
            name: "v1",
            trafficPolicy: { connectionPool: { http: { idleTimeout: "5s" } } },
          }],
        }),
        "json",
      ),
    UserError,
  );
  assertEquals(
    err.message.includes("subsets[0].trafficPolicy.connectionPool.http.idleTimeout"),
    true,
    err.message,
  );
});

Deno.test("outlier durations must be above zero, as Envoy requires", () => {
  const err = assertThrows(
    () =>
      parseResources(
        destinationRule({
          host: "reviews",
          trafficPolicy: { outlierDetection: { interval: "0s" } },
        }),
        "json",
      ),
    UserError,
  );
  assertEquals(err.message.includes("trafficPolicy.outlierDetection.interval"), true, err.message);
});
