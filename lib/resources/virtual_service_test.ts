/**
 * @module
 * VirtualService schema and cross-field checks: Istio examples are accepted; each kind of
 * mistake is refused with a path and a reason.
 */
import { formatPath } from "../errors.ts";
import type { KindDefinition } from "./kind.ts";
import {
  destinationWeights,
  hostConflicts,
  parseDurationMs,
  parseRetryOn,
  virtualServiceKind,
} from "./virtual_service.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Issues as `path: message` lines, zod's and `validate`'s together. */
function issuesOf<S>(kind: KindDefinition<S>, spec: unknown): string[] {
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
  const issues = issuesOf(virtualServiceKind, spec);
  assert(
    issues.some((i) => i.startsWith(`${path}:`) && i.includes(fragment)),
    `expected "${path}: …${fragment}…", got ${JSON.stringify(issues)}`,
  );
}

const seedExample = {
  hosts: ["*"],
  http: ["orderservice", "stockservice", "paymentservice"].map((service) => ({
    name: service,
    match: [{ headers: { service: { exact: service } } }],
    route: [{ destination: { host: service } }],
  })),
};

const full = {
  hosts: ["reviews", "*.example.com"],
  gateways: ["mesh"],
  http: [
    {
      name: "canary",
      match: [
        {
          uri: { prefix: "/api" },
          method: { exact: "GET" },
          authority: { regex: "reviews(:\\d+)?" },
          headers: { "x-user": { exact: "jason" }, "x-present": {} },
          queryParams: { debug: { exact: "1" } },
          withoutHeaders: { "x-block": {} },
          sourceLabels: { app: "productpage" },
          ignoreUriCase: true,
          port: 9080,
        },
        { uri: { exact: "/health" } },
      ],
      route: [
        {
          destination: { host: "reviews", subset: "v1", port: { number: 9080 } },
          weight: 90,
          headers: { request: { set: { "x-canary": "no" } } },
        },
        { destination: { host: "reviews", subset: "v2" }, weight: 10 },
      ],
      rewrite: { uri: "/v2/api", authority: "reviews.internal" },
      timeout: "1.5s",
      retries: { attempts: 3, perTryTimeout: "200ms", retryOn: "5xx,reset,503" },
      fault: {
        delay: { fixedDelay: "5s", percentage: { value: 0.1 } },
        abort: { httpStatus: 503, percentage: { value: 1 } },
      },
      mirror: { host: "reviews-shadow" },
      mirrorPercentage: { value: 50 },
      corsPolicy: {
        allowOrigins: [{ exact: "https://example.com" }],
        allowMethods: ["GET", "POST"],
        allowHeaders: ["x-token"],
        exposeHeaders: ["x-trace"],
        maxAge: "24h",
        allowCredentials: true,
      },
      headers: {
        request: { add: { "x-b3": "1" }, remove: ["x-debug"] },
        response: { set: { "cache-control": "no-store" } },
      },
    },
    { redirect: { uri: "/new", authority: "elsewhere", redirectCode: 308 } },
  ],
};

Deno.test("accepts the seed's route-by-header example and a full-featured route", () => {
  assert(issuesOf(virtualServiceKind, seedExample).length === 0, "seed example refused");
  const issues = issuesOf(virtualServiceKind, full);
  assert(issues.length === 0, `full example refused: ${issues}`);
  assert(virtualServiceKind.apiVersions.includes("networking.istio.io/v1alpha3"), "v1alpha3");
});

Deno.test("refuses tcp and tls routes with a clear message", () => {
  expectIssue({ hosts: ["db"], tcp: [{ route: [] }] }, "tcp", "not supported yet");
  expectIssue({ hosts: ["db"], tls: [{}] }, "tls", "not supported yet");
});

Deno.test("refuses gateways other than mesh", () => {
  expectIssue({ ...seedExample, gateways: ["ingress"] }, "gateways[0]", 'only "mesh"');
});

Deno.test("refuses weights that do not sum to 100 across several destinations", () => {
  const spec = {
    hosts: ["r"],
    http: [{
      route: [{ destination: { host: "r", subset: "a" }, weight: 90 }, {
        destination: { host: "r", subset: "b" },
        weight: 20,
      }],
    }],
  };
  expectIssue(spec, "http[0].route", "sum to 100, got 110");
  assert(destinationWeights([{ destination: { host: "x" }, weight: 5 }])[0] === 100, "single");
});

Deno.test("refuses regexes that do not compile or use non-RE2 features", () => {
  const withMatch = (match: unknown) => ({
    hosts: ["r"],
    http: [{ match: [match], route: [{ destination: { host: "r" } }] }],
  });
  expectIssue(withMatch({ uri: { regex: "(" } }), "http[0].match[0].uri.regex", "does not compile");
  expectIssue(
    withMatch({ headers: { a: { regex: "(?=x)" } } }),
    "http[0].match[0].headers.a.regex",
    "lookaround",
  );
  expectIssue(
    withMatch({ uri: { exact: "/a", prefix: "/b" } }),
    "http[0].match[0].uri",
    "only one",
  );
  expectIssue(withMatch({ uri: {} }), "http[0].match[0].uri", "needs one of");
  expectIssue(
    withMatch({ headers: { "X-Upper": { exact: "1" } } }),
    "http[0].match[0].headers.X-Upper",
    "lower-case",
  );
});

Deno.test("refuses bad durations, retry conditions, and unknown fields", () => {
  const route = (extra: Record<string, unknown>) => ({
    hosts: ["r"],
    http: [{ route: [{ destination: { host: "r" } }], ...extra }],
  });
  expectIssue(route({ timeout: "5 seconds" }), "http[0].timeout", "not a duration");
  expectIssue(
    route({ retries: { attempts: 2, perTryTimeout: "1x" } }),
    "http[0].retries.perTryTimeout",
    "not a duration",
  );
  expectIssue(
    route({ retries: { attempts: 2, retryOn: "5xx,sometimes" } }),
    "http[0].retries.retryOn",
    'unknown condition "sometimes"',
  );
  expectIssue(route({ directResponse: { status: 200 } }), "http[0]", "directResponse");
  expectIssue(route({ redirect: { uri: "/x" } }), "http[0].redirect", "cannot be combined");
  expectIssue({ hosts: ["r"], http: [{}] }, "http[0]", "needs either route or redirect");
  expectIssue({ hosts: ["http://r"], http: seedExample.http }, "hosts[0]", "host name");
  expectIssue({ hosts: [] }, "hosts", "at least one host");
});

Deno.test("parses Istio and Go duration strings", () => {
  const cases: [string, number | undefined][] = [
    ["1.5s", 1500],
    ["200ms", 200],
    ["1m30s", 90_000],
    ["1h", 3_600_000],
    ["0s", 0],
    ["250us", 0.25],
    [".5s", 500],
    ["", undefined],
    ["5", undefined],
    ["-1s", undefined],
    ["1s ", undefined],
    ["1d", undefined],
  ];
  for (const [text, expected] of cases) {
    assert(parseDurationMs(text) === expected, `${text}: got ${parseDurationMs(text)}`);
  }
});

Deno.test("parses retryOn into conditions and status codes", () => {
  const parsed = parseRetryOn("5xx, reset,503,unavailable");
  assert(parsed.conditions.has("5xx") && parsed.conditions.has("reset"), "named conditions");
  assert(parsed.statusCodes.has(503), "status code");
  assert(parsed.conditions.has("retriable-status-codes"), "codes imply retriable-status-codes");
  const defaults = parseRetryOn(undefined);
  assert(defaults.conditions.has("connect-failure") && !defaults.conditions.has("5xx"), "default");
});

Deno.test("reports hosts claimed by more than one VirtualService", () => {
  const vs = (name: string, hosts: string[]) => ({
    metadata: { namespace: "default", name },
    spec: { hosts },
  });
  const conflicts = hostConflicts([
    vs("a", ["reviews", "*"]),
    vs("b", ["Reviews"]),
    vs("c", ["ratings", "*.example.com"]),
    vs("d", ["x.example.com"]),
  ]);
  assert(
    JSON.stringify(conflicts) === '[{"host":"reviews","resources":["default/a","default/b"]}]',
    `conflicts ${JSON.stringify(conflicts)}`,
  );
});
