/**
 * @module
 * WebSocket (HTTP/1.1 `Upgrade`) proxying over real loopback sockets: a `Deno.serve` upstream
 * that echoes over `Deno.upgradeWebSocket`, the standard `WebSocket` client, and raw sockets
 * where the test needs exact bytes (a first frame sent with the head, half-close). Covers the
 * echo both ways, a refused upgrade, the route timeout not applying to an open tunnel, the
 * idle timeout closing one, delivery through a second node's inbound listener, and stop.
 */
import {
  type Clock,
  FakeClock,
  type HostPort,
  Registry,
  silentLogger,
  type Snapshot,
} from "../lib/mod.ts";
import { type AccessLogEntry, Proxy } from "../proxy/mod.ts";
import { buildSnapshot, endpoint, oneRequest, TestClient } from "./support/proxy.ts";
import { assert, assertEquals, eventually } from "./support/assert.ts";
import { readUntil } from "./support/sockets.ts";
import { settledFlag, within } from "./support/time_guard.ts";

const loopback = { hostname: "127.0.0.1", port: 0 };
/** The `WebSocket` class sends `Host: 127.0.0.1:PORT`, so the service is named after it. */
const service = "127.0.0.1";
const cluster = `outbound|${service}`;

/** Starts a proxy on ephemeral ports; with `clock`, its timers (route, idle) run on it. */
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

/** The value of a metric line `name{labels}` in the Prometheus text, or undefined. */
function metricValue(metrics: Registry, line: string): number | undefined {
  for (const l of metrics.render().split("\n")) {
    if (l.startsWith(line + " ")) return Number(l.slice(line.length + 1));
  }
  return undefined;
}

/** A `Deno.serve` upstream that echoes WebSocket messages, or refuses upgrades with `refuse`. */
interface EchoUpstream {
  addr: HostPort;
  /** Headers of every upgrade request seen. */
  upgrades: Headers[];
  close(): Promise<void>;
}

function startEchoUpstream(refuse?: number): Promise<EchoUpstream> {
  const upgrades: Headers[] = [];
  const sockets = new Set<WebSocket>();
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: (addr) =>
        resolve({
          addr: { hostname: addr.hostname, port: addr.port },
          upgrades,
          close: async () => {
            for (const s of sockets) s.close();
            await server.shutdown();
          },
        }),
    }, (req) => {
      if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response(`plain ${new URL(req.url).pathname}`);
      }
      // Copied: a request's headers are unreadable once it is answered.
      upgrades.push(new Headers(req.headers));
      if (refuse) return new Response("not allowed", { status: refuse });
      const { socket, response } = Deno.upgradeWebSocket(req);
      sockets.add(socket);
      socket.onmessage = (e) => socket.send(e.data);
      socket.onclose = () => sockets.delete(socket);
      return response;
    });
  });
}

/** The standard `WebSocket` client with a message queue and a bounded wait per message. */
class WsClient {
  readonly #queue: (string | Uint8Array)[] = [];
  #waiter: (() => void) | null = null;
  readonly closed: Promise<CloseEvent>;

  private constructor(readonly ws: WebSocket) {
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      this.#queue.push(typeof e.data === "string" ? e.data : new Uint8Array(e.data));
      this.#waiter?.();
    };
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (e) => {
        resolve(e);
        this.#waiter?.();
      });
    });
  }

  static open(url: string): Promise<WsClient> {
    const client = new WsClient(new WebSocket(url));
    return new Promise((resolve, reject) => {
      client.ws.onopen = () => resolve(client);
      client.ws.onerror = () => reject(new Error(`cannot open ${url}`));
    });
  }

  /** The next message, or an error after `ms` or when the socket closed first. */
  async next(ms = 5000): Promise<string | Uint8Array> {
    const deadline = Date.now() + ms;
    while (this.#queue.length === 0) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error("socket closed");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("no message in time");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#waiter = null;
    }
    return this.#queue.shift()!;
  }

  /** Closes (if still open) and waits for the close to complete. */
  async close(): Promise<CloseEvent> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    return await this.closed;
  }
}

/** Resolves with the close event, or with null after `ms`. */
async function closedWithin(client: WsClient, ms: number): Promise<CloseEvent | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    client.closed,
    new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms))),
  ]);
  clearTimeout(timer);
  return result;
}

function outboundSnapshot(upstream: HostPort, extra: Parameters<typeof buildSnapshot>[0] = {}) {
  return buildSnapshot({ outbound: { [service]: { endpoints: [endpoint(upstream)] } }, ...extra });
}

Deno.test("WebSocket echo through the outbound listener, text and a 100 KB binary", async () => {
  const up = await startEchoUpstream();
  const log: AccessLogEntry[] = [];
  const p = await startProxy(outboundSnapshot(up.addr), log);
  try {
    const ws = await WsClient.open(`ws://127.0.0.1:${p.outbound.port}/chat?room=1`);
    for (let i = 0; i < 5; i++) {
      ws.ws.send(`hello ${i}`);
      assertEquals(await ws.next(), `hello ${i}`);
    }
    const big = new Uint8Array(100 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 251;
    ws.ws.send(big);
    const echoed = await ws.next();
    assert(echoed instanceof Uint8Array, "binary echo");
    assertEquals(echoed.length, big.length);
    assert(echoed.every((b, i) => b === big[i]), "binary echo content");
    ws.ws.send("after");
    assertEquals(await ws.next(), "after");

    // Upgrade headers reach the upstream with the usual proxy headers.
    const h = up.upgrades[0];
    assertEquals(h.get("upgrade")?.toLowerCase(), "websocket");
    assert(/upgrade/i.test(h.get("connection") ?? ""), "connection: upgrade forwarded");
    assertEquals(h.get("x-forwarded-for"), "127.0.0.1");
    assertEquals(h.get("x-forwarded-proto"), "http");
    assert(/^[0-9a-f-]{36}$/.test(h.get("x-request-id") ?? ""), "x-request-id added");
    const gauge = 'weft_upgraded_connections{listener="outbound"}';
    assertEquals(metricValue(p.metrics, gauge), 1, "one open tunnel");

    const closing = await ws.close();
    assertEquals(closing.code, 1005);
    await eventually("tunnel gauge back to 0", () => metricValue(p.metrics, gauge) === 0);
    const entry = await eventually("access log entry", () => log.find((e) => e.status === 101));
    assertEquals(entry.cluster, cluster);
    assertEquals(entry.path, "/chat?room=1");
    assertEquals(entry.upstream, `127.0.0.1:${up.addr.port}`);
    // Labels render sorted by name.
    const counted = `weft_requests_total{cluster="${cluster}",code="101",flag="-",` +
      `listener="outbound"}`;
    assertEquals(metricValue(p.metrics, counted), 1);

    // The tunnel's connection was never pooled: plain requests still work.
    const c = await TestClient.connect(p.outbound);
    try {
      const r = await c.request(`GET /plain HTTP/1.1\nHost: ${service}`);
      assertEquals([r.status, r.body], [200, "plain /plain"]);
    } finally {
      c.close();
    }
  } finally {
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("an upstream refusing the upgrade: its 403 is relayed, no tunnel", async () => {
  const up = await startEchoUpstream(403);
  const p = await startProxy(outboundSnapshot(up.addr));
  try {
    const c = await TestClient.connect(p.outbound);
    try {
      const r = await c.request(
        `GET /ws HTTP/1.1\nHost: ${service}\nConnection: Upgrade\nUpgrade: websocket\n` +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13",
      );
      assertEquals([r.status, r.body], [403, "not allowed"]);
      assertEquals(r.headers.get("upgrade"), undefined);
      // A delimited refusal keeps the client connection for plain requests.
      const plain = await c.request(`GET /after HTTP/1.1\nHost: ${service}`);
      assertEquals([plain.status, plain.body], [200, "plain /after"]);
    } finally {
      c.close();
    }
    assertEquals(up.upgrades.length, 1);
    assertEquals(metricValue(p.metrics, 'weft_upgraded_connections{listener="outbound"}'), 0);
    // The standard client sees a failed handshake.
    let failed = false;
    try {
      const ws = await WsClient.open(`ws://127.0.0.1:${p.outbound.port}/`);
      await ws.close();
    } catch {
      failed = true;
    }
    assert(failed, "WebSocket open must fail");
  } finally {
    await p.proxy.stop();
    await up.close();
  }
});

// Both proxies run on fake clocks: the tunnels are silent for exactly as long as the test
// moves the clock, and a timer can only fire inside advance().
Deno.test("the route timeout does not end an open tunnel; the idle timeout does", async () => {
  const up = await startEchoUpstream();
  // Route timeout 50 ms, idle timeout 60 s: a tunnel quiet far past the route timeout stays up.
  const routeClock = new FakeClock();
  const p = await startProxy(
    buildSnapshot({
      outbound: { [service]: { endpoints: [endpoint(up.addr)], timeoutMs: 50 } },
    }),
    undefined,
    routeClock,
  );
  // Idle timeout 200 ms: a tunnel quiet for 200 ms since its last byte is closed.
  const idleClock = new FakeClock();
  const q = await startProxy(
    outboundSnapshot(up.addr, { tuning: { upstreamIdleTimeoutMs: 200 } }),
    undefined,
    idleClock,
  );
  try {
    const ws = await WsClient.open(`ws://127.0.0.1:${p.outbound.port}/`);
    // Twenty route timeouts of silence; a tunnel cut by it would be closed during advance().
    routeClock.advance(1000);
    ws.ws.send("still there");
    assertEquals(await ws.next(), "still there");
    await ws.close();

    const quiet = await WsClient.open(`ws://127.0.0.1:${q.outbound.port}/`);
    quiet.ws.send("one");
    assertEquals(await quiet.next(), "one"); // the last activity: fake time 0
    idleClock.advance(199);
    quiet.ws.send("two");
    assertEquals(await quiet.next(), "two", "open 1 ms before the idle timeout");
    // Fake 398: the idle check due at 200 saw the activity at 199 and waits until 399.
    idleClock.advance(199);
    // A close during advance() would reach the client before a request through the same proxy
    // (one event loop) made its round trip, so an open socket after it means none happened.
    const plain = await oneRequest(q.outbound, `GET /plain HTTP/1.1\nHost: ${service}`);
    assertEquals(plain.body, "plain /plain");
    assertEquals(quiet.ws.readyState, WebSocket.OPEN, "closed before 200 ms without a byte");
    idleClock.advance(1);
    const closed = await closedWithin(quiet, 5000);
    assert(closed !== null, "idle tunnel not closed 200 ms after its last byte");
  } finally {
    await p.proxy.stop();
    await q.proxy.stop();
    await up.close();
  }
});

Deno.test("outbound -> other node's inbound (x-weft-destination) -> WebSocket service", async () => {
  const up = await startEchoUpstream();
  const nodeB = await startProxy(buildSnapshot({ inbound: { [service]: up.addr } }));
  const log: AccessLogEntry[] = [];
  const nodeA = await startProxy(
    buildSnapshot({
      outbound: { [service]: { endpoints: [endpoint(nodeB.inbound, { viaInbound: true })] } },
    }),
    log,
  );
  try {
    const ws = await WsClient.open(`ws://127.0.0.1:${nodeA.outbound.port}/remote`);
    ws.ws.send("via b");
    assertEquals(await ws.next(), "via b");
    const big = new Uint8Array(100 * 1024).fill(7);
    ws.ws.send(big);
    assertEquals((await ws.next()).length, big.length);
    assertEquals(up.upgrades[0].get("x-weft-destination"), null, "destination header removed");
    assertEquals(up.upgrades[0].get("x-forwarded-for"), "127.0.0.1, 127.0.0.1");
    assertEquals(metricValue(nodeB.metrics, 'weft_upgraded_connections{listener="inbound"}'), 1);
    await ws.close();
    const entry = await eventually("access log entry", () => log.find((e) => e.status === 101));
    assertEquals(entry.upstream, `127.0.0.1:${nodeB.inbound.port}`);
  } finally {
    await nodeA.proxy.stop();
    await nodeB.proxy.stop();
    await up.close();
  }
});

Deno.test("stopping the proxy closes open tunnels after the drain timeout", async () => {
  const up = await startEchoUpstream();
  const clock = new FakeClock();
  const p = await startProxy(outboundSnapshot(up.addr), undefined, clock);
  try {
    const ws = await WsClient.open(`ws://127.0.0.1:${p.outbound.port}/`);
    ws.ws.send("x");
    assertEquals(await ws.next(), "x");
    const timersBefore = clock.pending;
    const stopping = p.proxy.stop(150);
    const stopped = settledFlag(stopping);
    await eventually("the drain timer is set", () => clock.pending > timersBefore);
    clock.advance(149);
    // Within the drain timeout the tunnel is still served and the stop still waits.
    ws.ws.send("y");
    assertEquals(await ws.next(), "y");
    assert(!stopped(), "stop ended before the drain timeout");
    clock.advance(1);
    await within(stopping, 3000, "stop at the drain timeout");
    assert((await closedWithin(ws, 3000)) !== null, "tunnel still open after stop");
  } finally {
    await p.proxy.stop();
    await up.close();
  }
});

/** A masked client text frame (RFC 6455 5.2), payload under 126 bytes. */
function clientTextFrame(text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const mask = [1, 2, 3, 4];
  const frame = new Uint8Array(6 + payload.length);
  frame.set([0x81, 0x80 | payload.length, ...mask]);
  payload.forEach((b, i) => (frame[6 + i] = b ^ mask[i % 4]));
  return frame;
}

Deno.test("a first frame sent together with the upgrade head is forwarded", async () => {
  const up = await startEchoUpstream();
  const p = await startProxy(outboundSnapshot(up.addr));
  const conn = await Deno.connect(p.outbound);
  try {
    const head = `GET / HTTP/1.1\r\nHost: ${service}\r\nConnection: Upgrade\r\n` +
      "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
      "Sec-WebSocket-Version: 13\r\n\r\n";
    const headBytes = new TextEncoder().encode(head);
    const frame = clientTextFrame("early");
    const both = new Uint8Array(headBytes.length + frame.length);
    both.set(headBytes);
    both.set(frame, headBytes.length);
    await conn.write(both);
    const echoFrame = [0x81, 5, ...new TextEncoder().encode("early")];
    const got = await readUntil(conn, (all) => {
      const text = new TextDecoder().decode(all);
      const end = text.indexOf("\r\n\r\n");
      return end >= 0 && all.length >= end + 4 + echoFrame.length;
    });
    const text = new TextDecoder().decode(got);
    assert(text.startsWith("HTTP/1.1 101 "), `got ${JSON.stringify(text.slice(0, 40))}`);
    assert(/\r\nupgrade: websocket\r\n/i.test(text), "upgrade header relayed");
    assert(/\r\nconnection: upgrade\r\n/i.test(text), "connection header relayed");
    assert(/\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i.test(text), "accept");
    const body = got.subarray(text.indexOf("\r\n\r\n") + 4);
    assertEquals(Array.from(body), echoFrame);
  } finally {
    conn.close();
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("a generic Upgrade protocol is tunnelled with half-close passed on", async () => {
  // A raw upstream: answers 101 with `Upgrade: echo/1`, then echoes until the client's FIN,
  // then sends "bye" and closes.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      const head = await readUntil(
        conn,
        (all) => new TextDecoder().decode(all).includes("\r\n\r\n"),
      );
      const text = new TextDecoder().decode(head);
      assert(/\r\nupgrade: echo\/1\r\n/i.test(text), "upgrade forwarded");
      assert(!/\r\nkeep-alive:/i.test(text), "other hop-by-hop removed");
      await conn.write(
        new TextEncoder().encode(
          "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo/1\r\n\r\n",
        ),
      );
      const rest = head.subarray(text.indexOf("\r\n\r\n") + 4);
      if (rest.length > 0) await conn.write(rest);
      const buf = new Uint8Array(1024);
      for (let reads = 0; reads < 1000; reads++) {
        const n = await conn.read(buf);
        if (n === null) break;
        await conn.write(buf.subarray(0, n));
      }
      await conn.write(new TextEncoder().encode("bye"));
    } finally {
      conn.close();
    }
  })();
  const upAddr = listener.addr as Deno.NetAddr;
  const p = await startProxy(
    outboundSnapshot({ hostname: upAddr.hostname, port: upAddr.port }),
  );
  const conn = await Deno.connect(p.outbound);
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET /x HTTP/1.1\r\nHost: ${service}\r\nConnection: keep-alive, Upgrade\r\n` +
          "Keep-Alive: 5\r\nUpgrade: echo/1\r\n\r\nping",
      ),
    );
    const head = await readUntil(conn, (all) => new TextDecoder().decode(all).includes("ping"));
    assert(new TextDecoder().decode(head).startsWith("HTTP/1.1 101 "), "switched");
    await conn.write(new TextEncoder().encode("pong"));
    await conn.closeWrite();
    const rest = await readUntil(conn, () => false);
    assertEquals(new TextDecoder().decode(rest), "pongbye");
    await served;
  } finally {
    conn.close();
    listener.close();
    await p.proxy.stop();
  }
});
