/**
 * @module
 * A DestinationRule's traffic policy -> the settings of the clusters it applies to: the
 * balancer (`loadBalancer`), the outlier detector (`outlierDetection`) and the circuit breaker
 * (`connectionPool`), with Istio's defaults filled in, and which endpoints a subset selects.
 * The schema and its checks are `lib/resources/destination_rule.ts`; this is what a validated
 * rule means for the proxy.
 */
import type {
  ConnectionPoolSettings,
  ConsistentHashSettings,
  DestinationRuleSpec,
  LoadBalancerSettings,
  OutlierDetectionSettings,
  TrafficPolicy,
} from "../resources/destination_rule.ts";
import { durationMs } from "../resources/virtual_service.ts";
import type {
  CircuitBreakerConfig,
  HashPolicy,
  LoadBalancerConfig,
  OutlierDetectionConfig,
} from "../snapshot.ts";

/** Weft's balancer when no DestinationRule chooses one (Istio's is LEAST_REQUEST). */
export const DEFAULT_LOAD_BALANCER: LoadBalancerConfig = { kind: "round_robin" };
/** Istio's ring-hash and Maglev defaults. */
export const DEFAULT_MINIMUM_RING_SIZE = 1024;
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;
/** Linkerd's peak-EWMA decay. */
export const DEFAULT_PEAK_EWMA_DECAY_MS = 10_000;
/** Istio's outlier-detection defaults (DestinationRule reference) and Envoy's ejection cap. */
export const DEFAULT_CONSECUTIVE_5XX_ERRORS = 5;
export const DEFAULT_CONSECUTIVE_LOCAL_ORIGIN_FAILURES = 5;
export const DEFAULT_OUTLIER_INTERVAL_MS = 10_000;
export const DEFAULT_BASE_EJECTION_TIME_MS = 30_000;
export const DEFAULT_MAX_EJECTION_TIME_MS = 300_000;
export const DEFAULT_MAX_EJECTION_PERCENT = 10;

/**
 * The traffic policy that applies to `subset` (or to the whole host when undefined): Istio
 * overrides the host's policy field by field (`loadBalancer`, `connectionPool`,
 * `outlierDetection`) with the subset's. Undefined when the subset does not exist.
 */
export function effectiveTrafficPolicy(
  spec: DestinationRuleSpec,
  subset?: string,
): TrafficPolicy | undefined {
  const base = spec.trafficPolicy ?? {};
  if (subset === undefined) return base;
  const s = spec.subsets?.find((x) => x.name === subset);
  if (!s) return undefined;
  return { ...base, ...s.trafficPolicy };
}

/** True when `labels` carry every label of the subset's selector (an empty one selects all). */
export function matchesSubset(
  labels: Readonly<Record<string, string>>,
  selector: Readonly<Record<string, string>> | undefined,
): boolean {
  for (const key in selector) if (labels[key] !== selector[key]) return false;
  return true;
}

/** The hash policy of a `consistentHash` setting. */
export function hashPolicyOf(ch: ConsistentHashSettings): HashPolicy {
  if (ch.httpHeaderName !== undefined) {
    return { kind: "header", name: ch.httpHeaderName.toLowerCase() };
  }
  if (ch.httpCookie !== undefined) {
    const { name, path, ttl } = ch.httpCookie;
    return {
      kind: "cookie",
      name,
      ...(path !== undefined ? { path } : {}),
      ...(ttl !== undefined ? { ttlMs: durationMs(ttl) } : {}),
    };
  }
  if (ch.httpQueryParameterName !== undefined) {
    return { kind: "query_parameter", name: ch.httpQueryParameterName };
  }
  return { kind: "source_ip" };
}

/**
 * The balancer for a validated `loadBalancer` setting. `fallback` applies when nothing is
 * chosen (Istio's own default has been `LEAST_REQUEST` since 1.14). A `consistentHash` without
 * `maglev` uses a ring, as Istio does.
 */
export function loadBalancerConfigOf(
  settings: LoadBalancerSettings | undefined,
  fallback: LoadBalancerConfig = { kind: "least_request", choiceCount: 2 },
): LoadBalancerConfig {
  const ch = settings?.consistentHash;
  if (ch) {
    const hashPolicy = hashPolicyOf(ch);
    if (ch.maglev) {
      return {
        kind: "maglev",
        tableSize: ch.maglev.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE,
        hashPolicy,
      };
    }
    return {
      kind: "ring_hash",
      minimumRingSize: ch.ringHash?.minimumRingSize ?? ch.minimumRingSize ??
        DEFAULT_MINIMUM_RING_SIZE,
      hashPolicy,
    };
  }
  switch (settings?.simple) {
    case "ROUND_ROBIN":
    case "PASSTHROUGH":
      return { kind: "round_robin" };
    case "LEAST_REQUEST":
    case "LEAST_CONN":
      return { kind: "least_request", choiceCount: 2 };
    case "RANDOM":
      return { kind: "random" };
    case "PEAK_EWMA":
      return { kind: "peak_ewma", decayMs: DEFAULT_PEAK_EWMA_DECAY_MS };
    default:
      return fallback;
  }
}

/**
 * The outlier detector of a validated `outlierDetection` setting, with Istio's defaults; undefined
 * when the policy has none (Istio then configures no outlier detection).
 */
export function outlierDetectionConfigOf(
  settings: OutlierDetectionSettings | undefined,
): OutlierDetectionConfig | undefined {
  if (!settings) return undefined;
  const baseEjectionTimeMs = settings.baseEjectionTime !== undefined
    ? durationMs(settings.baseEjectionTime)
    : DEFAULT_BASE_EJECTION_TIME_MS;
  return {
    consecutive5xxErrors: settings.consecutive5xxErrors ?? DEFAULT_CONSECUTIVE_5XX_ERRORS,
    consecutiveGatewayErrors: settings.consecutiveGatewayErrors ?? 0,
    splitExternalLocalOriginErrors: settings.splitExternalLocalOriginErrors ?? false,
    consecutiveLocalOriginFailures: settings.consecutiveLocalOriginFailures ??
      DEFAULT_CONSECUTIVE_LOCAL_ORIGIN_FAILURES,
    intervalMs: settings.interval !== undefined
      ? durationMs(settings.interval)
      : DEFAULT_OUTLIER_INTERVAL_MS,
    baseEjectionTimeMs,
    maxEjectionTimeMs: Math.max(DEFAULT_MAX_EJECTION_TIME_MS, baseEjectionTimeMs),
    // Istio treats 0 as unset.
    maxEjectionPercent: settings.maxEjectionPercent || DEFAULT_MAX_EJECTION_PERCENT,
    minHealthPercent: settings.minHealthPercent ?? 0,
  };
}

/**
 * The circuit breaker of a validated `connectionPool` setting; undefined when it sets no limit
 * (0 and unset both mean unlimited, as in Istio).
 */
export function circuitBreakerConfigOf(
  settings: ConnectionPoolSettings | undefined,
): CircuitBreakerConfig | undefined {
  const config: CircuitBreakerConfig = {
    maxConnections: settings?.tcp?.maxConnections ?? 0,
    maxPendingRequests: settings?.http?.http1MaxPendingRequests ?? 0,
    maxRequests: settings?.http?.http2MaxRequests ?? 0,
    maxRetries: settings?.http?.maxRetries ?? 0,
    maxRequestsPerConnection: settings?.http?.maxRequestsPerConnection ?? 0,
  };
  return Object.values(config).some((v) => v > 0) ? config : undefined;
}
