/**
 * @module
 * The consistent-hash key of a request for its destination cluster (Istio `consistentHash`):
 * header, cookie, source IP or query parameter, computed only when the cluster's balancer
 * hashes. A cookie policy with a ttl and a request without the cookie yields a generated key
 * and the `Set-Cookie` line the proxy adds to the response (see balancer/hash_key.ts).
 */
import type { ClusterConfig } from "../../lib/mod.ts";
import { hashKeyFor } from "../balancer/hash_key.ts";
import type { RequestView } from "./request_view.ts";

/** Result of {@linkcode requestHashKey}; one per connection, overwritten per request. */
export interface AffinityResult {
  /** Undefined: no key (non-hashing balancer, or the request lacks it: random pick). */
  hashKey: string | undefined;
  /** `Set-Cookie` value to add to the response ("" when none). */
  setCookie: string;
}

/** Computes the hash key of `request` for `cluster` into `out`. */
export function requestHashKey(
  cluster: ClusterConfig,
  request: RequestView,
  sourceIp: string,
  out: AffinityResult,
): AffinityResult {
  out.hashKey = undefined;
  out.setCookie = "";
  const lb = cluster.loadBalancer;
  if ((lb.kind !== "ring_hash" && lb.kind !== "maglev") || !lb.hashPolicy) return out;
  out.hashKey = hashKeyFor(lb.hashPolicy, {
    headers: request.headers,
    sourceIp,
    query: request.query,
    setCookie: (value) => void (out.setCookie = value.replace(/[\r\n]/g, "")),
  });
  return out;
}
