/**
 * @module
 * Route selection over a snapshot: exact host, `*.suffix` and `*` fallbacks, VirtualService
 * matches through the compiled table (cached per virtual host), path-prefix default routes,
 * and the local workload labels used for `sourceLabels`.
 */
import type { RouteConfig, Snapshot, VirtualHostConfig } from "../lib/mod.ts";
import type { MatchRequest } from "./route_match.ts";
import { localSourceLabels, newRouteSelection, routeOutbound, selectRoute } from "./router.ts";
import { buildSnapshot, endpoint } from "../tests/support/proxy.ts";

function assertEquals<T>(actual: T, expected: T, what = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what ? what + ": " : ""}expected ${e}, got ${a}`);
}

function route(name: string, matches?: RouteConfig["matches"]): RouteConfig {
  return {
    name,
    match: { pathPrefix: "/" },
    destinations: [{ cluster: "outbound|a", weight: 100 }],
    timeoutMs: 1000,
    virtualService: "default/vs",
    ...(matches ? { matches } : {}),
  };
}

function withHosts(hosts: Record<string, RouteConfig[]>): Snapshot {
  const base = buildSnapshot({
    outbound: { a: { endpoints: [endpoint({ hostname: "127.0.0.1", port: 1 })] } },
  });
  const outbound = new Map<string, VirtualHostConfig>(base.outbound);
  for (const [host, routes] of Object.entries(hosts)) {
    outbound.set(host, { name: host, domains: [host], routes });
  }
  return { ...base, outbound };
}

function req(path: string, headers: Record<string, string> = {}, method = "GET"): MatchRequest {
  const q = path.indexOf("?");
  return {
    method,
    path: q < 0 ? path : path.slice(0, q),
    query: q < 0 ? "" : path.slice(q + 1),
    authority: "x",
    headers: new Headers(headers),
  };
}

Deno.test("selectRoute: exact host, then *.suffix, then *", () => {
  const snap = withHosts({
    "*": [route("star")],
    "*.example.com": [route("suffix")],
    "api.example.com": [route("exact")],
  });
  const out = newRouteSelection();
  const name = (host: string) => selectRoute(snap, host, req("/"), out).route?.name;
  assertEquals(name("api.example.com"), "exact");
  assertEquals(name("b.a.example.com"), "suffix");
  assertEquals(name("unknown"), "star");
  assertEquals(name("a"), "default", "a known service keeps its own route");
});

Deno.test("selectRoute: first matching rule wins and reports the matched alternative", () => {
  const snap = withHosts({
    "*": [
      route("by-header", [{ headers: { service: { exact: "stock" } } }]),
      route("by-path", [{ method: { exact: "POST" } }, { uri: { prefix: "/api" } }]),
    ],
  });
  const out = newRouteSelection();
  selectRoute(snap, "h", req("/api/x", { service: "stock" }), out);
  assertEquals(out.route?.name, "by-header");
  selectRoute(snap, "h", req("/api/x"), out);
  assertEquals([out.route?.name, out.matched], ["by-path", { uri: { prefix: "/api" } }]);
  assertEquals(selectRoute(snap, "h", req("/other"), out).route, undefined);
});

Deno.test("routeOutbound: default routes still match on their path prefix", () => {
  const snap = withHosts({
    svc: [{ ...route("api"), virtualService: undefined, match: { pathPrefix: "/api" } }],
  });
  assertEquals(routeOutbound(snap, "svc", "/api/x")?.route.name, "api");
  assertEquals(routeOutbound(snap, "svc", "/web"), undefined);
});

Deno.test("localSourceLabels: labels shared by every local service", () => {
  const one = buildSnapshot({ inbound: { web: { hostname: "127.0.0.1", port: 1 } } });
  assertEquals(localSourceLabels(one), {});
  const labelled = (labels: Record<string, string>[]) => {
    const s = buildSnapshot({});
    const inbound = new Map(labels.map((l, i) => [
      `s${i}`,
      {
        ...s.clusters.get("x")!,
        name: `inbound|s${i}`,
        endpoints: [endpoint({ hostname: "h", port: i }, { labels: l })],
      },
    ]));
    return { ...s, inbound } as Snapshot;
  };
  assertEquals(localSourceLabels(labelled([{ app: "web", version: "v1" }])), {
    app: "web",
    version: "v1",
  });
  assertEquals(
    localSourceLabels(labelled([{ app: "web", version: "v1" }, { app: "api", version: "v1" }])),
    { version: "v1" },
  );
});
