/**
 * @module
 * Proxy behaviour over real loopback sockets: routing by Host and by absolute URL, round
 * robin, keep-alive reuse, inbound delivery by `x-weft-destination`, header handling and the
 * local replies with their response flags.
 */
import { type Clock, FakeClock, Registry, silentLogger, type Snapshot } from "../lib/mod.ts";
import { type AccessLogEntry, Proxy } from "../proxy/mod.ts";
import {
  buildSnapshot,
  endpoint,
  oneRequest,
  startRawUpstream,
  startUpstream,
  TestClient,
} from "./support/proxy.ts";
import { eventually } from "./support/assert.ts";
import { settledFlag, within } from "./support/time_guard.ts";

function assertEquals<T>(actual: T, expected: T, what = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what ? what + ": " : ""}expected ${e}, got ${a}`);
}

function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(what);
}

const loopback = { hostname: "127.0.0.1", port: 0 };

/** Starts a proxy on ephemeral ports; with `clock`, its timers (route timeout...) run on it. */
async function startProxy(snapshot: Snapshot, log?: AccessLogEntry[], clock?: Clock) {
  const metrics = new Registry();
  const proxy = new Proxy({
    snapshot,
    logger: silentLogger,
    metrics,
    accessLog: log ? (e) => log.push(e) : undefined,
    clock,
  });
  const addrs = await proxy.start({ outbound: loopback, inbound: loopback });
  return { proxy, metrics, ...addrs };
}

Deno.test("routes by Host header, case-insensitively and ignoring the port", async () => {
  const up = await startUpstream((req) => new Response(`path=${new URL(req.url).pathname}`));
  const p = await startProxy(
    buildSnapshot({ outbound: { reviews: { endpoints: [endpoint(up.addr)] } } }),
  );
  try {
    const r = await oneRequest(p.outbound, "GET /a/b?q=1 HTTP/1.1\nHost: Reviews:9080");
    assertEquals(r.status, 200);
    assertEquals(r.body, "path=/a/b");
    assertEquals(up.requests[0].headers.get("host"), "Reviews:9080");
  } finally {
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("routes a proxy request with an absolute URL and rewrites Host", async () => {
  const up = await startUpstream((req) => new Response(`path=${new URL(req.url).pathname}`));
  const p = await startProxy(
    buildSnapshot({ outbound: { reviews: { endpoints: [endpoint(up.addr)] } } }),
  );
  try {
    const r = await oneRequest(
      p.outbound,
      "GET http://reviews/x/y HTTP/1.1\nHost: reviews\nProxy-Connection: keep-alive",
    );
    assertEquals(r.status, 200);
    assertEquals(r.body, "path=/x/y");
    const h = up.requests[0].headers;
    assertEquals(h.get("host"), "reviews");
    assertEquals(h.get("proxy-connection"), null, "proxy-connection removed");
  } finally {
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("round robin spreads requests evenly over three upstreams", async () => {
  const ups = await Promise.all([startUpstream(), startUpstream(), startUpstream()]);
  const p = await startProxy(buildSnapshot({
    outbound: { svc: { endpoints: ups.map((u) => endpoint(u.addr)) } },
  }));
  const client = await TestClient.connect(p.outbound);
  try {
    const counts = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = await client.request("GET / HTTP/1.1\nHost: svc");
      assertEquals(r.status, 200);
      counts.set(r.body, (counts.get(r.body) ?? 0) + 1);
    }
    assertEquals([...counts.values()], [10, 10, 10], "requests per upstream");
  } finally {
    client.close();
    await p.proxy.stop();
    await Promise.all(ups.map((u) => u.close()));
  }
});

Deno.test("sequential requests reuse one upstream connection", async () => {
  const up = startRawUpstream();
  const p = await startProxy(
    buildSnapshot({ outbound: { svc: { endpoints: [endpoint(up.addr)] } } }),
  );
  try {
    for (let i = 1; i <= 50; i++) {
      // A new client connection each time: reuse must come from the upstream pool.
      const r = await oneRequest(p.outbound, "GET / HTTP/1.1\nHost: svc");
      assertEquals(r.body, String(i));
    }
    assertEquals(up.connections, 1, "upstream TCP connections");
    assert(
      p.metrics.render().includes(
        `weft_upstream_connections_opened_total{endpoint="${up.addr.hostname}:${up.addr.port}"} 1`,
      ),
      "connections-opened metric",
    );
  } finally {
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("removes hop-by-hop headers and sets x-forwarded-* and x-request-id", async () => {
  const up = await startUpstream(() =>
    new Response("ok", {
      headers: { "keep-alive": "timeout=5", "x-up": "1", "connection": "x-up" },
    })
  );
  const log: AccessLogEntry[] = [];
  const p = await startProxy(
    buildSnapshot({ outbound: { svc: { endpoints: [endpoint(up.addr)] } } }),
    log,
  );
  try {
    const r = await oneRequest(
      p.outbound,
      "GET / HTTP/1.1\nHost: svc\nConnection: keep-alive, x-secret\nx-secret: 1\nkeep-alive: 5\n" +
        "te: trailers\nupgrade: websocket\nproxy-authorization: basic x\nx-forwarded-for: 10.0.0.1\n" +
        "x-weft-destination: other\nx-custom: kept",
    );
    assertEquals(r.status, 200);
    const h = up.requests[0].headers;
    for (const name of ["x-secret", "keep-alive", "te", "upgrade", "proxy-authorization"]) {
      assertEquals(h.get(name), null, `${name} forwarded`);
    }
    assertEquals(h.get("x-weft-destination"), null, "client-set destination removed");
    assertEquals(h.get("x-custom"), "kept");
    assertEquals(h.get("x-forwarded-for"), "10.0.0.1, 127.0.0.1");
    assertEquals(h.get("x-forwarded-proto"), "http");
    assert(/^[0-9a-f-]{36}$/.test(h.get("x-request-id") ?? ""), "generated x-request-id");
    assertEquals(log[0].requestId, h.get("x-request-id"), "the access log names the same id");
    assertEquals(r.headers.get("keep-alive"), undefined, "response keep-alive removed");
    assertEquals(r.headers.get("x-up"), undefined, "response connection-listed header removed");

    const kept = await oneRequest(p.outbound, "GET / HTTP/1.1\nHost: svc\nx-request-id: abc");
    assertEquals(kept.status, 200);
    assertEquals(up.requests[1].headers.get("x-request-id"), "abc");
    assertEquals(log[1].requestId, "abc");
    // Generated ids differ from request to request.
    await oneRequest(p.outbound, "GET / HTTP/1.1\nHost: svc");
    const third = up.requests[2].headers.get("x-request-id");
    assert(third !== null && third !== h.get("x-request-id"), "a new id per request");
    assertEquals(log[2].requestId, third);
  } finally {
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("outbound to a remote endpoint names the service; inbound routes by it", async () => {
  const app = await startUpstream((req) =>
    new Response(
      `app ${req.headers.get("x-weft-destination") ?? "no-dest"} ${new URL(req.url).pathname}`,
    )
  );
  // Node B: inbound listener delivers "ratings" to the local app.
  const b = await startProxy(buildSnapshot({ inbound: { ratings: app.addr } }));
  // Node A: outbound "ratings" points at B's inbound listener.
  const log: AccessLogEntry[] = [];
  const a = await startProxy(
    buildSnapshot({
      outbound: { ratings: { endpoints: [endpoint(b.inbound, { viaInbound: true })] } },
    }),
    log,
  );
  try {
    const r = await oneRequest(a.outbound, "GET /stars HTTP/1.1\nHost: ratings");
    assertEquals(r.status, 200);
    assertEquals(r.body, "app no-dest /stars", "destination header stripped by inbound");
    assertEquals(log[0].upstream, `${b.inbound.hostname}:${b.inbound.port}`);
    // Inbound also routes by Host when the header is missing.
    const byHost = await oneRequest(b.inbound, "GET /h HTTP/1.1\nHost: ratings:15006");
    assertEquals(byHost.body, "app no-dest /h");
    // The header wins over Host.
    const byHeader = await oneRequest(
      b.inbound,
      "GET /d HTTP/1.1\nHost: other\nx-weft-destination: ratings",
    );
    assertEquals(byHeader.body, "app no-dest /d");
    // What A sends to a viaInbound endpoint: point A at the app directly to see the header.
    const direct = await startProxy(buildSnapshot({
      outbound: { ratings: { endpoints: [endpoint(app.addr, { viaInbound: true })] } },
    }));
    const seen = await oneRequest(direct.outbound, "GET /s HTTP/1.1\nHost: ratings");
    await direct.proxy.stop();
    assertEquals(seen.body, "app ratings /s");
    const unknown = await oneRequest(
      b.inbound,
      "GET / HTTP/1.1\nHost: x\nx-weft-destination: nope",
    );
    assertEquals(unknown.status, 404);
    assertEquals(unknown.headers.get("x-weft-flag"), "NR");
  } finally {
    await a.proxy.stop();
    await b.proxy.stop();
    await app.close();
  }
});

Deno.test("local replies carry Envoy flags: NR, UH, UF", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadAddr = { hostname: "127.0.0.1", port: closed.addr.port };
  closed.close();
  const log: AccessLogEntry[] = [];
  const p = await startProxy(
    buildSnapshot({
      outbound: {
        down: { endpoints: [endpoint(deadAddr)] },
        sick: { endpoints: [endpoint(deadAddr, { healthy: false })] },
      },
    }),
    log,
  );
  try {
    const nr = await oneRequest(p.outbound, "GET / HTTP/1.1\nHost: nowhere");
    assertEquals([nr.status, nr.headers.get("x-weft-flag")], [404, "NR"]);
    assertEquals(JSON.parse(nr.body).flag, "NR");
    const uh = await oneRequest(p.outbound, "GET / HTTP/1.1\nHost: sick");
    assertEquals([uh.status, uh.headers.get("x-weft-flag")], [503, "UH"]);
    const uf = await oneRequest(p.outbound, "GET /f HTTP/1.1\nHost: down");
    assertEquals([uf.status, uf.headers.get("x-weft-flag")], [502, "UF"]);
    assertEquals(log.map((e) => e.flag), ["NR", "UH", "UF"]);
    assertEquals(log[2].path, "/f");
    assertEquals(log[2].cluster, "outbound|down");
    assert(
      p.metrics.render().includes(
        'weft_requests_total{cluster="outbound|down",code="502",flag="UF",listener="outbound"} 1',
      ),
      "requests metric with flag",
    );
  } finally {
    await p.proxy.stop();
  }
});

Deno.test("route timeout answers 504 UT; upstream reset answers 502 UC/UR", async () => {
  // Upstream that accepts, reads, and either never answers or closes the socket.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const heads: string[] = [];
  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      held.push(conn);
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf).catch(() => null);
      const head = n ? new TextDecoder().decode(buf.subarray(0, n)) : "";
      heads.push(head);
      if (head.startsWith("GET /reset")) conn.close();
    }
  })();
  const addr = { hostname: "127.0.0.1", port: listener.addr.port };
  // The route timeout runs on the proxy's clock, which moves only when the test moves it: the
  // 504 must come at exactly 200 ms of fake time after the request, not before.
  const clock = new FakeClock();
  const p = await startProxy(
    buildSnapshot({ outbound: { slow: { endpoints: [endpoint(addr)], timeoutMs: 200 } } }),
    undefined,
    clock,
  );
  const hanging = await TestClient.connect(p.outbound);
  try {
    const response = hanging.request("GET /hang HTTP/1.1\nHost: slow");
    const answered = settledFlag(response);
    await eventually("the request reaches the upstream", () => heads[0]?.startsWith("GET /hang"));
    clock.advance(199);
    // A 504 due at 199 would have been written during advance(); a local reply on another
    // connection is a full round trip through the same event loop, so it would arrive first.
    const probe = await oneRequest(p.outbound, "GET / HTTP/1.1\nHost: nowhere");
    assertEquals(probe.status, 404, "probe answered by the proxy itself");
    assert(!answered(), "answered before the route timeout");
    clock.advance(1);
    const ut = await within(response, 5000, "the 504 at the route timeout");
    assertEquals([ut.status, ut.headers.get("x-weft-flag")], [504, "UT"]);
    const uc = await oneRequest(p.outbound, "GET /reset HTTP/1.1\nHost: slow");
    assertEquals(uc.status, 502);
    assert(["UC", "UR"].includes(uc.headers.get("x-weft-flag") ?? ""), "UC or UR flag");
  } finally {
    // The upstream goes first: when the test failed, a request may still wait on it, and the
    // fake clock will not move to time it out, so the proxy's stop would wait for it forever.
    hanging.close();
    listener.close();
    await accepting;
    for (const c of held) {
      try {
        c.close();
      } catch {
        // Closed by the reset case.
      }
    }
    await p.proxy.stop();
  }
});

Deno.test("malformed request gets 400 DPE and the connection closes", async () => {
  const p = await startProxy(buildSnapshot({}));
  const c = await TestClient.connect(p.outbound);
  try {
    await c.send("GET / HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n");
    const r = await c.readResponse();
    assertEquals([r.status, r.headers.get("x-weft-flag")], [400, "DPE"]);
    assert(await c.closedByPeer(), "connection closed after 400");
  } finally {
    c.close();
    await p.proxy.stop();
  }
});

Deno.test("idle upstream connections close after the idle timeout", async () => {
  const up = startRawUpstream();
  const p = await startProxy(buildSnapshot({
    outbound: { svc: { endpoints: [endpoint(up.addr)] } },
    tuning: { upstreamIdleTimeoutMs: 100 },
  }));
  try {
    assertEquals((await oneRequest(p.outbound, "GET / HTTP/1.1\nHost: svc")).status, 200);
    const deadline = performance.now() + 3000;
    while (up.open > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals(up.open, 0, "idle connection closed by the proxy");
    assertEquals((await oneRequest(p.outbound, "GET / HTTP/1.1\nHost: svc")).status, 200);
    assertEquals(up.connections, 2, "a new connection after the idle one closed");
  } finally {
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("an HTTP/1.0 client gets a delimited body and a closed connection", async () => {
  const up = await startUpstream((req) =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(`v=${req.headers.get("x-forwarded-proto")}`));
          c.close();
        },
      }),
    )
  );
  const p = await startProxy(
    buildSnapshot({ outbound: { svc: { endpoints: [endpoint(up.addr)] } } }),
  );
  const c = await TestClient.connect(p.outbound);
  try {
    const r = await c.request("GET / HTTP/1.0\nHost: svc");
    assertEquals([r.status, r.body], [200, "v=http"]);
    assertEquals(r.headers.get("transfer-encoding"), undefined, "no chunked for HTTP/1.0");
    assert(await c.closedByPeer(), "connection closed");
  } finally {
    c.close();
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("a head with bare LF line ends is forwarded with CRLF", async () => {
  const up = await startUpstream((req) =>
    new Response(`${req.headers.get("x-a")}|${req.headers.get("x-b")}`)
  );
  const p = await startProxy(
    buildSnapshot({ outbound: { svc: { endpoints: [endpoint(up.addr)] } } }),
  );
  const c = await TestClient.connect(p.outbound);
  try {
    await c.send("GET / HTTP/1.1\nHost: svc\nX-A: 1\nConnection: keep-alive\nX-B: 2\n\n");
    const r = await c.readResponse();
    assertEquals([r.status, r.body], [200, "1|2"]);
  } finally {
    c.close();
    await p.proxy.stop();
    await up.close();
  }
});
