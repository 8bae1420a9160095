/**
 * @module
 * Request validation end to end (issue 16, item 6): loose HTTP sent to a real Proxy on
 * loopback, at the outbound and the inbound listener, is answered by the proxy (400, 414 or
 * 431, flag DPE), never reaches the upstream, and the connection is closed afterwards.
 */
import { Registry, silentLogger } from "../lib/mod.ts";
import type { HostPort } from "../lib/mod.ts";
import { Proxy } from "../proxy/mod.ts";
import { maxHeadBytes, maxTargetBytes } from "../proxy/http1.ts";
import { buildSnapshot, endpoint, startUpstream, TestClient } from "./support/proxy.ts";
import { assert, assertEquals } from "./support/assert.ts";

const loopback = { hostname: "127.0.0.1", port: 0 };

/** An upstream that counts the requests it received whole (head and body). */
async function countingUpstream() {
  let complete = 0;
  const up = await startUpstream(async (req) => {
    await req.arrayBuffer();
    complete++;
    return new Response("ok");
  });
  return {
    up,
    get complete() {
      return complete;
    },
  };
}

/** A proxy whose outbound host `svc` and inbound service `svc` both go to `upstream`. */
async function startProxy(upstream: HostPort) {
  const proxy = new Proxy({
    snapshot: buildSnapshot({
      outbound: { svc: { endpoints: [endpoint(upstream)] } },
      inbound: { svc: upstream },
    }),
    logger: silentLogger,
    metrics: new Registry(),
  });
  const addrs = await proxy.start({ outbound: loopback, inbound: loopback });
  return { proxy, ...addrs };
}

/** Sends `bytes` on a new connection: the answer's status and flag, and whether it closed. */
async function probe(addr: HostPort, bytes: string) {
  const c = await TestClient.connect(addr);
  try {
    await c.send(bytes);
    const r = await c.readResponse();
    return { status: r.status, flag: r.headers.get("x-weft-flag"), closed: await c.closedByPeer() };
  } finally {
    c.close();
  }
}

const shapes: [string, string, number][] = [
  ["NUL in a header value", "GET / HTTP/1.1\r\nHost: svc\r\nX-A: a\0b\r\n\r\n", 400],
  ["bare CR in a header value", "GET / HTTP/1.1\r\nHost: svc\r\nX-A: a\rb\r\n\r\n", 400],
  ["two Host headers", "GET / HTTP/1.1\r\nHost: svc\r\nHost: other\r\n\r\n", 400],
  ["two equal Host headers", "GET / HTTP/1.1\r\nHost: svc\r\nHost: svc\r\n\r\n", 400],
  ["a space in the request-target", "GET /a b HTTP/1.1\r\nHost: svc\r\n\r\n", 400],
  ["a control in the request-target", "GET /a\x01b HTTP/1.1\r\nHost: svc\r\n\r\n", 400],
  ["a header name with a space", "GET / HTTP/1.1\r\nHost: svc\r\nX A: b\r\n\r\n", 400],
  [
    "Content-Length and Transfer-Encoding",
    "POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "0\r\n\r\n",
    400,
  ],
  [
    "a request-target over the limit",
    `GET /${"a".repeat(maxTargetBytes)} HTTP/1.1\r\nHost: svc\r\n\r\n`,
    414,
  ],
  // Exactly the limit's bytes and no end: nothing is left unread when the proxy closes (an
  // unread byte would make the close a reset, which may drop the answer before it is read).
  ["a request line alone over the head limit", `GET /${"a".repeat(maxHeadBytes - 5)}`, 414],
  [
    "a head over 64 KiB",
    `GET / HTTP/1.1\r\nHost: svc\r\nX-A: ${"a".repeat(maxHeadBytes - 32)}`,
    431,
  ],
  [
    "10,000 small headers",
    `GET / HTTP/1.1\r\nHost: svc\r\n${"a: b\r\n".repeat(10_000)}\r\n`,
    431,
  ],
];

for (const [what, bytes, status] of shapes) {
  Deno.test(`${what}: ${status} at both listeners, the upstream sees nothing, closed`, async () => {
    const upstream = await countingUpstream();
    const p = await startProxy(upstream.up.addr);
    try {
      for (const [listener, addr] of [["outbound", p.outbound], ["inbound", p.inbound]] as const) {
        const r = await probe(addr, bytes);
        assertEquals([r.status, r.flag, r.closed], [status, "DPE", true], `${listener}: ${what}`);
      }
      assertEquals(upstream.up.requests.length, 0, "the upstream saw no request");
      // The same proxy and upstream do pass a valid request, at both listeners.
      for (const addr of [p.outbound, p.inbound]) {
        const r = await probe(addr, "GET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n");
        assertEquals(r.status, 200);
      }
      assertEquals(upstream.complete, 2);
    } finally {
      await p.proxy.stop();
      await upstream.up.close();
    }
  });
}

Deno.test("an invalid chunk size gets 400 at both listeners and the connection closes", async () => {
  const upstream = await countingUpstream();
  const p = await startProxy(upstream.up.addr);
  try {
    for (const [listener, addr] of [["outbound", p.outbound], ["inbound", p.inbound]] as const) {
      for (const body of ["zz\r\n", "4\r\nWiki\r\n5x\r\n", "3\r\nabc\r\n0\r\nX: a\nb\r\n\r\n"]) {
        const r = await probe(
          addr,
          `POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
        );
        assertEquals(
          [r.status, r.flag, r.closed],
          [400, "DPE", true],
          `${listener}: ${JSON.stringify(body)}`,
        );
      }
    }
    assertEquals(upstream.complete, 0, "the upstream got no complete request");
    const ok = await probe(
      p.outbound,
      "POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
        "4\r\nWiki\r\n0\r\n\r\n",
    );
    assert(ok.status === 200 && upstream.complete === 1, "a valid chunked body passes");
  } finally {
    await p.proxy.stop();
    await upstream.up.close();
  }
});
