/**
 * @module
 * Unit tests of the per-request filters: retry conditions and backoff, fault decisions, header
 * edit plans, CORS, redirect and rewrite, mirror decisions and shadow hosts, header lookup over
 * a parsed head, and consistent-hash keys.
 */
import type { ClusterConfig, RouteCorsPolicy, RouteRetryPolicy } from "../../lib/mod.ts";
import { newHead, parseHead } from "../head.ts";
import { requestHashKey } from "./affinity.ts";

const affinityCookieName = "cart";
import { isPreflight, originAllowed, preflightHeaders, responseCorsHeaders } from "./cors.ts";
import { decideFault, type FaultDecision } from "./fault.ts";
import { applyHeaderPlan, composeHeaderEdits, dropsLine } from "./headers.ts";
import { shadowAuthority, shouldMirror } from "./mirror.ts";
import { redirectLocation, rewriteTarget } from "./redirect.ts";
import { authorityPort, headValue, RequestView } from "./request_view.ts";
import {
  CONNECT_FAILURE,
  PER_TRY_TIMEOUT,
  RESET,
  retriableResult,
  retryBackoffMs,
  tryDeadline,
  type TryResult,
} from "./retry.ts";
import { RetryState, RetryVerdict } from "../retry_state.ts";

function assertEquals<T>(actual: T, expected: T, what = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what ? what + ": " : ""}expected ${e}, got ${a}`);
}

function policy(retryOn: RouteRetryPolicy["retryOn"], codes: number[] = []): RouteRetryPolicy {
  return { attempts: 2, perTryTimeoutMs: 0, retryOn, retriableStatusCodes: codes };
}

const status = (s: number) => ({ kind: "status", status: s }) as const;

Deno.test("retry: each condition covers exactly its outcomes", () => {
  const cases: [RouteRetryPolicy, TryResult, boolean][] = [
    [policy(["5xx"]), status(500), true],
    [policy(["5xx"]), status(503), true],
    [policy(["5xx"]), status(409), false],
    [policy(["5xx"]), CONNECT_FAILURE, true],
    [policy(["5xx"]), RESET, true],
    [policy(["gateway-error"]), status(500), false],
    [policy(["gateway-error"]), status(502), true],
    [policy(["gateway-error"]), status(504), true],
    [policy(["gateway-error"]), PER_TRY_TIMEOUT, true],
    [policy(["connect-failure"]), CONNECT_FAILURE, true],
    [policy(["connect-failure"]), RESET, false],
    [policy(["connect-failure"]), status(503), false],
    [policy(["reset"]), RESET, true],
    [policy(["reset"]), CONNECT_FAILURE, true],
    [policy(["reset"]), status(503), false],
    [policy(["retriable-4xx"]), status(409), true],
    [policy(["retriable-4xx"]), status(404), false],
    [policy(["retriable-status-codes"], [429]), status(429), true],
    [policy(["retriable-status-codes"], [429]), status(503), false],
    [policy(["refused-stream"]), RESET, false],
    [policy(["refused-stream"]), { kind: "refused-stream" }, true],
    [policy([]), status(503), false],
  ];
  for (const [p, result, expected] of cases) {
    assertEquals(retriableResult(p, result), expected, `${p.retryOn} ${JSON.stringify(result)}`);
  }
});

Deno.test("retry: attempts bound the retries; no policy never retries", () => {
  const p = policy(["5xx"]);
  const state = new RetryState();
  state.start(p);
  state.next();
  assertEquals(state.afterResponse(500), RetryVerdict.Retry);
  state.next();
  assertEquals(state.afterResponse(500), RetryVerdict.RelayExhausted);
  state.start(undefined);
  assertEquals(state.afterResponse(500), RetryVerdict.Relay);
});

Deno.test("retry: backoff is jittered within Envoy's window and capped", () => {
  assertEquals(retryBackoffMs(1, 0), 0);
  assertEquals(retryBackoffMs(1, 0.999), 25);
  assertEquals(retryBackoffMs(2, 0.999), 75);
  assertEquals(retryBackoffMs(10, 0.999), 250);
});

Deno.test("retry: the per-try deadline is bounded by the route deadline", () => {
  assertEquals(tryDeadline(0, 100, 0), 0);
  assertEquals(tryDeadline(500, 100, 0), 500);
  assertEquals(tryDeadline(0, 100, 50), 150);
  assertEquals(tryDeadline(120, 100, 50), 120);
});

Deno.test("fault: percentages decide delay and abort independently", () => {
  const out: FaultDecision = { delayMs: 0, abortStatus: 0 };
  const fault = {
    delay: { fixedDelayMs: 20, percentage: 50 },
    abort: { httpStatus: 503, percentage: 10 },
  };
  assertEquals(decideFault(fault, 0.49, 0.5, out), true);
  assertEquals(out, { delayMs: 20, abortStatus: 0 });
  decideFault(fault, 0.5, 0.09, out);
  assertEquals(out, { delayMs: 0, abortStatus: 503 });
  assertEquals(decideFault(fault, 0.9, 0.9, out), false);
  assertEquals(decideFault({ abort: { httpStatus: 500, percentage: 0 } }, 0, 0, out), false);
  assertEquals(decideFault(undefined, 0, 0, out), false);
});

Deno.test("headers: set replaces, add appends, remove wins, destination after route", () => {
  const plan = composeHeaderEdits([
    {
      set: [{ name: "x-a", value: "1" }],
      add: [{ name: "x-b", value: "2" }, { name: "x-c", value: "3" }],
      remove: ["x-c", "x-old"],
    },
    { set: [{ name: "x-b", value: "9" }], add: [], remove: [] },
    { set: [{ name: "content-length", value: "1" }], add: [], remove: ["host"] },
  ]);
  assertEquals([...plan.drop].sort(), ["x-a", "x-b", "x-c", "x-old"]);
  assertEquals(plan.appendText, "x-a: 1\r\nx-b: 9\r\n");
  const edited = applyHeaderPlan(plan, [
    { name: "X-A", value: "0" },
    { name: "x-keep", value: "k" },
    { name: "x-old", value: "o" },
  ]);
  assertEquals(edited.map((h) => `${h.name}=${h.value}`), ["x-keep=k", "x-a=1", "x-b=9"]);
});

Deno.test("headers: values cannot inject lines", () => {
  const plan = composeHeaderEdits([{
    set: [{ name: "x", value: "a\r\nb: c" }],
    add: [],
    remove: [],
  }]);
  assertEquals(plan.appendText, "x: ab: c\r\n");
});

const encoder = new TextEncoder();
function parsed(text: string) {
  const bytes = encoder.encode(text.replaceAll("\n", "\r\n") + "\r\n\r\n");
  const head = newHead();
  parseHead(bytes, 0, bytes.length, head, true);
  return head;
}

Deno.test("request view: header lookup by name on the parsed head, query split off", () => {
  const head = parsed(
    "GET /a/b?x=1&y=two HTTP/1.1\nHost: shop:8080\nService:  stock \nX-Multi: a\nx-multi: b",
  );
  assertEquals(headValue(head, "service"), "stock");
  assertEquals(headValue(head, "x-multi"), "a,b");
  assertEquals(headValue(head, "missing"), null);
  const view = new RequestView();
  view.reset(head, "GET", "/a/b?x=1&y=two", "shop:8080", undefined);
  assertEquals([view.path, view.query, view.port], ["/a/b", "x=1&y=two", 8080]);
  assertEquals(view.headers.get("host"), "shop:8080");
  const plan = composeHeaderEdits([{ set: [], add: [], remove: ["service"] }]);
  assertEquals([0, 1, 2].map((i) => dropsLine(plan, head, i)), [false, true, false]);
  assertEquals([authorityPort("a"), authorityPort("[::1]"), authorityPort("[::1]:81")], [
    80,
    80,
    81,
  ]);
});

const cors: RouteCorsPolicy = {
  allowOrigins: [{ exact: "https://a.example" }, { regex: "https://.*\\.b\\.example" }],
  allowMethods: "GET,POST",
  allowHeaders: "x-token",
  exposeHeaders: "x-trace",
  maxAgeSeconds: 60,
  allowCredentials: true,
};

Deno.test("cors: origins match exactly or by full regex; preflight and response headers", () => {
  assertEquals(originAllowed(cors, "https://a.example"), true);
  assertEquals(originAllowed(cors, "https://x.b.example"), true);
  assertEquals(originAllowed(cors, "https://x.b.example.evil"), false);
  assertEquals(originAllowed(cors, null), false);
  assertEquals(isPreflight("OPTIONS", "https://a.example", "POST"), true);
  assertEquals(isPreflight("OPTIONS", "https://a.example", null), false);
  assertEquals(
    preflightHeaders(cors, "https://a.example"),
    "access-control-allow-origin: https://a.example\r\naccess-control-allow-credentials: true\r\n" +
      "access-control-allow-methods: GET,POST\r\naccess-control-allow-headers: x-token\r\n" +
      "access-control-max-age: 60\r\n",
  );
  assertEquals(
    responseCorsHeaders({ ...cors, allowCredentials: false }, "https://a.example"),
    "access-control-allow-origin: https://a.example\r\naccess-control-expose-headers: x-trace\r\n",
  );
});

Deno.test("redirect: Location keeps what is not replaced; rewrite replaces the matched prefix", () => {
  assertEquals(
    redirectLocation({ redirectCode: 301, uri: "/new" }, "shop:8080", "/old", "q=1"),
    "http://shop:8080/new?q=1",
  );
  assertEquals(
    redirectLocation(
      { redirectCode: 302, authority: "other", scheme: "https", port: 443 },
      "shop",
      "/p",
      "",
    ),
    "https://other/p",
  );
  assertEquals(
    redirectLocation({ redirectCode: 301, uri: "/n?x=2" }, "shop", "/p", "q=1"),
    "http://shop/n?x=2",
  );
  assertEquals(
    rewriteTarget({ uri: "/v2" }, { uri: { prefix: "/api" } }, "/api/items", "a=b"),
    "/v2/items?a=b",
  );
  assertEquals(rewriteTarget({ uri: "/x" }, { uri: { exact: "/api" } }, "/api", ""), "/x");
  assertEquals(rewriteTarget({ authority: "a" }, undefined, "/api", ""), undefined);
});

Deno.test("mirror: percentage and Envoy's -shadow host", () => {
  assertEquals(shouldMirror(100, 0.999), true);
  assertEquals(shouldMirror(0, 0), false);
  assertEquals(shouldMirror(50, 0.49), true);
  assertEquals(shouldMirror(50, 0.5), false);
  assertEquals(shadowAuthority("reviews"), "reviews-shadow");
  assertEquals(shadowAuthority("reviews:9080"), "reviews-shadow:9080");
  assertEquals(shadowAuthority("[::1]"), "[::1]-shadow");
});

Deno.test("affinity: hash key from the cluster's policy; generated cookie with ttl", () => {
  const cluster = (hashPolicy: unknown): ClusterConfig => ({
    name: "c",
    service: "c",
    protocol: "http",
    endpoints: [],
    connectTimeoutMs: 1000,
    loadBalancer: { kind: "maglev", tableSize: 7, hashPolicy } as ClusterConfig["loadBalancer"],
  });
  const head = parsed("GET /p?user=u1 HTTP/1.1\nHost: c\nx-user: alice\nCookie: a=1; sid=s9");
  const view = new RequestView();
  view.reset(head, "GET", "/p?user=u1", "c", undefined);
  const out = { hashKey: undefined as string | undefined, setCookie: "" };
  assertEquals(
    requestHashKey(cluster({ kind: "header", name: "x-user" }), view, "1.2.3.4", out).hashKey,
    "alice",
  );
  assertEquals(
    requestHashKey(cluster({ kind: "query_parameter", name: "user" }), view, "", out).hashKey,
    "u1",
  );
  assertEquals(
    requestHashKey(cluster({ kind: "source_ip" }), view, "1.2.3.4", out).hashKey,
    "1.2.3.4",
  );
  assertEquals(
    requestHashKey(cluster({ kind: "cookie", name: "sid" }), view, "", out).hashKey,
    "s9",
  );
  const gen = requestHashKey(
    cluster({ kind: "cookie", name: affinityCookieName, ttlMs: 60_000, path: "/" }),
    view,
    "1.2.3.4",
    out,
  );
  assertEquals(gen.setCookie, `${affinityCookieName}=${gen.hashKey}; Path=/; Max-Age=60; HttpOnly`);
  const rr = { ...cluster(undefined), loadBalancer: { kind: "round_robin" } } as ClusterConfig;
  assertEquals(requestHashKey(rr, view, "1.2.3.4", out).hashKey, undefined);
});
