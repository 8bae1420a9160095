/**
 * @module
 * A DestinationRule spec with every policy the compiler reads (load balancer, connection pool,
 * outlier detection) and two subsets, one overriding the host's load balancer: shared by the
 * schema tests and the compiler's tests so that both speak of the same rule.
 */

/** `reviews` with host-level policies and subsets v1 (inherits) and v2 (consistent hash). */
export const reviewsRule = {
  host: "reviews",
  trafficPolicy: {
    loadBalancer: { simple: "LEAST_REQUEST" },
    connectionPool: {
      tcp: { maxConnections: 100, connectTimeout: "30ms" },
      http: { http1MaxPendingRequests: 10, maxRequestsPerConnection: 1 },
    },
    outlierDetection: {
      consecutive5xxErrors: 5,
      interval: "10s",
      baseEjectionTime: "30s",
      maxEjectionPercent: 50,
    },
  },
  subsets: [
    { name: "v1", labels: { version: "v1" } },
    {
      name: "v2",
      labels: { version: "v2" },
      trafficPolicy: {
        loadBalancer: {
          consistentHash: { httpCookie: { name: "user", ttl: "60s", path: "/" }, maglev: {} },
        },
      },
    },
  ],
};
