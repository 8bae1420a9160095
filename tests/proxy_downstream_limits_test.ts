/**
 * @module
 * Downstream timeouts and the connection limit, on both listeners, over real loopback sockets
 * with the proxy's timers on a FakeClock: a connection that sends nothing, or half a head, gets
 * 408 and is closed at the request headers timeout and not a millisecond before; an idle
 * keep-alive connection is closed silently at the idle timeout; a request body that stops
 * coming gets 408 at the body timeout; a request busy upstream is governed by its route
 * timeout, not the idle timeout; and a listener full at `maxDownstreamConnections` closes the
 * next connection at once, then serves again once one closed.
 */
import { FakeClock, type ProxyTuning, Registry, silentLogger } from "../lib/mod.ts";
import { type AccessLogEntry, Proxy } from "../proxy/mod.ts";
import {
  buildSnapshot,
  endpoint,
  type RawUpstream,
  startRawUpstream,
  TestClient,
} from "./support/proxy.ts";
import { assert, assertEquals, eventually } from "./support/assert.ts";
import { within } from "./support/time_guard.ts";

const loopback = { hostname: "127.0.0.1", port: 0 };
const listeners = ["outbound", "inbound"] as const;
type Kind = typeof listeners[number];

const headersMs = 10_000;
const idleMs = 60_000;
const bodyMs = 5_000;

/** A proxy on a FakeClock in front of `up` as service `svc` on both listeners. */
async function start(up: RawUpstream, tuning: Partial<ProxyTuning> = {}) {
  const clock = new FakeClock();
  const metrics = new Registry();
  const log: AccessLogEntry[] = [];
  const snapshot = buildSnapshot({
    outbound: { svc: { endpoints: [endpoint(up.addr)] } },
    inbound: { svc: up.addr },
    tuning: {
      requestHeadersTimeoutMs: headersMs,
      downstreamIdleTimeoutMs: idleMs,
      requestBodyTimeoutMs: bodyMs,
      ...tuning,
    },
  });
  const proxy = new Proxy({
    snapshot,
    logger: silentLogger,
    metrics,
    accessLog: (e) => log.push(e),
    clock,
  });
  const addrs = await proxy.start({ outbound: loopback, inbound: loopback });
  const count = (name: string, labels: string) => {
    for (const l of metrics.render().split("\n")) {
      if (l.startsWith(`${name}{${labels}} `)) return Number(l.slice(l.lastIndexOf(" ") + 1));
    }
    return 0;
  };
  return {
    clock,
    log,
    addrs,
    proxy,
    accepted: (kind: Kind) =>
      count("weft_downstream_connections_accepted_total", `listener="${kind}"`),
    timeouts: (kind: Kind, what: string) =>
      count("weft_downstream_timeouts_total", `kind="${what}",listener="${kind}"`),
    refused: (kind: Kind) =>
      count("weft_downstream_connections_refused_total", `listener="${kind}"`),
  };
}

/** The head of a request for `svc` on `kind` (no blank line). */
function head(kind: Kind, extra = ""): string {
  const dest = kind === "inbound" ? "\r\nx-weft-destination: svc" : "";
  return `GET / HTTP/1.1\r\nhost: svc${dest}${extra}`;
}

for (const kind of listeners) {
  Deno.test(`[${kind}] a connection that sends nothing gets 408 and is closed at the request headers timeout`, async () => {
    const up = startRawUpstream();
    const p = await start(up);
    const c = await TestClient.connect(p.addrs[kind]);
    try {
      await eventually("the connection accepted", () => p.accepted(kind) === 1);
      p.clock.advance(headersMs - 1);
      assertEquals(p.timeouts(kind, "request_headers"), 0, "still open 1 ms before");
      p.clock.advance(1);
      assertEquals(p.timeouts(kind, "request_headers"), 1);
      const r = await within(c.readResponse(), 5000, "the response");
      assertEquals(r.status, 408);
      assertEquals(r.headers.get("connection"), "close");
      assert(await c.closedByPeer(), "closed after the 408");
    } finally {
      c.close();
      await within(p.proxy.stop(0), 5000, "the proxy to stop");
      await up.close();
    }
  });

  Deno.test(`[${kind}] a partial request head gets 408 at the request headers timeout`, async () => {
    const up = startRawUpstream();
    const p = await start(up);
    const c = await TestClient.connect(p.addrs[kind]);
    try {
      await c.send(head(kind) + "\r\nx-slow: 1");
      await eventually("the connection accepted", () => p.accepted(kind) === 1);
      p.clock.advance(headersMs - 1);
      assertEquals(p.timeouts(kind, "request_headers"), 0);
      p.clock.advance(1);
      const r = await within(c.readResponse(), 5000, "the response");
      assertEquals(r.status, 408);
      assertEquals(JSON.parse(r.body).error, "request headers timeout");
      assert(await c.closedByPeer(), "closed after the 408");
      assertEquals(p.timeouts(kind, "request_headers"), 1);
      assertEquals(up.connections, 0, "nothing went upstream");
    } finally {
      c.close();
      await within(p.proxy.stop(0), 5000, "the proxy to stop");
      await up.close();
    }
  });

  Deno.test(`[${kind}] an idle keep-alive connection is closed at the idle timeout, not before`, async () => {
    const up = startRawUpstream();
    const p = await start(up);
    const c = await TestClient.connect(p.addrs[kind]);
    try {
      assertEquals((await c.request(head(kind))).status, 200);
      await eventually("the request finished", () => p.log.length === 1);
      // Past the request headers timeout: an idle connection is not reading a head.
      p.clock.advance(idleMs - 1);
      assertEquals(p.timeouts(kind, "idle"), 0, "still open 1 ms before");
      assertEquals(p.timeouts(kind, "request_headers"), 0);
      p.clock.advance(1);
      assertEquals(p.timeouts(kind, "idle"), 1);
      assert(await c.closedByPeer(), "closed silently (no bytes, then end of stream)");
    } finally {
      c.close();
      await within(p.proxy.stop(0), 5000, "the proxy to stop");
      await up.close();
    }
  });

  Deno.test(`[${kind}] a request body that stops coming gets 408 at the body timeout`, async () => {
    const up = startRawUpstream(() => "");
    const p = await start(up);
    const c = await TestClient.connect(p.addrs[kind]);
    try {
      await c.send(
        head(kind, "\r\ncontent-length: 10").replace("GET", "POST") +
          "\r\n\r\nabc",
      );
      await eventually("the first body bytes upstream", () => up.received.endsWith("abc"));
      p.clock.advance(bodyMs - 1);
      assertEquals(p.timeouts(kind, "request_body"), 0, "still reading 1 ms before");
      p.clock.advance(1);
      assertEquals(p.timeouts(kind, "request_body"), 1);
      const r = await within(c.readResponse("POST"), 5000, "the response");
      assertEquals(r.status, 408);
      assertEquals(JSON.parse(r.body).error, "request body timeout");
      assert(await c.closedByPeer(), "closed after the 408");
      await eventually("the request logged", () => p.log.length === 1);
      assertEquals(p.log[0].status, 408);
    } finally {
      c.close();
      await within(p.proxy.stop(0), 5000, "the proxy to stop");
      await up.close();
    }
  });

  Deno.test(`[${kind}] a request busy upstream is not ended by the idle timeout; its route timeout governs`, async () => {
    const up = startRawUpstream(() => "");
    const p = await start(up, { downstreamIdleTimeoutMs: 1000, routeTimeoutMs: 15_000 });
    const c = await TestClient.connect(p.addrs[kind]);
    try {
      await c.send(head(kind) + "\r\n\r\n");
      await eventually("the request upstream", () => up.received.includes("\r\n\r\n"));
      p.clock.advance(15_000 - 1);
      assertEquals(p.timeouts(kind, "idle"), 0);
      assertEquals(p.timeouts(kind, "request_headers"), 0);
      assertEquals(p.log.length, 0, "still in flight 1 ms before the route timeout");
      p.clock.advance(1);
      const r = await within(c.readResponse(), 5000, "the response");
      assertEquals(r.status, 504);
      assertEquals(r.headers.get("x-weft-flag"), "UT");
    } finally {
      c.close();
      await within(p.proxy.stop(0), 5000, "the proxy to stop");
      await up.close();
    }
  });

  Deno.test(`[${kind}] over maxDownstreamConnections a connection is closed at once and counted`, async () => {
    const up = startRawUpstream();
    const p = await start(up, { maxDownstreamConnections: 2 });
    const open: TestClient[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = await TestClient.connect(p.addrs[kind]);
        open.push(c);
        assertEquals((await c.request(head(kind))).status, 200);
      }
      const third = await TestClient.connect(p.addrs[kind]);
      open.push(third);
      assert(await third.closedByPeer(), "the third connection is closed");
      assertEquals(p.refused(kind), 1);
      assertEquals(p.accepted(kind), 2, "the refused one never reached a session");
      open[0].close();
      // Served again once the first one's close reached the proxy.
      const status = await eventually("a new connection served", async () => {
        const c = await TestClient.connect(p.addrs[kind]);
        open.push(c);
        try {
          return (await c.request(head(kind))).status;
        } catch {
          return undefined;
        }
      });
      assertEquals(status, 200);
    } finally {
      for (const c of open) c.close();
      await within(p.proxy.stop(0), 5000, "the proxy to stop");
      await up.close();
    }
  });
}
