/**
 * @module
 * Connection churn: clients that close after each request hand their read buffer (the
 * proxy/buffers.ts pool) and their session on to the next connections, and uploads cut off
 * midway, whose buffers may still have a read pending, never corrupt the bodies of connections
 * that come after them. Idle keep-alive connections hold no read buffer (issue 16): it goes back
 * to the pool between requests and is taken again when the next one comes.
 */
import type { Network } from "../proxy/mod.ts";
import { readBufferBytes, readBufferPool } from "../proxy/http1.ts";
import { idleSessionCount } from "../proxy/session_http1.ts";
import { buildSnapshot, endpoint, startUpstream } from "./support/proxy.ts";
import { assert, eventually } from "./support/assert.ts";
import { backendScenario, socketBackends, startProxyOn } from "./support/backends.ts";
import { readUntil, writeAll } from "./support/sockets.ts";
import { readAll } from "./support/tcp_echo.ts";

const encoder = new TextEncoder();

/** Declares `fn` once per socket backend. */
function scenario(name: string, fn: (network: Network) => Promise<void>): void {
  for (const backend of socketBackends) backendScenario(backend, name, fn);
}

/**
 * One request on a fresh raw connection (no ConnReader on this side, so the test's own reads
 * take nothing from the pool), read until the proxy closes it.
 */
async function closingRequest(port: number, head: string, body = ""): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(conn, encoder.encode(head + "\r\n\r\n" + body));
    return new TextDecoder().decode(await readAll(conn));
  } finally {
    conn.close();
  }
}

scenario(
  "connections closed after each request hand their buffer and session on",
  async (network) => {
    const up = await startUpstream();
    const p = await startProxyOn(
      network,
      buildSnapshot({ outbound: { svc: { endpoints: [endpoint(up.addr)] } } }),
    );
    const head = "GET / HTTP/1.1\r\nHost: svc\r\nConnection: close";
    try {
      // The first request also opens the upstream connection, which keeps a buffer of its own.
      assert((await closingRequest(p.outbound.port, head)).startsWith("HTTP/1.1 200"));
      await eventually(
        "the first connection's buffer is back",
        () => readBufferPool.idle >= 1,
        2000,
      );
      await eventually(
        "the first connection's session is kept",
        () => idleSessionCount() >= 1,
        2000,
      );
      const before = readBufferPool.idle;
      const sessionsBefore = idleSessionCount();
      for (let i = 0; i < 20; i++) {
        const reply = await closingRequest(p.outbound.port, head);
        assert(reply.startsWith("HTTP/1.1 200"), `request ${i}: ${reply.slice(0, 40)}`);
      }
      // Each connection took a buffer from the pool and gave it back: without the give-back the
      // pool would be empty; without the reuse it would hold one buffer per connection.
      await eventually(
        "the last connection's buffer is back",
        () => readBufferPool.idle === before,
        2000,
      );
      // Likewise for sessions: without the reuse one would be kept per connection, without
      // keeping them none would be left.
      await eventually("the session is back", () => idleSessionCount() === sessionsBefore, 2000);
    } finally {
      await p.proxy.stop();
      await up.close();
    }
  },
);

/** Sends `request` on `conn` and reads one response whose body ends with `tail`. */
async function exchange(conn: Deno.Conn, request: string, tail: string): Promise<string> {
  await writeAll(conn, encoder.encode(request));
  const bytes = await readUntil(conn, (all) => new TextDecoder().decode(all).endsWith(tail));
  return new TextDecoder().decode(bytes);
}

scenario("idle keep-alive connections give their read buffer back", async (network) => {
  const up = await startUpstream(async (req) => new Response(`got ${(await req.text()).length}`));
  const p = await startProxyOn(
    network,
    buildSnapshot({ outbound: { svc: { endpoints: [endpoint(up.addr)] } } }),
  );
  const conns: Deno.Conn[] = [];
  try {
    // Opens the upstream connection (which keeps a buffer of its own) before counting.
    const first = await Deno.connect({ hostname: "127.0.0.1", port: p.outbound.port });
    conns.push(first);
    assert((await exchange(first, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n", "got 0")).includes("200"));
    // Enough spare buffers that connections holding one would show as a drop in the count.
    for (let i = 0; i < 8; i++) readBufferPool.give(new Uint8Array(readBufferBytes));
    const before = readBufferPool.idle;
    for (let i = 0; i < 5; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: p.outbound.port });
      conns.push(c);
      const reply = await exchange(c, "GET / HTTP/1.1\r\nHost: svc\r\n\r\n", "got 0");
      assert(reply.startsWith("HTTP/1.1 200"), reply.slice(0, 40));
    }
    await eventually(
      "six idle keep-alive connections hold no read buffer",
      () => readBufferPool.idle === before,
      2000,
    );
    // After idling, a head longer than the small idle buffer and a body still arrive whole.
    const big = "x".repeat(6000);
    const body = "b".repeat(100_000);
    for (const c of conns) {
      const reply = await exchange(
        c,
        `POST / HTTP/1.1\r\nHost: svc\r\nx-big: ${big}\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        `got ${body.length}`,
      );
      assert(reply.startsWith("HTTP/1.1 200"), reply.slice(0, 40));
    }
    await eventually("idle again, buffers back", () => readBufferPool.idle === before, 2000);
  } finally {
    for (const c of conns) c.close();
    await p.proxy.stop();
    await up.close();
  }
});

scenario("uploads cut off midway do not corrupt later connections' bodies", async (network) => {
  // Answers with the whole body and its length (not chunked), so the raw reply is easy to check.
  const up = await startUpstream(async (req) => {
    try {
      return new Response(await req.text());
    } catch {
      return new Response("cut off", { status: 400 }); // the uploads that went away
    }
  });
  const p = await startProxyOn(
    network,
    buildSnapshot({ outbound: { echo: { endpoints: [endpoint(up.addr)] } } }),
  );
  const port = p.outbound.port;
  try {
    for (let round = 0; round < 10; round++) {
      const work: Promise<void>[] = [];
      for (let i = 0; i < 4; i++) {
        // Promises 100 kB and sends 2 kB, then goes away: the proxy's body pump is mid-read.
        work.push((async () => {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          await conn.write(encoder.encode(
            "POST / HTTP/1.1\r\nHost: echo\r\ncontent-length: 100000\r\n\r\n" + "x".repeat(2000),
          ));
          conn.close();
        })());
        const body = `${round}-${i}-`.padEnd(20_000, String.fromCharCode(97 + ((round + i) % 26)));
        work.push(
          closingRequest(
            port,
            `POST / HTTP/1.1\r\nHost: echo\r\nConnection: close\r\ncontent-length: ${body.length}`,
            body,
          ).then((reply) => {
            assert(reply.startsWith("HTTP/1.1 200"), `round ${round}: ${reply.slice(0, 40)}`);
            const echoed = reply.slice(reply.indexOf("\r\n\r\n") + 4);
            assert(echoed === body, `round ${round}: body of ${echoed.length} bytes differs`);
          }),
        );
      }
      await Promise.all(work);
    }
  } finally {
    await p.proxy.stop();
    await up.close();
  }
});
