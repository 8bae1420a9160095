/**
 * @module
 * Computes the consistent-hash key of a request from a cluster's {@linkcode HashPolicy}, as
 * Envoy's hash policies do for Istio's `consistentHash`: a header value, a cookie, the source
 * IP, or a query parameter. With a cookie policy that has a ttl and a request without the
 * cookie, Envoy generates one and sets it on the response; here the generated value is derived
 * from the source IP (as Envoy derives it from the downstream address), so the same client
 * keeps its endpoint even before its client stores the cookie, and `setCookie` receives the
 * `Set-Cookie` header value the proxy must add to the response.
 */
import type { HashPolicy } from "../../lib/mod.ts";
import { hash32 } from "./hash.ts";

/** What the key may come from; `cookie` defaults to the `cookie` header. */
export interface HashKeyRequest {
  headers: { get(name: string): string | null | undefined };
  /** Raw `Cookie` header, if the caller has it already. */
  cookie?: string | null;
  sourceIp?: string;
  /** Raw query string (with or without `?`) or a parsed `URLSearchParams`-like object. */
  query?: string | { get(name: string): string | null };
  /** Receives the `Set-Cookie` value when a cookie with ttl was missing and was generated. */
  setCookie?: (headerValue: string) => void;
}

/** The value of cookie `name` in a `Cookie` header, or undefined. */
export function cookieValue(header: string | null | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(";", start);
    if (end < 0) end = header.length;
    const eq = header.indexOf("=", start);
    if (eq > start && eq < end && header.slice(start, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
        value = value.slice(1, -1);
      }
      return value;
    }
    start = end + 1;
  }
  return undefined;
}

/** The first value of query parameter `name`, decoded; undefined when absent. */
export function queryValue(
  query: string | { get(name: string): string | null } | undefined,
  name: string,
): string | undefined {
  if (query === undefined) return undefined;
  if (typeof query !== "string") return query.get(name) ?? undefined;
  let start = query.startsWith("?") ? 1 : 0;
  while (start < query.length) {
    let end = query.indexOf("&", start);
    if (end < 0) end = query.length;
    const eq = query.indexOf("=", start);
    const keyEnd = eq >= start && eq < end ? eq : end;
    if (decodeQueryComponent(query.slice(start, keyEnd)) === name) {
      return keyEnd === end ? "" : decodeQueryComponent(query.slice(keyEnd + 1, end));
    }
    start = end + 1;
  }
  return undefined;
}

function decodeQueryComponent(text: string): string {
  if (text.indexOf("%") < 0 && text.indexOf("+") < 0) return text;
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    return text; // malformed escapes: match the raw text rather than fail the request
  }
}

/** The `Set-Cookie` header value for a generated affinity cookie. */
export function affinityCookie(name: string, value: string, ttlMs: number, path?: string): string {
  let header = `${name}=${value}`;
  if (path) header += `; Path=${path}`;
  // ttl 0 means a session cookie (Istio/Envoy), so no Max-Age.
  if (ttlMs > 0) header += `; Max-Age=${Math.max(1, Math.floor(ttlMs / 1000))}`;
  return header + "; HttpOnly";
}

/**
 * The hash key for `request` under `policy`, or undefined when the request carries none (the
 * balancer then picks at random, as Envoy does).
 */
export function hashKeyFor(policy: HashPolicy, request: HashKeyRequest): string | undefined {
  switch (policy.kind) {
    case "header":
      return request.headers.get(policy.name) ?? undefined;
    case "source_ip":
      return request.sourceIp || undefined;
    case "query_parameter":
      return queryValue(request.query, policy.name);
    case "cookie": {
      const header = request.cookie !== undefined ? request.cookie : request.headers.get("cookie");
      const value = cookieValue(header, policy.name);
      if (value !== undefined || policy.ttlMs === undefined) return value;
      const seed = request.sourceIp ?? crypto.randomUUID();
      const generated = hash32(seed).toString(16).padStart(8, "0") +
        hash32(seed, 0x9e3779b9).toString(16).padStart(8, "0");
      request.setCookie?.(affinityCookie(policy.name, generated, policy.ttlMs, policy.path));
      return generated;
    }
  }
}
