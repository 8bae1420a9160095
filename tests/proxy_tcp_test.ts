/**
 * @module
 * Raw TCP through the mesh (proxy/tcp.ts): a TCP upstream listener carrying connections to a
 * local instance directly, or to a remote node's inbound listener over a `weft-tcp/1`
 * upgrade; large payloads and half-close; no endpoint; round robin by connection; and the
 * inbound side's refusals.
 */
import {
  compileSnapshot,
  parseNodeConfig,
  parseUpstreamSpec,
  Registry,
  silentLogger,
  type Snapshot,
  type SnapshotInput,
} from "../lib/mod.ts";
import { Proxy } from "../proxy/mod.ts";
import { readBufferPool } from "../proxy/http1.ts";
import { buildSnapshot, endpoint, oneRequest, testTuning } from "./support/proxy.ts";
import { assert, assertEquals, eventually } from "./support/assert.ts";
import { readAll, roundTrip, startEcho } from "./support/tcp_echo.ts";

const loopback = { hostname: "127.0.0.1", port: 0 };

async function startProxy(snapshot: Snapshot) {
  const metrics = new Registry();
  const proxy = new Proxy({ snapshot, logger: silentLogger, metrics });
  const addrs = await proxy.start({ outbound: loopback, inbound: loopback });
  return { proxy, metrics, ...addrs, tcp: proxy.tcpAddresses() };
}

function compile(input: Partial<SnapshotInput> & { nodeName: string }): Snapshot {
  return compileSnapshot({
    localServices: [],
    catalog: [],
    tuning: testTuning(),
    ...input,
  }, 1);
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An echo server run by node "a" as tcp service "echo", offered by "a" on a local port. */
async function startLocalEcho() {
  const echo = startEcho();
  const a = await startProxy(compile({
    nodeName: "a",
    localServices: [{
      name: "echo",
      port: echo.port,
      host: "127.0.0.1",
      protocol: "tcp",
      labels: {},
    }],
    upstreams: [{ service: "echo", localPort: 0, localHost: "127.0.0.1" }],
  }));
  return { echo, a };
}

Deno.test("tcp upstream reaches a local instance directly", async () => {
  const { echo, a } = await startLocalEcho();
  try {
    assertEquals(a.tcp.length, 1);
    assertEquals(a.tcp[0].service, "echo");
    assert(a.tcp[0].port > 0, "bound port reported");
    assertEquals(text(await roundTrip(a.tcp[0].port, bytes("hello tcp"))), "hello tcp");
    const m = a.metrics.render();
    assert(m.includes('weft_tcp_connections_total{flag="-",service="echo"} 1'), m);
    await eventually(
      "active gauge back to 0",
      () => a.metrics.render().includes('weft_tcp_active_connections{service="echo"} 0'),
    );
  } finally {
    await a.proxy.stop();
    await echo.close();
  }
});

Deno.test("a closed tcp tunnel hands its client read buffer on", async () => {
  const { echo, a } = await startLocalEcho();
  // Start from an empty pool: each tunnel then allocates its client buffer and its upstream
  // connection's, and gives the client one back when both directions have ended.
  const held: Uint8Array<ArrayBuffer>[] = [];
  while (readBufferPool.idle > 0) held.push(readBufferPool.take());
  try {
    for (let i = 0; i < 3; i++) {
      assertEquals(text(await roundTrip(a.tcp[0].port, bytes(`tunnel ${i}`))), `tunnel ${i}`);
      await eventually("the tunnel's client buffer is back", () => readBufferPool.idle === 1);
    }
  } finally {
    for (const b of held) readBufferPool.give(b);
    await a.proxy.stop();
    await echo.close();
  }
});

/** Proxy B runs `echo` (tcp); proxy A knows it from the catalog and offers it as a port. */
async function startPair() {
  const echo = startEcho();
  const b = await startProxy(compile({
    nodeName: "b",
    localServices: [{
      name: "echo",
      port: echo.port,
      host: "127.0.0.1",
      protocol: "tcp",
      labels: {},
    }],
  }));
  const a = await startProxy(compile({
    nodeName: "a",
    catalog: [{
      service: "echo",
      node: "b",
      nodeId: "b-id",
      hostname: "127.0.0.1",
      port: b.inbound.port,
      protocol: "tcp",
      labels: {},
      healthy: true,
    }],
    upstreams: [{ service: "echo", localPort: 0, localHost: "127.0.0.1" }],
  }));
  return {
    echo,
    a,
    b,
    async close() {
      await a.proxy.stop();
      await b.proxy.stop();
      await echo.close();
    },
  };
}

Deno.test("tcp upstream crosses nodes through the inbound listener: 1 MiB and half-close", async () => {
  const pair = await startPair();
  try {
    const port = pair.a.tcp[0].port;
    assertEquals(text(await roundTrip(port, bytes("ping"))), "ping");

    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    const back = await roundTrip(port, big);
    assertEquals(back.length, big.length, "1 MiB echoed");
    assert(sameBytes(back, big), "1 MiB echoed unchanged");

    // Half-close: the client stops writing first and still reads everything the echo sends.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(bytes("first "));
      await conn.write(bytes("second"));
      await conn.closeWrite();
      assertEquals(text(await readAll(conn)), "first second");
    } finally {
      conn.close();
    }

    const m = pair.a.metrics.render();
    assert(m.includes('weft_tcp_connections_total{flag="-",service="echo"} 3'), m);
    assertEquals(pair.echo.accepted, 3);
    // The remote leg went through B's inbound listener as an upgrade answered 101.
    const bm = pair.b.metrics.render();
    assert(/weft_requests_total\{cluster="inbound\|echo",code="101",[^}]*\} 3/.test(bm), bm);
  } finally {
    await pair.close();
  }
});

Deno.test("tcp upstream without endpoints closes the connection and counts UH", async () => {
  const a = await startProxy(compile({
    nodeName: "a",
    upstreams: [{ service: "nowhere", localPort: 0, localHost: "127.0.0.1" }],
  }));
  try {
    const got = await roundTrip(a.tcp[0].port, bytes("anyone?"));
    assertEquals(got.length, 0, "closed without data");
    const m = a.metrics.render();
    assert(m.includes('weft_tcp_connections_total{flag="UH",service="nowhere"} 1'), m);
  } finally {
    await a.proxy.stop();
  }
});

Deno.test("tcp upstream with a refused connect closes the connection and counts UF", async () => {
  // A port that was free a moment ago: nothing listens there now.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const a = await startProxy({
    ...buildSnapshot({
      outbound: { dead: { endpoints: [endpoint({ hostname: "127.0.0.1", port: deadPort })] } },
    }),
    tcpUpstreams: [{
      service: "dead",
      cluster: "outbound|dead",
      localHost: "127.0.0.1",
      localPort: 0,
    }],
  });
  try {
    const got = await roundTrip(a.tcp[0].port, bytes("x"));
    assertEquals(got.length, 0);
    const m = a.metrics.render();
    assert(m.includes('weft_tcp_connections_total{flag="UF",service="dead"} 1'), m);
  } finally {
    await a.proxy.stop();
  }
});

Deno.test("tcp upstream balances connections round robin over two endpoints", async () => {
  const e1 = startEcho("one:");
  const e2 = startEcho("two:");
  const a = await startProxy({
    ...buildSnapshot({
      outbound: {
        echo: {
          endpoints: [
            endpoint({ hostname: "127.0.0.1", port: e1.port }),
            endpoint({ hostname: "127.0.0.1", port: e2.port }),
          ],
        },
      },
    }),
    tcpUpstreams: [{
      service: "echo",
      cluster: "outbound|echo",
      localHost: "127.0.0.1",
      localPort: 0,
    }],
  });
  try {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const got = text(await roundTrip(a.tcp[0].port, bytes("x")));
      seen.push(got.slice(0, got.indexOf(":")));
      assert(got.endsWith(":x"), `echoed after tag: ${got}`);
    }
    assertEquals(seen.filter((s) => s === "one").length, 2, `spread: ${seen}`);
    assertEquals(seen.filter((s) => s === "two").length, 2, `spread: ${seen}`);
    assert(seen[0] !== seen[1] && seen[1] !== seen[2], `alternates: ${seen}`);
  } finally {
    await a.proxy.stop();
    await e1.close();
    await e2.close();
  }
});

Deno.test("inbound refuses weft-tcp for http services and plain requests for tcp services", async () => {
  const echo = startEcho();
  const b = await startProxy(compile({
    nodeName: "b",
    localServices: [
      { name: "echo", port: echo.port, host: "127.0.0.1", protocol: "tcp", labels: {} },
      { name: "web", port: echo.port, host: "127.0.0.1", protocol: "http", labels: {} },
    ],
  }));
  try {
    const upgrade = "GET / HTTP/1.1\nHost: %s\nx-weft-destination: %s\nConnection: upgrade\n" +
      "Upgrade: weft-tcp/1";
    const toWeb = await oneRequest(b.inbound, upgrade.replaceAll("%s", "web"));
    assertEquals(toWeb.status, 400, "weft-tcp to an http service");
    const unknown = await oneRequest(b.inbound, upgrade.replaceAll("%s", "nope"));
    assertEquals(unknown.status, 404, "unknown service");
    const plain = await oneRequest(
      b.inbound,
      "GET / HTTP/1.1\nHost: echo\nx-weft-destination: echo",
    );
    assertEquals(plain.status, 400, "plain request to a tcp service");
    assertEquals(echo.accepted, 0, "nothing reached the service");
  } finally {
    await b.proxy.stop();
    await echo.close();
  }
});

Deno.test("stop closes open tcp tunnels", async () => {
  const pair = await startPair();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: pair.a.tcp[0].port });
  try {
    await conn.write(bytes("hold"));
    const buf = new Uint8Array(16);
    const n = await conn.read(buf);
    assertEquals(text(buf.subarray(0, n ?? 0)), "hold");
    await pair.a.proxy.stop(0);
    assertEquals(await readAll(conn).then((b) => b.length), 0, "closed by stop");
  } finally {
    conn.close();
    await pair.close();
  }
});

Deno.test("upstreams: config defaults, --upstream spec and snapshot entries", () => {
  const c = parseNodeConfig({ name: "a", upstreams: [{ service: "db", localPort: 15432 }] });
  assertEquals(c.upstreams, [{ service: "db", localPort: 15432, localHost: "127.0.0.1" }]);
  assertEquals(parseNodeConfig({ name: "a" }).upstreams, []);
  assertEquals(parseUpstreamSpec("db=0"), { service: "db", localPort: 0, localHost: "127.0.0.1" });
  assert(typeof parseUpstreamSpec("db") === "string", "missing port rejected");
  assert(typeof parseUpstreamSpec("db=70000") === "string", "port out of range rejected");
  let strict = "";
  try {
    parseNodeConfig({ name: "a", upstreams: [{ service: "db", localPort: 1, extra: 1 }] });
  } catch (err) {
    strict = (err as Error).message;
  }
  assert(strict.startsWith("config: upstreams[0]"), `unknown field named: ${strict}`);
  const snap = compile({ nodeName: "a", upstreams: c.upstreams });
  assertEquals(snap.tcpUpstreams, [
    { service: "db", cluster: "outbound|db", localHost: "127.0.0.1", localPort: 15432 },
  ]);
  assertEquals(compile({ nodeName: "a" }).tcpUpstreams, undefined);
});
