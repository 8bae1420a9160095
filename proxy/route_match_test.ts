/**
 * @module
 * Every match type of a VirtualService HTTP route and their combinations: AND within a match,
 * OR across matches, first match wins in a route table, and rewrite of the matched prefix.
 */
import type { HttpMatchRequest } from "../lib/resources/virtual_service.ts";
import {
  compileMatch,
  compileMatchIndex,
  compileRouteTable,
  compileRouteTableWithIndex,
  type MatchRequest,
  rewritePath,
} from "./route_match.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function request(overrides: Partial<MatchRequest> & { headerMap?: Record<string, string> } = {}) {
  const { headerMap, ...rest } = overrides;
  return {
    method: "GET",
    path: "/api/v1/items",
    query: "",
    authority: "reviews:9080",
    headers: new Headers(headerMap ?? {}),
    sourceLabels: { app: "productpage", version: "v1" },
    port: 9080,
    ...rest,
  };
}

function check(match: HttpMatchRequest[] | undefined, cases: [MatchRequest, boolean][]): void {
  const predicate = compileMatch(match);
  cases.forEach(([req, expected], i) => {
    assert(
      predicate(req) === expected,
      `${JSON.stringify(match)} case ${i}: expected ${expected}`,
    );
  });
}

Deno.test("no match list matches every request", () => {
  check(undefined, [[request(), true]]);
  check([], [[request({ method: "DELETE" }), true]]);
});

Deno.test("uri exact, prefix and regex (full match)", () => {
  check([{ uri: { exact: "/api/v1/items" } }], [
    [request(), true],
    [request({ path: "/api/v1/items/2" }), false],
  ]);
  check([{ uri: { prefix: "/api/" } }], [
    [request(), true],
    [request({ path: "/apix" }), false],
  ]);
  check([{ uri: { regex: "/api/v[0-9]+/items" } }], [
    [request(), true],
    [request({ path: "/api/v1/items/extra" }), false], // anchored at the end
    [request({ path: "/x/api/v1/items" }), false], // anchored at the start
  ]);
  check([{ uri: { regex: "a|/api/v1/items" } }], [[request(), true], [
    request({ path: "ab" }),
    false,
  ]]);
});

Deno.test("ignoreUriCase applies to exact and prefix uri matches only", () => {
  check([{ uri: { exact: "/API/V1/ITEMS" }, ignoreUriCase: true }], [
    [request(), true],
    [request({ path: "/api/v1/items2" }), false],
  ]);
  check([{ uri: { prefix: "/Api" }, ignoreUriCase: true }], [[request(), true]]);
  check([{ uri: { prefix: "/Api" } }], [[request(), false]]);
  check([{ uri: { regex: "/API.*" }, ignoreUriCase: true }], [[request(), false]]);
});

Deno.test("method and authority", () => {
  check([{ method: { exact: "POST" } }], [
    [request(), false],
    [request({ method: "POST" }), true],
  ]);
  check([{ method: { regex: "GET|HEAD" } }], [[request(), true], [
    request({ method: "PUT" }),
    false,
  ]]);
  check([{ authority: { prefix: "reviews" } }], [
    [request(), true],
    [request({ authority: "ratings" }), false],
  ]);
  check([{ authority: { exact: "reviews" } }], [[request(), false]]);
});

Deno.test("headers: exact, prefix, regex, presence; names are case-insensitive", () => {
  const h = { "x-user": "jason", "x-env": "staging-2" };
  check([{ headers: { "x-user": { exact: "jason" } } }], [
    [request({ headerMap: h }), true],
    [request({ headerMap: { "X-User": "jason" } }), true],
    [request({ headerMap: { "x-user": "json" } }), false],
    [request(), false],
  ]);
  check([{ headers: { "x-env": { prefix: "staging" } } }], [[request({ headerMap: h }), true]]);
  check([{ headers: { "x-env": { regex: "staging-\\d" } } }], [
    [request({ headerMap: h }), true],
    [request({ headerMap: { "x-env": "staging-22" } }), false],
  ]);
  check([{ headers: { "x-user": {} } }], [[request({ headerMap: h }), true], [request(), false]]);
});

Deno.test("withoutHeaders: absent or not matching", () => {
  check([{ withoutHeaders: { "x-debug": {} } }], [
    [request(), true],
    [request({ headerMap: { "x-debug": "1" } }), false],
  ]);
  check([{ withoutHeaders: { "x-user": { exact: "admin" } } }], [
    [request(), true],
    [request({ headerMap: { "x-user": "jason" } }), true],
    [request({ headerMap: { "x-user": "admin" } }), false],
  ]);
});

Deno.test("queryParams from a raw query string or URLSearchParams", () => {
  const match: HttpMatchRequest[] = [{ queryParams: { debug: { exact: "on" } } }];
  check(match, [
    [request({ query: "?a=1&debug=on" }), true],
    [request({ query: "debug=off" }), false],
    [request({ query: new URLSearchParams("debug=on") }), true],
    [request({ query: undefined }), false],
  ]);
  check([{ queryParams: { v: { regex: "[0-9]+" } } }], [
    [request({ query: "v=12" }), true],
    [request({ query: "v=1a" }), false],
  ]);
  check([{ queryParams: { flag: {} } }], [[request({ query: "flag" }), true], [request(), false]]);
});

Deno.test("sourceLabels and port", () => {
  check([{ sourceLabels: { app: "productpage" } }], [
    [request(), true],
    [request({ sourceLabels: { app: "other" } }), false],
    [request({ sourceLabels: undefined }), false],
  ]);
  check([{ sourceLabels: { app: "productpage", version: "v2" } }], [[request(), false]]);
  check([{ port: 9080 }], [[request(), true], [request({ port: 80 }), false]]);
});

Deno.test("conditions in one match are ANDed, matches are ORed", () => {
  const and: HttpMatchRequest[] = [{
    uri: { prefix: "/api" },
    method: { exact: "GET" },
    headers: { "x-user": { exact: "jason" } },
  }];
  check(and, [
    [request({ headerMap: { "x-user": "jason" } }), true],
    [request({ headerMap: { "x-user": "jason" }, method: "POST" }), false],
    [request({ headerMap: { "x-user": "jason" }, path: "/web" }), false],
    [request(), false],
  ]);
  const or: HttpMatchRequest[] = [
    { uri: { exact: "/health" } },
    { headers: { "x-user": { exact: "jason" } } },
    { method: { exact: "DELETE" } },
  ];
  check(or, [
    [request({ path: "/health" }), true],
    [request({ headerMap: { "x-user": "jason" } }), true],
    [request({ method: "DELETE" }), true],
    [request(), false],
  ]);
  const index = compileMatchIndex(or);
  assert(index(request({ method: "DELETE" })) === 2, "index of the matching alternative");
  assert(index(request()) === -1, "-1 when nothing matches");
});

Deno.test("the seed's route-by-header table: first matching route wins", () => {
  const services = ["orderservice", "stockservice", "paymentservice"];
  const table = compileRouteTable([
    ...services.map((s) => ({ match: [{ headers: { service: { exact: s } } }], value: s })),
    { match: [{ uri: { prefix: "/" } }], value: "fallback" },
    { value: "unreachable" },
  ]);
  for (const s of services) {
    assert(table(request({ headerMap: { service: s } })) === s, `routes ${s}`);
  }
  assert(table(request({ headerMap: { service: "nope" } })) === "fallback", "fallback");
  const none = compileRouteTable([{ match: [{ method: { exact: "PUT" } }], value: 1 }]);
  assert(none(request()) === undefined, "no route matches");
});

Deno.test("rewrite.uri replaces the matched prefix, or the whole path", () => {
  assert(rewritePath("/api/v1/x", { uri: { prefix: "/api/v1" } }, "/v2") === "/v2/x", "prefix");
  assert(rewritePath("/a/b", { uri: { exact: "/a/b" } }, "/c") === "/c", "exact");
  assert(rewritePath("/a/b", undefined, "/v2/") === "/v2/a/b", "no uri match: prefix '/'");
});

Deno.test("route table with index reports the winning route and alternative", () => {
  const routes: { match?: HttpMatchRequest[] }[] = [
    { match: [{ method: { exact: "PUT" } }] },
    { match: [{ uri: { exact: "/x" } }, { uri: { prefix: "/api/" } }] },
    {},
  ];
  const lookup = compileRouteTableWithIndex(routes);
  const out = { routeIndex: -1, matchIndex: -1 };
  const hit = lookup(request(), out)!;
  assert(hit.routeIndex === 1 && hit.matchIndex === 1, `hit ${JSON.stringify(hit)}`);
  const matched = routes[hit.routeIndex].match![hit.matchIndex];
  assert(rewritePath("/api/v1/items", matched, "/v2/") === "/v2/v1/items", "rewrite");
  assert(lookup(request({ path: "/other" }), out)!.routeIndex === 2, "catch-all route");
  const predicate = compileMatch([{ headers: { a: { exact: "1" } }, withoutHeaders: { a: {} } }]);
  assert(!predicate(request({ headerMap: { a: "1" } })), "contradictory match never holds");
});

Deno.test("indexed route tables keep first-match order (compared with a plain scan)", () => {
  // 40 routes: most dispatch on header `service`, some also need a path; others are unkeyed
  // and interleaved, so the index must merge both kinds in route order.
  const routes: { match?: HttpMatchRequest[] }[] = [];
  for (let i = 0; i < 40; i++) {
    if (i % 7 === 3) routes.push({ match: [{ uri: { prefix: `/p${i % 3}` } }] });
    else if (i % 11 === 5) routes.push({ match: [{ headers: { service: { prefix: "s1" } } }] });
    else if (i % 5 === 0) {
      routes.push({
        match: [
          { headers: { service: { exact: `s${i % 9}` } }, uri: { prefix: "/p1" } },
          { headers: { service: { exact: `s${(i + 1) % 9}` } } },
        ],
      });
    } else routes.push({ match: [{ headers: { service: { exact: `s${i % 9}` } } }] });
  }
  routes.push({});
  const cases: [string, MatchRequest][] = [];
  for (const service of [undefined, "s0", "s1", "s4", "s8", "s10", "zz"]) {
    for (const path of ["/p0/a", "/p1/b", "/p2", "/q"]) {
      const req = request({ path, headerMap: service ? { service } : {} });
      cases.push([`service=${service} path=${path}`, req]);
    }
  }
  assertSameAsScan(routes, cases);
});

Deno.test("path-indexed route tables keep first-match order (compared with a plain scan)", () => {
  // Path-prefix and exact-path routes of several lengths, some needing a method too, some with
  // two alternatives on different prefixes, interleaved with routes the index cannot key (a
  // case-insensitive prefix, a regex, no uri at all): every candidate list must be merged in
  // route order.
  const routes: { match?: HttpMatchRequest[] }[] = [];
  for (let i = 0; i < 60; i++) {
    const prefix = ["/api/", `/api/s${i % 7}/`, `/static/${i % 3}`, "/", `/api/s${i % 4}`][i % 5];
    if (i % 13 === 6) routes.push({ match: [{ uri: { prefix: "/API/S1" }, ignoreUriCase: true }] });
    else if (i % 17 === 9) routes.push({ match: [{ uri: { regex: "/api/s[0-9]+/x" } }] });
    else if (i % 19 === 11) routes.push({ match: [{ method: { exact: "POST" } }] });
    else if (i % 6 === 1) routes.push({ match: [{ uri: { exact: `/api/s${i % 7}/x` } }] });
    else if (i % 4 === 2) {
      routes.push({
        match: [{ uri: { prefix }, method: { exact: "PUT" } }, { uri: { prefix: "/static/" } }],
      });
    } else routes.push({ match: [{ uri: { prefix }, method: { exact: i % 3 ? "GET" : "PUT" } }] });
  }
  const cases: [string, MatchRequest][] = [];
  const paths = ["/", "/api", "/api/", "/api/s1", "/api/s1/x", "/api/s3/y", "/API/s1/x"];
  for (const path of [...paths, "/static/1/a", "/static/", "/other", ""]) {
    for (const method of ["GET", "PUT", "POST"]) {
      cases.push([`${method} ${path}`, request({ path, method })]);
    }
  }
  assertSameAsScan(routes, cases);
});

/**
 * Asserts that the indexed table picks, for each case, the route and alternative a plain scan
 * in route order picks (or none when the scan finds none).
 */
function assertSameAsScan(
  routes: { match?: HttpMatchRequest[] }[],
  cases: [string, MatchRequest][],
): void {
  const indexed = compileRouteTableWithIndex(routes);
  const scans = routes.map((r) => compileMatchIndex(r.match));
  const out = { routeIndex: -1, matchIndex: -1 };
  for (const [label, req] of cases) {
    let expected = -1;
    let expectedAlternative = -1;
    for (let i = 0; i < scans.length && expected < 0; i++) {
      const alternative = scans[i](req);
      if (alternative >= 0) [expected, expectedAlternative] = [i, alternative];
    }
    const hit = indexed(req, out);
    assert(
      (hit?.routeIndex ?? -1) === expected &&
        (hit === undefined || hit.matchIndex === expectedAlternative),
      `${label}: index gave ${JSON.stringify(hit)}, scan ${expected}`,
    );
  }
}
