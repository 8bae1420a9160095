/**
 * @module
 * VirtualService request matching through a real proxy: every match type (uri exact, prefix
 * with ignoreUriCase, regex; method; authority; headers exact/regex/present; queryParams;
 * withoutHeaders; sourceLabels; port), AND within one match, OR across matches, first match
 * wins, no match -> 404 NR; and the seed example (`route-by-header` with `hosts: ["*"]` over
 * three ServiceEntries).
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

/** Answers with the service the proxy addressed (`x-weft-destination`). */
const echoDestination = (req: Request) =>
  new Response(req.headers.get("x-weft-destination") ?? "?");

const services = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m"];

const shopRules = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop }
spec:
  hosts: [shop]
  http:
    - name: uri-exact
      match: [{ uri: { exact: /exact } }]
      route: [{ destination: { host: a } }]
    - name: uri-prefix-ignore-case
      match: [{ uri: { prefix: /Pre }, ignoreUriCase: true }]
      route: [{ destination: { host: b } }]
    - name: uri-regex
      match: [{ uri: { regex: "/items/[0-9]+" } }]
      route: [{ destination: { host: c } }]
    - name: method
      match: [{ method: { exact: DELETE } }]
      route: [{ destination: { host: d } }]
    - name: authority
      match: [{ authority: { exact: "shop:8181" } }]
      route: [{ destination: { host: e } }]
    - name: header-regex
      match: [{ headers: { x-user: { regex: "adm.*" } } }]
      route: [{ destination: { host: f } }]
    - name: header-present
      match: [{ headers: { x-present: {} } }]
      route: [{ destination: { host: g } }]
    - name: query
      match: [{ queryParams: { v: { exact: "2" } } }]
      route: [{ destination: { host: h } }]
    - name: and
      match: [{ uri: { prefix: /and }, headers: { x-a: { exact: "1" } } }]
      route: [{ destination: { host: i } }]
    - name: or
      match: [{ uri: { prefix: /or1 } }, { uri: { prefix: /or2 } }]
      route: [{ destination: { host: j } }]
    - name: without
      match: [{ uri: { prefix: /w }, withoutHeaders: { x-block: {} } }]
      route: [{ destination: { host: k } }]
    - name: source
      match: [{ uri: { prefix: /src }, sourceLabels: { app: web } }]
      route: [{ destination: { host: l } }]
    - name: port
      match: [{ port: 9090 }]
      route: [{ destination: { host: m } }]
`;

async function withShop(
  localLabels: Record<string, string> | undefined,
  fn: (client: TestClient, p: RunningProxy) => Promise<void>,
): Promise<void> {
  const backends: Backend[] = [];
  let p: RunningProxy | undefined;
  let client: TestClient | undefined;
  try {
    const up = await backend("echo", {}, echoDestination);
    backends.push(up);
    const localServices = localLabels
      ? [{
        name: "web",
        port: 1,
        host: "127.0.0.1",
        protocol: "http" as const,
        labels: localLabels,
      }]
      : [];
    p = await runProxy(
      snapshotOf(shopRules, services.map((s) => catalogEntry(s, up)), { localServices }),
    );
    client = await TestClient.connect(p.outbound);
    await fn(client, p);
  } finally {
    client?.close();
    await stopAll(p, backends);
  }
}

Deno.test("every match type selects its rule; no match is 404 NR", async () => {
  await withShop({ app: "web" }, async (client) => {
    const cases: [string, string][] = [
      [get("shop", "/exact"), "a"],
      [get("shop", "/prefix/x"), "b"],
      [get("shop", "/PREFIX"), "b"],
      [get("shop", "/items/42"), "c"],
      [get("shop", "/items/42/x"), "?404"],
      [get("shop", "/x", {}, "DELETE"), "d"],
      [get("shop:8181", "/x"), "e"],
      [get("shop", "/x", { "x-user": "admin" }), "f"],
      [get("shop", "/x", { "x-user": "root" }), "?404"],
      [get("shop", "/x", { "X-Present": "" }), "g"],
      [get("shop", "/x?u=1&v=2"), "h"],
      [get("shop", "/x?v=22"), "?404"],
      [get("shop", "/and", { "x-a": "1" }), "i"],
      [get("shop", "/and"), "?404"],
      [get("shop", "/or1"), "j"],
      [get("shop", "/or2/x"), "j"],
      [get("shop", "/w"), "k"],
      [get("shop", "/w", { "x-block": "yes" }), "?404"],
      [get("shop", "/src"), "l"],
      [get("shop:9090", "/x"), "m"],
      [get("shop", "/nothing"), "?404"],
    ];
    for (const [head, expected] of cases) {
      const r = await client.request(head);
      const got = r.status === 404 ? `?${r.status}` : r.body;
      assertEquals(got, expected, head.split("\n").join(" | "));
      if (r.status === 404) assertEquals(r.headers.get("x-weft-flag"), "NR");
    }
  });
});

Deno.test("rules are tried in order: the first match wins over later ones", async () => {
  await withShop({ app: "web" }, async (client) => {
    // Matches uri-exact, method and header-regex: the first listed rule wins.
    const r = await client.request(get("shop", "/exact", { "x-user": "admin" }, "DELETE"));
    assertEquals(r.body, "a");
    // Matches header-regex and query: header-regex comes first.
    assertEquals((await client.request(get("shop", "/x?v=2", { "x-user": "adm" }))).body, "f");
  });
});

Deno.test("sourceLabels need the local workload's labels", async () => {
  await withShop({ app: "api" }, async (client) => {
    assertEquals((await client.request(get("shop", "/src"))).status, 404);
  });
  await withShop(undefined, async (client) => {
    assertEquals((await client.request(get("shop", "/src"))).status, 404);
  });
});

const seed = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: orderservice }
spec:
  hosts: [orderservice]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: ORDER_PORT } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: stockservice }
spec:
  hosts: [stockservice]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: STOCK_PORT } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: paymentservice }
spec:
  hosts: [paymentservice]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: PAYMENT_PORT } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: route-by-header }
spec:
  hosts: ["*"]
  http:
    - name: orderservice
      match: [{ headers: { service: { exact: orderservice } } }]
      route: [{ destination: { host: orderservice } }]
    - name: stockservice
      match: [{ headers: { service: { exact: stockservice } } }]
      route: [{ destination: { host: stockservice } }]
    - name: paymentservice
      match: [{ headers: { service: { exact: paymentservice } } }]
      route: [{ destination: { host: paymentservice } }]
`;

Deno.test("seed example: route-by-header over three ServiceEntries", async () => {
  const backends = [await backend("order"), await backend("stock"), await backend("payment")];
  let p: RunningProxy | undefined;
  let client: TestClient | undefined;
  try {
    const yaml = seed
      .replace("ORDER_PORT", String(backends[0].addr.port))
      .replace("STOCK_PORT", String(backends[1].addr.port))
      .replace("PAYMENT_PORT", String(backends[2].addr.port));
    p = await runProxy(snapshotOf(yaml, []));
    client = await TestClient.connect(p.outbound);
    for (
      const [service, expected] of [["orderservice", "order"], ["stockservice", "stock"], [
        "paymentservice",
        "payment",
      ]]
    ) {
      const r = await client.request(get("anything.local", "/api", { service }));
      assertEquals([r.status, r.body], [200, expected], service);
    }
    // Absolute-form proxy request to an unknown host, header routed.
    const abs = await client.request(
      `GET http://frontend/x HTTP/1.1\nHost: frontend\nservice: paymentservice`,
    );
    assertEquals(abs.body, "payment");
    const none = await client.request(get("anything.local", "/api", { service: "nope" }));
    assertEquals([none.status, none.headers.get("x-weft-flag")], [404, "NR"]);
    // A known host keeps its default route: * is a fallback.
    const direct = await client.request(get("stockservice", "/", { service: "orderservice" }));
    assertEquals(direct.body, "stock");
    assert(
      p.log.some((e) => e.cluster === "outbound|paymentservice"),
      "access log names the cluster",
    );
  } finally {
    client?.close();
    await stopAll(p, backends);
  }
});
