/**
 * @module
 * Bodies stream through the proxy: a 200 MB upload passes with bounded memory, chunked bodies
 * pass both ways, and a response without length is read until the upstream closes.
 */
import { Registry, silentLogger, type Snapshot } from "../lib/mod.ts";
import { Proxy } from "../proxy/mod.ts";
import { buildSnapshot, endpoint, startUpstream, TestClient } from "./support/proxy.ts";

function assertEquals<T>(actual: T, expected: T, what = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what ? what + ": " : ""}expected ${e}, got ${a}`);
}

const loopback = { hostname: "127.0.0.1", port: 0 };

async function startProxy(snapshot: Snapshot) {
  const proxy = new Proxy({ snapshot, logger: silentLogger, metrics: new Registry() });
  return { proxy, ...(await proxy.start({ outbound: loopback, inbound: loopback })) };
}

/** A raw upstream that counts request body bytes (content-length) and answers the count. */
function startCountingUpstream() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const task = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(256 * 1024);
    let head = "";
    let received = 0;
    let expected = -1;
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        if (expected < 0) {
          head += new TextDecoder().decode(buf.subarray(0, n));
          const end = head.indexOf("\r\n\r\n");
          if (end < 0) continue;
          expected = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? "0");
          received = new TextEncoder().encode(head.slice(end + 4)).length;
        } else received += n;
        if (received >= expected) {
          const body = String(received);
          await conn.write(
            new TextEncoder().encode(
              `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
            ),
          );
          break;
        }
      }
    } finally {
      conn.close();
    }
  })();
  return {
    addr: { hostname: "127.0.0.1", port: listener.addr.port },
    async close() {
      listener.close();
      await task;
    },
  };
}

Deno.test("a 200 MB upload streams through with bounded memory", async () => {
  const up = startCountingUpstream();
  const p = await startProxy(
    buildSnapshot({ outbound: { sink: { endpoints: [endpoint(up.addr)] } } }),
  );
  const total = 200 * 1024 * 1024;
  const chunk = new Uint8Array(1024 * 1024).fill(97);
  const client = await TestClient.connect(p.outbound);
  // This isolate's memory (heap plus array buffers): the process's RSS is shared with the test
  // modules running in parallel, and one of them moving 16 MiB made this test fail once.
  const used = () => {
    const m = Deno.memoryUsage();
    return m.heapUsed + m.external;
  };
  const baseline = used();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, used());
  }, 20);
  try {
    await client.send(`POST /upload HTTP/1.1\r\nHost: sink\r\ncontent-length: ${total}\r\n\r\n`);
    for (let sent = 0; sent < total; sent += chunk.length) await client.send(chunk);
    const r = await client.readResponse();
    assertEquals(r.status, 200);
    assertEquals(r.body, String(total), "bytes the upstream received");
    peak = Math.max(peak, used());
    const grownMb = (peak - baseline) / 1024 / 1024;
    // Buffering the body anywhere would grow the isolate's memory by about 200 MB.
    if (grownMb > 80) throw new Error(`memory grew by ${grownMb.toFixed(0)} MB during the upload`);
  } finally {
    clearInterval(sampler);
    client.close();
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("chunked request and chunked response bodies pass through", async () => {
  // Echoes the request body as a stream, so the response is chunked too.
  const up = await startUpstream((req) => new Response(req.body));
  const p = await startProxy(
    buildSnapshot({ outbound: { echo: { endpoints: [endpoint(up.addr)] } } }),
  );
  const client = await TestClient.connect(p.outbound);
  try {
    await client.send(
      "POST / HTTP/1.1\r\nHost: echo\r\ntransfer-encoding: chunked\r\n\r\n" +
        "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n",
    );
    const r = await client.readResponse();
    assertEquals(r.status, 200);
    assertEquals(r.body, "hello world");
    // The connection stays usable for the next request.
    const again = await client.request("POST / HTTP/1.1\nHost: echo", "second");
    assertEquals(again.body, "second");
  } finally {
    client.close();
    await p.proxy.stop();
    await up.close();
  }
});

Deno.test("a response without length is read until the upstream closes", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const task = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(4096));
    await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"));
    await conn.write(new TextEncoder().encode("part one, "));
    await conn.write(new TextEncoder().encode("part two"));
    conn.close();
  })();
  const p = await startProxy(buildSnapshot({
    outbound: {
      old: { endpoints: [endpoint({ hostname: "127.0.0.1", port: listener.addr.port })] },
    },
  }));
  const client = await TestClient.connect(p.outbound);
  try {
    const r = await client.request("GET / HTTP/1.1\nHost: old");
    assertEquals(r.status, 200);
    assertEquals(r.body, "part one, part two");
    assertEquals(r.headers.get("connection"), "close");
  } finally {
    client.close();
    await p.proxy.stop();
    listener.close();
    await task;
  }
});
