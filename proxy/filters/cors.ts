/**
 * @module
 * CORS with Istio `corsPolicy` / Envoy CORS filter semantics:
 *
 * - A **preflight** is an `OPTIONS` request carrying `Origin` and
 *   `Access-Control-Request-Method`. When the origin matches `allowOrigins` the proxy answers it
 *   itself (200, no body) with `Access-Control-Allow-Origin` (the request's origin, as Envoy
 *   echoes it), `-Allow-Credentials`, `-Allow-Methods`, `-Allow-Headers` and `-Max-Age`. When it
 *   does not match, the request goes upstream untouched (Envoy continues the filter chain).
 * - Any other request with a matching `Origin` gets `Access-Control-Allow-Origin`,
 *   `-Allow-Credentials` and `-Expose-Headers` added to the upstream's response.
 */
import type { RouteCorsPolicy } from "../../lib/mod.ts";
import { compileStringMatch } from "../route_match.ts";

type OriginTest = (origin: string) => boolean;
const originTests = new WeakMap<RouteCorsPolicy, OriginTest>();

/** True when `origin` matches one of the policy's `allowOrigins` (compiled once per policy). */
export function originAllowed(policy: RouteCorsPolicy, origin: string | null): boolean {
  if (!origin) return false;
  let test = originTests.get(policy);
  if (!test) {
    const tests = policy.allowOrigins.map((m) => compileStringMatch(m));
    test = (o) => tests.some((t) => t(o));
    originTests.set(policy, test);
  }
  return test(origin);
}

/** True for a CORS preflight request. */
export function isPreflight(method: string, origin: string | null, requestMethod: string | null) {
  return method === "OPTIONS" && !!origin && !!requestMethod;
}

function clean(value: string): string {
  return value.replace(/[\r\n]/g, "");
}

/** Header lines (`name: value\r\n` each) of a preflight answer for an allowed `origin`. */
export function preflightHeaders(policy: RouteCorsPolicy, origin: string): string {
  let h = `access-control-allow-origin: ${clean(origin)}\r\n`;
  if (policy.allowCredentials) h += "access-control-allow-credentials: true\r\n";
  if (policy.allowMethods) h += `access-control-allow-methods: ${policy.allowMethods}\r\n`;
  if (policy.allowHeaders) h += `access-control-allow-headers: ${policy.allowHeaders}\r\n`;
  if (policy.maxAgeSeconds !== undefined) {
    h += `access-control-max-age: ${policy.maxAgeSeconds}\r\n`;
  }
  return h;
}

/** Header lines added to an actual response for an allowed `origin`. */
export function responseCorsHeaders(policy: RouteCorsPolicy, origin: string): string {
  let h = `access-control-allow-origin: ${clean(origin)}\r\n`;
  if (policy.allowCredentials) h += "access-control-allow-credentials: true\r\n";
  if (policy.exposeHeaders) h += `access-control-expose-headers: ${policy.exposeHeaders}\r\n`;
  return h;
}

/** Names of the headers {@linkcode responseCorsHeaders} sets, dropped from the upstream's. */
export const CORS_RESPONSE_NAMES: readonly string[] = [
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "access-control-expose-headers",
];

/** The complete bytes of a preflight answer (200, no body). */
export function preflightReplyBytes(policy: RouteCorsPolicy, origin: string, close: boolean) {
  return new TextEncoder().encode(
    `HTTP/1.1 200 OK\r\n${preflightHeaders(policy, origin)}content-length: 0\r\n` +
      `${close ? "connection: close\r\n" : ""}\r\n`,
  );
}
