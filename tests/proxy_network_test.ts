/**
 * @module
 * The same end-to-end proxy scenarios on every socket backend (proxy/io): Deno's own sockets
 * (`denoNetwork`), the epoll one (`createEpollNetwork`) and its uring mode (reads and writes
 * batched through an io_uring), the last two skipped where they cannot load.
 * Clients and upstreams are the usual test servers (Deno sockets), so with the epoll backend
 * every hop also mixes the two kinds in one process. Covered: routing by Host, keep-alive
 * reuse, 1xx interim responses, 8 MiB each way byte-exact, a chunked response, a connect
 * failure (502 UF), and an Upgrade tunnel with half-close. Each epoll run ends by checking that the network settled,
 * i.e. the proxy left no socket open.
 */
import type { Network } from "../proxy/mod.ts";
import {
  buildSnapshot,
  endpoint,
  startRawUpstream,
  startUpstream,
  TestClient,
} from "./support/proxy.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { freePort, hasIpv6Loopback, readUntil, writeAll } from "./support/sockets.ts";
import {
  backendScenario as scenario,
  socketBackends as backends,
  startProxyOn as startProxy,
} from "./support/backends.ts";

const loopback = { hostname: "127.0.0.1", port: 0 };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A proxy on `network` routing service "svc" to a raw upstream that answers with `reply`. */
async function proxyToRawUpstream(network: Network, reply?: (n: number) => string) {
  const up = startRawUpstream(reply);
  const p = await startProxy(
    network,
    buildSnapshot({ outbound: { svc: { endpoints: [endpoint(up.addr)] } } }),
  );
  return { up, p };
}

/** FNV-1a of `bytes`, a checksum both ends compute. */
function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

/** `length` printable bytes with a period (97, prime) that no buffer size divides. */
function textPattern(length: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = 33 + ((i * 7 + seed + (i >>> 10)) % 94);
  return out;
}

for (const backend of backends) {
  scenario(backend, "proxies over IPv6: listener and upstream on ::1", async (network) => {
    const seen: string[] = [];
    const upstream = Deno.serve(
      { hostname: "::1", port: 0, onListen() {} },
      (req, info) => {
        const from = info.remoteAddr;
        seen.push(`${from.hostname}:${from.port} xff=${req.headers.get("x-forwarded-for")}`);
        return new Response(`v6 ${new URL(req.url).pathname}`);
      },
    );
    const p = await startProxy(
      network,
      buildSnapshot({
        outbound: {
          svc: { endpoints: [endpoint({ hostname: "::1", port: upstream.addr.port })] },
        },
      }),
      { hostname: "::1", port: 0 },
    );
    const client = await TestClient.connect(p.outbound);
    try {
      assertEquals(p.outbound.hostname, "::1");
      for (const path of ["/a", "/b"]) {
        const r = await client.request(`GET ${path} HTTP/1.1\nHost: svc`);
        assertEquals([r.status, r.body], [200, `v6 ${path}`]);
      }
      assertEquals(seen.length, 2);
      assertEquals(seen[0], seen[1], "one upstream connection, reused");
      assert(/^::1:\d+ xff=::1$/.test(seen[0]), seen[0]);
    } finally {
      client.close();
      await p.proxy.stop();
      await upstream.shutdown();
    }
  }, !hasIpv6Loopback);

  scenario(backend, "routes by Host to the matching upstream", async (network) => {
    const reviews = await startUpstream((req) =>
      new Response(`reviews ${new URL(req.url).pathname}`)
    );
    const ratings = await startUpstream((req) =>
      new Response(`ratings ${new URL(req.url).pathname}`)
    );
    const p = await startProxy(
      network,
      buildSnapshot({
        outbound: {
          reviews: { endpoints: [endpoint(reviews.addr)] },
          ratings: { endpoints: [endpoint(ratings.addr)] },
        },
      }),
    );
    const client = await TestClient.connect(p.outbound);
    try {
      const a = await client.request("GET /a HTTP/1.1\nHost: reviews");
      assertEquals([a.status, a.body], [200, "reviews /a"]);
      const b = await client.request("GET /b?x=1 HTTP/1.1\nHost: Ratings:9080");
      assertEquals([b.status, b.body], [200, "ratings /b"]);
      const none = await client.request("GET / HTTP/1.1\nHost: nowhere");
      assertEquals([none.status, none.headers.get("x-weft-flag")], [404, "NR"]);
      assertEquals([reviews.requests.length, ratings.requests.length], [1, 1]);
    } finally {
      client.close();
      await p.proxy.stop();
      await Promise.all([reviews.close(), ratings.close()]);
    }
  });

  scenario(backend, "20 sequential requests reuse one upstream connection", async (network) => {
    const { up, p } = await proxyToRawUpstream(network);
    const client = await TestClient.connect(p.outbound);
    try {
      for (let i = 1; i <= 20; i++) {
        const r = await client.request("GET / HTTP/1.1\nHost: svc");
        assertEquals([r.status, r.body], [200, String(i)]);
      }
      assertEquals(up.connections, 1, "upstream TCP connections");
    } finally {
      client.close();
      await p.proxy.stop();
      await up.close();
    }
  });

  scenario(
    backend,
    "1xx interim responses reach the client before the final one",
    async (network) => {
      const { up, p } = await proxyToRawUpstream(
        network,
        () =>
          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\n" +
          "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal",
      );
      const conn = await Deno.connect(p.outbound);
      try {
        await writeAll(conn, encoder.encode("GET / HTTP/1.1\r\nHost: svc\r\n\r\n"));
        const text = decoder.decode(
          await readUntil(conn, (all) => decoder.decode(all).endsWith("final")),
        );
        const interim = text.indexOf("HTTP/1.1 100 Continue\r\n\r\n");
        const hints = text.indexOf("HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\n");
        const final = text.indexOf("HTTP/1.1 200 OK\r\n");
        assert(interim === 0 && hints > interim && final > hints, `relayed:\n${text}`);
        // The connection stays usable after the exchange.
        await writeAll(conn, encoder.encode("GET / HTTP/1.1\r\nHost: svc\r\n\r\n"));
        const again = decoder.decode(
          await readUntil(conn, (all) => decoder.decode(all).endsWith("final")),
        );
        assert(again.startsWith("HTTP/1.1 100 Continue"), `second exchange:\n${again}`);
      } finally {
        conn.close();
        await p.proxy.stop();
        await up.close();
      }
    },
  );

  // A request costs about 0.3 ms here. The upstream and client are Deno sockets in the same
  // process, so this fails if the epoll poller delays the runtime's own I/O (a design that
  // kept the JS thread in epoll_wait did: about 50 ms per hop, on every request). What is
  // guarded is socket latency, which no fake clock governs, so the test counts requests
  // instead of bounding a total: a poller that delays the runtime's I/O delays nearly every
  // request by at least a hop's 50 ms, while a loaded machine stalls only a few of them.
  scenario(backend, "requests are not delayed: most take far less than a poller wait", async (
    network,
  ) => {
    const { up, p } = await proxyToRawUpstream(network);
    const client = await TestClient.connect(p.outbound);
    try {
      await client.request("GET / HTTP/1.1\nHost: svc");
      const requests = 20;
      const delayedMs = 25; // half the delay of one hop in the failure mode
      const delays: number[] = [];
      for (let i = 0; i < requests; i++) {
        const started = performance.now();
        await client.request("GET / HTTP/1.1\nHost: svc");
        const took = performance.now() - started;
        if (took >= delayedMs) delays.push(Math.round(took));
      }
      assert(
        delays.length <= requests / 4,
        `${delays.length} of ${requests} requests took ${delayedMs} ms or more: ${delays}`,
      );
    } finally {
      client.close();
      await p.proxy.stop();
      await up.close();
    }
  });

  scenario(backend, "an 8 MiB upload and an 8 MiB download arrive byte-exact", async (network) => {
    const size = 8 * 1024 * 1024;
    const download = textPattern(size, 5);
    const up = await startUpstream(async (req) => {
      if (req.method === "POST") {
        const body = new Uint8Array(await req.arrayBuffer());
        return new Response(`${body.length} ${fnv1a(body)}`);
      }
      return new Response(download);
    });
    const p = await startProxy(
      network,
      buildSnapshot({ outbound: { bulk: { endpoints: [endpoint(up.addr)] } } }),
    );
    const client = await TestClient.connect(p.outbound);
    try {
      const upload = textPattern(size, 11);
      const posted = await client.request("POST /upload HTTP/1.1\nHost: bulk", upload, "POST");
      assertEquals([posted.status, posted.body], [200, `${size} ${fnv1a(upload)}`]);
      const got = await client.request("GET /download HTTP/1.1\nHost: bulk");
      assertEquals(got.status, 200);
      assertEquals(got.headers.get("content-length"), String(size));
      const body = encoder.encode(got.body);
      assertEquals([body.length, fnv1a(body)], [size, fnv1a(download)], "download");
    } finally {
      client.close();
      await p.proxy.stop();
      await up.close();
    }
  });

  scenario(backend, "a chunked response passes through", async (network) => {
    const parts = Array.from({ length: 40 }, (_, i) => `part ${i} `.repeat(1 + i * 50));
    const up = await startUpstream(() =>
      new Response(
        new ReadableStream({
          start(controller) {
            for (const part of parts) controller.enqueue(encoder.encode(part));
            controller.close();
          },
        }),
      )
    );
    const p = await startProxy(
      network,
      buildSnapshot({ outbound: { stream: { endpoints: [endpoint(up.addr)] } } }),
    );
    const client = await TestClient.connect(p.outbound);
    try {
      const r = await client.request("GET /s HTTP/1.1\nHost: stream");
      assertEquals(r.status, 200);
      assertEquals(r.headers.get("transfer-encoding"), "chunked");
      assertEquals(r.body, parts.join(""));
      // The connection stays usable after the terminating chunk.
      const again = await client.request("GET /s HTTP/1.1\nHost: stream");
      assertEquals(again.body.length, parts.join("").length);
    } finally {
      client.close();
      await p.proxy.stop();
      await up.close();
    }
  });

  scenario(backend, "a connect failure answers 502 with flag UF", async (network) => {
    const dead = { hostname: "127.0.0.1", port: freePort() };
    const p = await startProxy(
      network,
      buildSnapshot({ outbound: { down: { endpoints: [endpoint(dead)] } } }),
    );
    const client = await TestClient.connect(p.outbound);
    try {
      const r = await client.request("GET /f HTTP/1.1\nHost: down");
      assertEquals([r.status, r.headers.get("x-weft-flag")], [502, "UF"]);
      assertEquals(JSON.parse(r.body).flag, "UF");
    } finally {
      client.close();
      await p.proxy.stop();
    }
  });

  scenario(backend, "an Upgrade tunnel carries bytes both ways and half-close", async (network) => {
    // A raw upstream: answers 101, echoes until the client's FIN, then sends "bye" and closes.
    const listener = Deno.listen(loopback);
    const served = (async () => {
      const conn = await listener.accept();
      try {
        const head = await readUntil(conn, (all) => decoder.decode(all).includes("\r\n\r\n"));
        const text = decoder.decode(head);
        assert(/\r\nupgrade: echo\/1\r\n/i.test(text), "upgrade forwarded");
        await writeAll(
          conn,
          encoder.encode(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo/1\r\n\r\n",
          ),
        );
        const early = head.subarray(text.indexOf("\r\n\r\n") + 4);
        if (early.length > 0) await writeAll(conn, early);
        const buf = new Uint8Array(16 * 1024);
        for (let reads = 0; reads < 10_000; reads++) {
          const n = await conn.read(buf);
          if (n === null) break;
          await writeAll(conn, buf.subarray(0, n));
        }
        await writeAll(conn, encoder.encode("bye"));
      } finally {
        conn.close();
      }
    })();
    const p = await startProxy(
      network,
      buildSnapshot({
        outbound: { tunnel: { endpoints: [endpoint({ ...loopback, port: listener.addr.port })] } },
      }),
    );
    const conn = await Deno.connect(p.outbound);
    try {
      await writeAll(
        conn,
        encoder.encode(
          "GET /t HTTP/1.1\r\nHost: tunnel\r\nConnection: Upgrade\r\nUpgrade: echo/1\r\n\r\nping",
        ),
      );
      const head = await readUntil(conn, (all) => decoder.decode(all).includes("ping"));
      assert(decoder.decode(head).startsWith("HTTP/1.1 101 "), "switched protocols");
      // 256 KiB through the tunnel and back, then half-close: the upstream sees end of stream
      // and its last words still come back.
      const bulk = textPattern(256 * 1024, 3);
      const echoed = readUntil(conn, (all) => all.length >= bulk.length);
      await writeAll(conn, bulk);
      const back = await echoed;
      assertEquals([back.length, fnv1a(back)], [bulk.length, fnv1a(bulk)], "echoed bulk");
      await conn.closeWrite();
      const rest = await readUntil(conn, () => false);
      assertEquals(decoder.decode(rest), "bye");
      await served;
    } finally {
      conn.close();
      listener.close();
      await p.proxy.stop();
    }
  });
}
