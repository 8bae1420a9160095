/**
 * @module
 * RequestPlan decisions from a snapshot compiled out of Istio resources: no route, redirect,
 * CORS preflight, fault, weighted destination with a fixed random sequence, hash key and
 * affinity cookie, rewrite, header plans and mirror; and the bytes of a mirror copy.
 */
import { compileSnapshot, parseNodeConfig, type Snapshot } from "../../lib/mod.ts";
import { parseResources } from "../../lib/resources/registry.ts";
import { newHead, parseHead } from "../head.ts";
import { mirrorHeadText, MirrorSender, withBody } from "./mirror.ts";
import { Decision, RequestPlan } from "./request_plan.ts";

function assertEquals<T>(actual: T, expected: T, what = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what ? what + ": " : ""}expected ${e}, got ${a}`);
}

const yaml = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: cart }
spec:
  host: cart
  trafficPolicy:
    loadBalancer: { consistentHash: { httpCookie: { name: sid, path: /, ttl: 60s } } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop }
spec:
  hosts: [shop]
  http:
    - match: [{ uri: { prefix: /old } }]
      redirect: { uri: /new }
    - match: [{ uri: { prefix: /cors } }]
      corsPolicy: { allowOrigins: [{ exact: "https://o" }], allowMethods: [GET] }
      route: [{ destination: { host: cart } }]
    - match: [{ uri: { prefix: /api/ } }]
      rewrite: { uri: /, authority: cart.internal }
      headers: { request: { set: { x-a: "1" } }, response: { remove: [server] } }
      mirror: { host: cart }
      fault: { abort: { httpStatus: 503, percentage: { value: 50 } } }
      route:
        - { destination: { host: cart }, weight: 70 }
        - { destination: { host: other }, weight: 30 }
`;

function snapshot(): Snapshot {
  const resources = parseResources(yaml);
  const entry = (service: string, port: number) => ({
    service,
    node: `n${port}`,
    nodeId: `n${port}`,
    hostname: "127.0.0.1",
    port,
    protocol: "http" as const,
    labels: {},
    healthy: true,
  });
  return compileSnapshot({
    nodeName: "local",
    localServices: [],
    catalog: [entry("cart", 1001), entry("other", 1002)],
    tuning: parseNodeConfig({}).proxy,
    virtualServices: resources.filter((r) => r.kind === "VirtualService"),
    destinationRules: resources.filter((r) => r.kind === "DestinationRule"),
  }, 1);
}

const encoder = new TextEncoder();
function head(text: string) {
  const bytes = encoder.encode(text.replaceAll("\n", "\r\n") + "\r\n\r\n");
  const h = newHead();
  parseHead(bytes, 0, bytes.length, h, true);
  return h;
}

function sequence(...values: number[]) {
  let i = 0;
  return () => values[i++ % values.length];
}

Deno.test("plan: no route, redirect and preflight are decided before any upstream work", () => {
  const snap = snapshot();
  const plan = new RequestPlan();
  const h = head("GET / HTTP/1.1\nHost: shop");
  assertEquals(
    plan.decide(snap, h, "GET", "/nothing", "shop", "shop", "", Math.random),
    Decision.NoRoute,
  );
  assertEquals(
    plan.decide(snap, h, "GET", "/old?q=1", "shop", "shop", "", Math.random),
    Decision.Redirect,
  );
  assertEquals(plan.location, "http://shop/new?q=1");
  const pre = head(
    "OPTIONS /cors HTTP/1.1\nHost: shop\nOrigin: https://o\nAccess-Control-Request-Method: GET",
  );
  assertEquals(
    plan.decide(snap, pre, "OPTIONS", "/cors", "shop", "shop", "", Math.random),
    Decision.Preflight,
  );
  const actual = head("GET /cors HTTP/1.1\nHost: shop\nOrigin: https://o");
  assertEquals(
    plan.decide(snap, actual, "GET", "/cors", "shop", "shop", "1.2.3.4", Math.random),
    Decision.Forward,
  );
  assertEquals(plan.responseExtra.startsWith("access-control-allow-origin: https://o\r\n"), true);
  assertEquals(plan.responseExtra.includes("set-cookie: sid="), true, "affinity cookie generated");
  assertEquals(typeof plan.pick.hashKey, "string");
});

Deno.test("plan: fault, weighted destination, rewrite, header plans and mirror", () => {
  const snap = snapshot();
  const plan = new RequestPlan();
  const h = head("GET /api/items?x=1 HTTP/1.1\nHost: shop\nServer: s");
  // Draws: fault delay (unused), fault abort, destination, mirror.
  assertEquals(
    plan.decide(snap, h, "GET", "/api/items?x=1", "shop", "shop", "", sequence(0, 0.4, 0.8, 0)),
    Decision.Forward,
  );
  assertEquals(plan.fault.abortStatus, 503);
  assertEquals(plan.cluster?.name, "outbound|other");
  assertEquals([plan.upstreamTarget, plan.upstreamAuthority], ["/items?x=1", "cart.internal"]);
  assertEquals(plan.requestPlan?.appendText, "x-a: 1\r\n");
  assertEquals(
    plan.dropsResponseLine(
      head("HTTP/1.1 200 OK\nServer: s".replace("HTTP/1.1 200 OK", "GET / HTTP/1.1")),
      0,
    ),
    true,
  );
  assertEquals(plan.mirrorCluster?.name, "outbound|cart");
  plan.decide(snap, h, "GET", "/api/items", "shop", "shop", "", sequence(0, 0.6, 0.1, 0));
  assertEquals([plan.fault.abortStatus, plan.cluster?.name], [0, "outbound|cart"]);
});

Deno.test("mirror copy: shadow host, edited headers, body and connection close", () => {
  const h = head(
    "POST /p HTTP/1.1\nHost: shop:80\nX-Keep: k\nConnection: keep-alive\nContent-Length: 2",
  );
  const text = mirrorHeadText(h, {
    method: "POST",
    target: "/p",
    authority: "shop:80",
    destinationService: "cart",
    clientIp: "10.0.0.1",
    forwardedFor: "",
    requestPlan: null,
    bodyLength: 2,
  });
  const bytes = withBody(text, encoder.encode("hi"));
  assertEquals(
    new TextDecoder().decode(bytes),
    "POST /p HTTP/1.1\r\nhost: shop-shadow:80\r\nx-keep: k\r\nx-forwarded-for: 10.0.0.1\r\n" +
      "x-weft-destination: cart\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
  );
});

Deno.test("mirror sender: copies are sent, failures counted, close settles everything", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      await conn.read(new Uint8Array(1024));
      await conn.write(encoder.encode("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
      conn.close();
    }
  })().catch(() => {});
  const sender = new MirrorSender(2, 2000);
  const results: boolean[] = [];
  const done = (ok: boolean) => void results.push(ok);
  sender.send("127.0.0.1", listener.addr.port, encoder.encode("GET / HTTP/1.1\r\n\r\n"), done);
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = closed.addr.port;
  closed.close();
  sender.send("127.0.0.1", deadPort, encoder.encode("GET / HTTP/1.1\r\n\r\n"), done);
  sender.send("127.0.0.1", deadPort, encoder.encode("GET / HTTP/1.1\r\n\r\n"), done);
  // The third copy was skipped (two in flight); wait for the other two to settle.
  for (let i = 0; i < 200 && results.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  assertEquals(sender.inFlight, 0);
  await sender.close();
  listener.close();
  await serving;
  assertEquals(sender.counts, { sent: 1, failed: 1, skipped: 1 });
  assertEquals(results.sort(), [false, false, true]);
});
