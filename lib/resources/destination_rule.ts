/**
 * @module
 * `DestinationRule` (networking.istio.io): what happens to traffic for a host after routing —
 * load balancing, connection limits, outlier detection — and named `subsets` of its endpoints
 * selected by labels, each of which may override the host's traffic policy.
 *
 * Accepted, with Istio's field names and meaning:
 * - `trafficPolicy.loadBalancer`: `simple` (`ROUND_ROBIN`, `LEAST_REQUEST`, `LEAST_CONN` as its
 *   deprecated alias, `RANDOM`, `PASSTHROUGH`, `UNSPECIFIED`) or `consistentHash` (one of
 *   `httpHeaderName`, `httpCookie {name, path, ttl}`, `useSourceIp`, `httpQueryParameterName`;
 *   one of `ringHash {minimumRingSize}` or `maglev {tableSize}`, or the deprecated top-level
 *   `minimumRingSize`). Weft extension: `simple: PEAK_EWMA`, Linkerd's latency-aware balancer.
 *   `PASSTHROUGH` (Envoy's original-destination cluster) has no meaning in Weft, where an
 *   application names a service rather than an address; it balances round robin.
 * - `trafficPolicy.connectionPool`: `tcp {maxConnections, connectTimeout}`,
 *   `http {http1MaxPendingRequests, http2MaxRequests, maxRequestsPerConnection, maxRetries}`,
 *   compiled to the cluster's circuit breaker (proxy/breaker.ts); 0 means unlimited.
 * - `trafficPolicy.outlierDetection`: `consecutive5xxErrors`, `consecutiveGatewayErrors`,
 *   `consecutiveLocalOriginFailures`, `splitExternalLocalOriginErrors`, `interval`,
 *   `baseEjectionTime`, `maxEjectionPercent`, `minHealthPercent`, compiled to the cluster's
 *   outlier detector (proxy/outlier.ts) with Istio's defaults.
 * - `subsets[] {name, labels, trafficPolicy}`, `exportTo` (no effect).
 *
 * Refused by the strict schema (with their path): `tls` (Weft's mTLS is mesh-wide),
 * `portLevelSettings`, `localityLbSetting`, `warmupDurationSecs`, `workloadSelector`, and the
 * `connectionPool` fields Istio has and Weft does not implement. Refused by `validate` with a
 * reason: `connectionPool.tcp.tcpKeepalive` (Weft sets no keepalive probes on upstream sockets)
 * and `connectionPool.http.idleTimeout` (the upstream idle timeout is node-wide:
 * `proxy.upstreamIdleTimeoutMs`), so that no accepted field is silently ignored.
 *
 * Schema and validation only: what a rule compiles to is `lib/compile/destination_rules.ts`.
 */
import { z } from "../schema.ts";
import type { KindDefinition } from "./kind.ts";
import { durationSchema, parseDurationMs, type SpecIssue } from "./virtual_service.ts";

/** Envoy's ring-size limit. */
export const MAXIMUM_RING_SIZE = 8 * 1024 * 1024;
/** The largest Maglev table Envoy accepts (a prime). */
export const MAXIMUM_MAGLEV_TABLE_SIZE = 5000011;

export const simpleLoadBalancerSchema = z.enum([
  "UNSPECIFIED",
  "ROUND_ROBIN",
  "LEAST_REQUEST",
  "LEAST_CONN",
  "RANDOM",
  "PASSTHROUGH",
  "PEAK_EWMA",
]);

export const consistentHashSchema = z.object({
  httpHeaderName: z.string().min(1).optional(),
  httpCookie: z.object({
    name: z.string().min(1),
    path: z.string().optional(),
    /** With a ttl the proxy generates the cookie when missing; "0s" = session cookie. */
    ttl: durationSchema.optional(),
  }).strict().optional(),
  useSourceIp: z.boolean().optional(),
  httpQueryParameterName: z.string().min(1).optional(),
  ringHash: z.object({
    minimumRingSize: z.number().int().min(1).max(MAXIMUM_RING_SIZE).optional(),
  }).strict().optional(),
  maglev: z.object({
    tableSize: z.number().int().min(2).max(MAXIMUM_MAGLEV_TABLE_SIZE).optional(),
  }).strict().optional(),
  /** Deprecated in Istio in favour of `ringHash.minimumRingSize`. */
  minimumRingSize: z.number().int().min(1).max(MAXIMUM_RING_SIZE).optional(),
}).strict();
export type ConsistentHashSettings = z.infer<typeof consistentHashSchema>;

export const loadBalancerSettingsSchema = z.object({
  simple: simpleLoadBalancerSchema.optional(),
  consistentHash: consistentHashSchema.optional(),
}).strict();
export type LoadBalancerSettings = z.infer<typeof loadBalancerSettingsSchema>;

const count = z.number().int().min(0);

export const connectionPoolSchema = z.object({
  tcp: z.object({
    maxConnections: count.optional(),
    connectTimeout: durationSchema.optional(),
    tcpKeepalive: z.object({
      probes: count.optional(),
      time: durationSchema.optional(),
      interval: durationSchema.optional(),
    }).strict().optional(),
  }).strict().optional(),
  http: z.object({
    http1MaxPendingRequests: count.optional(),
    http2MaxRequests: count.optional(),
    maxRequestsPerConnection: count.optional(),
    maxRetries: count.optional(),
    idleTimeout: durationSchema.optional(),
  }).strict().optional(),
}).strict();
export type ConnectionPoolSettings = z.infer<typeof connectionPoolSchema>;

export const outlierDetectionSchema = z.object({
  consecutive5xxErrors: count.optional(),
  consecutiveGatewayErrors: count.optional(),
  consecutiveLocalOriginFailures: count.optional(),
  splitExternalLocalOriginErrors: z.boolean().optional(),
  interval: durationSchema.optional(),
  baseEjectionTime: durationSchema.optional(),
  maxEjectionPercent: z.number().int().min(0).max(100).optional(),
  minHealthPercent: z.number().int().min(0).max(100).optional(),
}).strict();
export type OutlierDetectionSettings = z.infer<typeof outlierDetectionSchema>;

export const trafficPolicySchema = z.object({
  loadBalancer: loadBalancerSettingsSchema.optional(),
  connectionPool: connectionPoolSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
}).strict();
export type TrafficPolicy = z.infer<typeof trafficPolicySchema>;

const labelMap = z.record(z.string().min(1), z.string());

export const subsetSchema = z.object({
  name: z.string().min(1).max(63).regex(
    /^[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/,
    "must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
  ),
  labels: labelMap.optional(),
  trafficPolicy: trafficPolicySchema.optional(),
}).strict();
export type Subset = z.infer<typeof subsetSchema>;

export const destinationRuleSpecSchema = z.object({
  host: z.string().min(1).max(253).regex(
    /^(\*\.)?[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/,
    "must be a host name without scheme, port or path",
  ),
  trafficPolicy: trafficPolicySchema.optional(),
  subsets: z.array(subsetSchema).optional(),
  /** Accepted for compatibility; Weft has no namespace isolation, so it has no effect. */
  exportTo: z.array(z.string().min(1)).optional(),
}).strict();
export type DestinationRuleSpec = z.infer<typeof destinationRuleSpecSchema>;

// ---------------------------------------------------------------------------------------------
// Checks beyond the shape

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

function checkDuration(value: string | undefined, path: string, issues: SpecIssue[]): void {
  if (value !== undefined && parseDurationMs(value) === undefined) {
    issues.push({ path, message: `"${value}" is not a duration like "1.5s" or "200ms"` });
  }
}

function checkTrafficPolicy(p: TrafficPolicy | undefined, path: string, issues: SpecIssue[]) {
  if (!p) return;
  const lb = p.loadBalancer;
  if (lb?.simple !== undefined && lb.consistentHash !== undefined) {
    issues.push({ path: `${path}.loadBalancer`, message: "use either simple or consistentHash" });
  }
  const ch = lb?.consistentHash;
  if (ch) {
    const chPath = `${path}.loadBalancer.consistentHash`;
    const sources = [
      ch.httpHeaderName !== undefined,
      ch.httpCookie !== undefined,
      ch.useSourceIp === true,
      ch.httpQueryParameterName !== undefined,
    ].filter(Boolean).length;
    if (sources !== 1) {
      issues.push({
        path: chPath,
        message: "needs exactly one of httpHeaderName, httpCookie, useSourceIp, " +
          "httpQueryParameterName",
      });
    }
    const algorithms = [ch.ringHash, ch.maglev, ch.minimumRingSize].filter((x) =>
      x !== undefined
    ).length;
    if (algorithms > 1) {
      issues.push({ path: chPath, message: "use only one of ringHash, maglev, minimumRingSize" });
    }
    const tableSize = ch.maglev?.tableSize;
    if (tableSize !== undefined && !isPrime(tableSize)) {
      issues.push({
        path: `${chPath}.maglev.tableSize`,
        message: `must be a prime number (for example 65537), got ${tableSize}`,
      });
    }
    checkDuration(ch.httpCookie?.ttl, `${chPath}.httpCookie.ttl`, issues);
  }
  const tcp = p.connectionPool?.tcp;
  checkDuration(tcp?.connectTimeout, `${path}.connectionPool.tcp.connectTimeout`, issues);
  // Accepted by Istio but not implemented by Weft: refused rather than silently ignored.
  if (tcp?.tcpKeepalive !== undefined) {
    issues.push({
      path: `${path}.connectionPool.tcp.tcpKeepalive`,
      message: "is not supported: Weft sets no TCP keepalive probes on upstream connections",
    });
  }
  if (p.connectionPool?.http?.idleTimeout !== undefined) {
    issues.push({
      path: `${path}.connectionPool.http.idleTimeout`,
      message: "is not supported per host: the upstream idle timeout is node-wide " +
        "(proxy.upstreamIdleTimeoutMs in the node config)",
    });
  }
  checkPositiveDuration(p.outlierDetection?.interval, `${path}.outlierDetection.interval`, issues);
  checkPositiveDuration(
    p.outlierDetection?.baseEjectionTime,
    `${path}.outlierDetection.baseEjectionTime`,
    issues,
  );
}

/** A duration Envoy requires to be above zero (outlier `interval`, `baseEjectionTime`). */
function checkPositiveDuration(value: string | undefined, path: string, issues: SpecIssue[]) {
  if (value === undefined) return;
  const ms = parseDurationMs(value);
  if (ms === undefined) checkDuration(value, path, issues);
  else if (ms < 1) issues.push({ path, message: `must be at least 1ms, got "${value}"` });
}

/** Checks across fields; paths are relative to `spec`. */
export function validateDestinationRule(spec: DestinationRuleSpec): SpecIssue[] {
  const issues: SpecIssue[] = [];
  checkTrafficPolicy(spec.trafficPolicy, "trafficPolicy", issues);
  const seen = new Map<string, number>();
  spec.subsets?.forEach((s, i) => {
    const previous = seen.get(s.name);
    if (previous !== undefined) {
      issues.push({
        path: `subsets[${i}].name`,
        message: `duplicate subset "${s.name}" (also subsets[${previous}])`,
      });
    } else seen.set(s.name, i);
    checkTrafficPolicy(s.trafficPolicy, `subsets[${i}].trafficPolicy`, issues);
  });
  return issues;
}

export const destinationRuleKind: KindDefinition<DestinationRuleSpec> = {
  kind: "DestinationRule",
  apiVersions: [
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
  ],
  spec: destinationRuleSpecSchema,
  validate: validateDestinationRule,
};
