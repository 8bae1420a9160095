/**
 * @module
 * What a route does to a request and its response through a real proxy: `redirect` answered
 * locally with its Location and code, `rewrite` of the matched uri prefix and the authority,
 * request and response header edits (route, then destination), and CORS preflight answers and
 * response headers with Istio's semantics.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { TestClient } from "./support/proxy.ts";
import {
  type Backend,
  backend,
  catalogEntry,
  get,
  type RunningProxy,
  runProxy,
  snapshotOf,
  stopAll,
} from "./support/traffic.ts";

/** Answers with what arrived: path with query, Host and a few headers, as JSON. */
function echo(req: Request): Response {
  const url = new URL(req.url);
  return new Response(
    JSON.stringify({
      path: url.pathname + url.search,
      host: req.headers.get("host"),
      a: req.headers.get("x-a"),
      b: req.headers.get("x-b"),
      gone: req.headers.get("x-gone"),
      canary: req.headers.get("x-canary"),
    }),
    { headers: { "x-upstream": "yes", "x-secret": "s", "access-control-allow-origin": "*" } },
  );
}

const rules = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web }
spec:
  hosts: [web]
  http:
    - name: old
      match: [{ uri: { prefix: /old } }]
      redirect: { uri: /new, authority: "site:8080", redirectCode: 308 }
    - name: api
      match: [{ uri: { prefix: /api/ } }]
      rewrite: { uri: /v2/, authority: backend.internal }
      route: [{ destination: { host: app } }]
    - name: edits
      match: [{ uri: { prefix: /edit } }]
      headers:
        request: { set: { x-a: route }, add: { x-b: added }, remove: [x-gone] }
        response: { set: { x-upstream: replaced }, add: { x-extra: "1" }, remove: [x-secret] }
      route:
        - destination: { host: app }
          headers: { request: { set: { x-canary: "yes", x-a: destination } } }
    - name: cors
      match: [{ uri: { prefix: /cors } }]
      corsPolicy:
        allowOrigins: [{ exact: "https://ok.example" }, { regex: "https://.*[.]trusted[.]example" }]
        allowMethods: [GET, POST]
        allowHeaders: [x-token]
        exposeHeaders: [x-trace]
        maxAge: 90s
        allowCredentials: true
      route: [{ destination: { host: app } }]
`;

async function withWeb(fn: (client: TestClient, up: Backend, p: RunningProxy) => Promise<void>) {
  const backends: Backend[] = [];
  let p: RunningProxy | undefined;
  let client: TestClient | undefined;
  try {
    const up = await backend("app", {}, echo);
    backends.push(up);
    p = await runProxy(snapshotOf(rules, [catalogEntry("app", up)]));
    client = await TestClient.connect(p.outbound);
    await fn(client, up, p);
  } finally {
    client?.close();
    await stopAll(p, backends);
  }
}

Deno.test("redirect is answered locally with Location and code; the query is kept", async () => {
  await withWeb(async (client, up) => {
    const r = await client.request(get("web", "/old/page?x=1"));
    assertEquals(r.status, 308);
    assertEquals(r.headers.get("location"), "http://site:8080/new?x=1");
    assertEquals(r.body, "");
    assertEquals(up.requests.length, 0);
  });
});

Deno.test("rewrite replaces the matched prefix and the authority", async () => {
  await withWeb(async (client) => {
    const r = await client.request(get("web", "/api/items?q=2"));
    const seen = JSON.parse(r.body);
    assertEquals([seen.path, seen.host], ["/v2/items?q=2", "backend.internal"]);
    // Absolute-form requests are rewritten too.
    const abs = JSON.parse((await client.request("GET http://web/api/x HTTP/1.1\nHost: web")).body);
    assertEquals([abs.path, abs.host], ["/v2/x", "backend.internal"]);
  });
});

Deno.test("header edits: request set/add/remove, destination after route, response edits", async () => {
  await withWeb(async (client) => {
    const r = await client.request(get("web", "/edit", { "x-a": "client", "x-gone": "g" }));
    const seen = JSON.parse(r.body);
    assertEquals([seen.a, seen.b, seen.gone, seen.canary], ["destination", "added", null, "yes"]);
    assertEquals(r.headers.get("x-upstream"), "replaced");
    assertEquals(r.headers.get("x-extra"), "1");
    assertEquals(r.headers.get("x-secret"), undefined);
  });
});

Deno.test("CORS: allowed preflight answered locally; others forwarded; response headers", async () => {
  await withWeb(async (client, up) => {
    const pre = await client.request(
      get("web", "/cors", {
        origin: "https://a.trusted.example",
        "access-control-request-method": "POST",
      }, "OPTIONS"),
    );
    assertEquals(pre.status, 200);
    assertEquals(pre.headers.get("access-control-allow-origin"), "https://a.trusted.example");
    assertEquals(pre.headers.get("access-control-allow-methods"), "GET,POST");
    assertEquals(pre.headers.get("access-control-allow-headers"), "x-token");
    assertEquals(pre.headers.get("access-control-max-age"), "90");
    assertEquals(pre.headers.get("access-control-allow-credentials"), "true");
    assertEquals(up.requests.length, 0);

    // A disallowed origin's preflight goes upstream (Envoy continues the chain).
    const denied = await client.request(
      get("web", "/cors", {
        origin: "https://evil.example",
        "access-control-request-method": "GET",
      }, "OPTIONS"),
    );
    assertEquals(denied.headers.get("x-upstream"), "yes");
    assertEquals(up.requests.length, 1);

    const actual = await client.request(get("web", "/cors", { origin: "https://ok.example" }));
    assertEquals(actual.headers.get("access-control-allow-origin"), "https://ok.example");
    assertEquals(actual.headers.get("access-control-expose-headers"), "x-trace");
    assertEquals(actual.headers.get("access-control-allow-credentials"), "true");

    const other = await client.request(get("web", "/cors", { origin: "https://evil.example" }));
    // The upstream's own header passes unchanged for an origin the policy does not allow.
    assertEquals(other.headers.get("access-control-allow-origin"), "*");
    assert(other.headers.get("access-control-expose-headers") === undefined, "no expose");
  });
});
