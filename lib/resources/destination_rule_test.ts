/**
 * @module
 * DestinationRule schema, cross-field checks, and the helpers the snapshot uses: subset
 * policies, label selection and the load-balancer mapping.
 */
import {
  destinationRuleKind,
  effectiveTrafficPolicy,
  loadBalancerConfigOf,
  matchesSubset,
} from "./destination_rule.ts";
import { formatPath } from "../errors.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Issues as `path: message` lines, zod's and `validate`'s together. */
function issuesOf(kind: typeof destinationRuleKind, spec: unknown): string[] {
  const parsed = kind.spec.safeParse(spec);
  if (!parsed.success) {
    return parsed.error.issues.map((i) => {
      const keys = i.code === "unrecognized_keys" ? ` ${i.keys.join(",")}` : "";
      return `${formatPath(i.path)}: ${i.message}${keys}`;
    });
  }
  return (kind.validate?.(parsed.data) ?? []).map((i) => `${i.path}: ${i.message}`);
}

function expectIssue(spec: unknown, path: string, fragment: string): void {
  const issues = issuesOf(destinationRuleKind, spec);
  assert(
    issues.some((i) => i.startsWith(`${path}:`) && i.includes(fragment)),
    `expected "${path}: …${fragment}…", got ${JSON.stringify(issues)}`,
  );
}

const reviews = {
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

Deno.test("accepts a DestinationRule with policies and subsets", () => {
  const issues = issuesOf(destinationRuleKind, reviews);
  assert(issues.length === 0, `refused: ${issues}`);
});

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

Deno.test("refuses inconsistent or unsupported settings with their path", () => {
  const lb = (loadBalancer: unknown) => ({ host: "r", trafficPolicy: { loadBalancer } });
  expectIssue(
    lb({ consistentHash: { useSourceIp: true, maglev: { tableSize: 65536 } } }),
    "trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
    "prime",
  );
  expectIssue(
    lb({ consistentHash: { useSourceIp: true, httpHeaderName: "x" } }),
    "trafficPolicy.loadBalancer.consistentHash",
    "exactly one",
  );
  expectIssue(
    lb({ consistentHash: { useSourceIp: true, ringHash: {}, maglev: {} } }),
    "trafficPolicy.loadBalancer.consistentHash",
    "only one of",
  );
  expectIssue(
    lb({ simple: "RANDOM", consistentHash: { useSourceIp: true } }),
    "trafficPolicy.loadBalancer",
    "either simple or consistentHash",
  );
  expectIssue(lb({ simple: "FASTEST" }), "trafficPolicy.loadBalancer.simple", "");
  expectIssue(
    { host: "r", trafficPolicy: { outlierDetection: { interval: "often" } } },
    "trafficPolicy.outlierDetection.interval",
    "not a duration",
  );
  expectIssue(
    { host: "r", subsets: [{ name: "a" }, { name: "a" }] },
    "subsets[1].name",
    "duplicate subset",
  );
  expectIssue(
    { host: "r", trafficPolicy: { tls: { mode: "ISTIO_MUTUAL" } } },
    "trafficPolicy",
    "tls",
  );
  expectIssue({ host: "http://r" }, "host", "host name");
});
