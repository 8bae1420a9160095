/**
 * @module
 * What a DestinationRule's traffic policy compiles to: subset policies override the host's
 * field by field, subset selectors pick endpoints by label, and load-balancer settings map to
 * balancer configs.
 */
import {
  effectiveTrafficPolicy,
  loadBalancerConfigOf,
  matchesSubset,
} from "./destination_rules.ts";
import { reviewsRule as reviews } from "../../tests/support/destination_rules.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

Deno.test("a subset's policy overrides the host's field by field", () => {
  const v2 = effectiveTrafficPolicy(reviews as never, "v2")!;
  assert(v2.loadBalancer?.consistentHash !== undefined, "subset load balancer wins");
  assert(v2.outlierDetection?.consecutive5xxErrors === 5, "host outlier detection kept");
  const v1 = effectiveTrafficPolicy(reviews as never, "v1")!;
  assert(v1.loadBalancer?.simple === "LEAST_REQUEST", "host policy for v1");
  assert(effectiveTrafficPolicy(reviews as never, "v9") === undefined, "unknown subset");
});

Deno.test("subset selectors match endpoints carrying every label", () => {
  assert(matchesSubset({ version: "v2", app: "r" }, { version: "v2" }), "superset matches");
  assert(!matchesSubset({ version: "v1" }, { version: "v2" }), "other value");
  assert(!matchesSubset({}, { version: "v2" }), "missing label");
  assert(matchesSubset({ a: "1" }, undefined), "no selector selects all");
});

Deno.test("maps load-balancer settings to balancer configs", () => {
  const cases: [unknown, string][] = [
    [{ simple: "ROUND_ROBIN" }, '{"kind":"round_robin"}'],
    [{ simple: "LEAST_CONN" }, '{"kind":"least_request","choiceCount":2}'],
    [{ simple: "RANDOM" }, '{"kind":"random"}'],
    [{ simple: "PEAK_EWMA" }, '{"kind":"peak_ewma","decayMs":10000}'],
    [
      { consistentHash: { httpHeaderName: "X-User" } },
      '{"kind":"ring_hash","minimumRingSize":1024,"hashPolicy":{"kind":"header","name":"x-user"}}',
    ],
    [
      { consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 4096 } } },
      '{"kind":"ring_hash","minimumRingSize":4096,"hashPolicy":{"kind":"source_ip"}}',
    ],
    [
      { consistentHash: { httpQueryParameterName: "u", maglev: { tableSize: 251 } } },
      '{"kind":"maglev","tableSize":251,"hashPolicy":{"kind":"query_parameter","name":"u"}}',
    ],
    [
      { consistentHash: { httpCookie: { name: "c", ttl: "1m" }, maglev: {} } },
      '{"kind":"maglev","tableSize":65537,"hashPolicy":{"kind":"cookie","name":"c","ttlMs":60000}}',
    ],
  ];
  for (const [settings, expected] of cases) {
    const got = JSON.stringify(loadBalancerConfigOf(settings as never));
    assert(got === expected, `${JSON.stringify(settings)} -> ${got}`);
  }
  assert(loadBalancerConfigOf(undefined).kind === "least_request", "Istio's default");
});
