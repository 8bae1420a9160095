/**
 * @module
 * Retry decisions with Envoy's `retry_on` semantics (what Istio's `retries.retryOn` compiles
 * to). The proxy reports how a try ended as a {@linkcode TryResult};
 * {@linkcode retriableResult} says whether the policy retries it (retry_state.ts counts the
 * attempts). Which conditions cover what:
 *
 * | try ended with                          | retried under                                      |
 * | --------------------------------------- | -------------------------------------------------- |
 * | connect failure (refused, timeout)      | `connect-failure`, `5xx`, `gateway-error`, `reset` |
 * | reset / closed before a response head   | `reset`, `5xx`, `gateway-error`                    |
 * | per-try timeout                         | `reset`, `5xx`, `gateway-error`                    |
 * | status >= 500                           | `5xx`                                              |
 * | 502, 503, 504                           | `gateway-error`                                    |
 * | 409                                     | `retriable-4xx`                                    |
 * | a listed status code                    | `retriable-status-codes` (`retryOn: "503,429"`)    |
 * | refused stream                          | `refused-stream` (HTTP/2 only: never on HTTP/1.1)  |
 *
 * As in Envoy, 5xx/gateway-error/reset cover every reset reason including a failed connect
 * (Envoy `RetryStateImpl::wouldRetryOnReset`). Backoff between tries follows Envoy's default:
 * full jitter over `(2^n - 1) * 25 ms`, capped at 250 ms.
 */
import type { RouteRetryPolicy } from "../../lib/mod.ts";

/** How one upstream try ended. */
export type TryResult =
  | { readonly kind: "status"; readonly status: number }
  | { readonly kind: "connect-failure" }
  | { readonly kind: "reset" }
  | { readonly kind: "per-try-timeout" }
  | { readonly kind: "refused-stream" };

/** Reused results for the non-status outcomes (no allocation per try). */
export const CONNECT_FAILURE: TryResult = { kind: "connect-failure" };
export const RESET: TryResult = { kind: "reset" };
export const PER_TRY_TIMEOUT: TryResult = { kind: "per-try-timeout" };

/** True when `policy` retries a try that ended with `result` (attempts are not checked). */
export function retriableResult(policy: RouteRetryPolicy, result: TryResult): boolean {
  const on = policy.retryOn;
  switch (result.kind) {
    case "connect-failure":
      return on.includes("connect-failure") || on.includes("5xx") ||
        on.includes("gateway-error") || on.includes("reset");
    case "reset":
    case "per-try-timeout":
      return on.includes("reset") || on.includes("5xx") || on.includes("gateway-error");
    case "refused-stream":
      return on.includes("refused-stream");
    case "status": {
      const s = result.status;
      if (s >= 500 && on.includes("5xx")) return true;
      if ((s === 502 || s === 503 || s === 504) && on.includes("gateway-error")) return true;
      if (s === 409 && on.includes("retriable-4xx")) return true;
      return on.includes("retriable-status-codes") && policy.retriableStatusCodes.includes(s);
    }
  }
}

/** Envoy's default retry backoff base and cap. */
export const RETRY_BASE_INTERVAL_MS = 25;
export const RETRY_MAX_INTERVAL_MS = 250;

/**
 * Wait before retry number `retryIndex` (1 = first retry): uniformly random in
 * `[0, (2^retryIndex - 1) * 25 ms]`, capped at 250 ms. `random` is in [0, 1).
 */
export function retryBackoffMs(retryIndex: number, random: number): number {
  const window = Math.min(
    RETRY_MAX_INTERVAL_MS,
    (2 ** Math.min(retryIndex, 10) - 1) * RETRY_BASE_INTERVAL_MS,
  );
  return Math.floor(random * (window + 1));
}

/**
 * The deadline of one try: the per-try timeout from the try's start, bounded by the route
 * deadline (both absolute clock ms, 0 = none). Returns 0 when neither applies.
 */
export function tryDeadline(routeDeadline: number, tryStart: number, perTryTimeoutMs: number) {
  if (perTryTimeoutMs <= 0) return routeDeadline;
  const perTry = tryStart + perTryTimeoutMs;
  return routeDeadline > 0 && routeDeadline < perTry ? routeDeadline : perTry;
}
