/**
 * @module
 * Unit tests of the HTTP/1.1 codec and the router's pure functions.
 */
import { headerName, newHead, parseHead, reasonPhrase } from "./head.ts";
import { ChunkedScanner, ConnReader, findHeadEnd, Framing, ProtocolError } from "./http1.ts";
import type { StreamConn } from "./io/net.ts";
import { hostKey, pickDestination } from "./router.ts";

function assertEquals<T>(actual: T, expected: T, what = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what ? what + ": " : ""}expected ${e}, got ${a}`);
}

function assertThrowsProtocol(fn: () => void, what: string): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return;
    throw err;
  }
  throw new Error(`${what}: no ProtocolError`);
}

const bytes = (s: string) => new TextEncoder().encode(s);

function parseRequestHead(text: string, h: ReturnType<typeof newHead>): void {
  const b = bytes(text);
  parseHead(b, 0, b.length, h, true);
}

function parseResponseHead(text: string, h: ReturnType<typeof newHead>): void {
  const b = bytes(text);
  parseHead(b, 0, b.length, h, false);
}

function names(h: ReturnType<typeof newHead>): string[] {
  return Array.from({ length: h.count }, (_, i) => headerName(h, i));
}

Deno.test("a head arriving a byte at a time is found at its end, split anywhere", async () => {
  const heads = ["GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT", "GET / HTTP/1.1\nHost: a\n\nNEXT"];
  for (const text of heads) {
    for (const chunk of [1, 2, 3, 5]) {
      const data = bytes(text);
      let offset = 0;
      // Hands out `chunk` bytes per read.
      const conn = {
        read(p: Uint8Array): Promise<number | null> {
          if (offset >= data.length) return Promise.resolve(null);
          const n = Math.min(chunk, p.length, data.length - offset);
          p.set(data.subarray(offset, offset + n));
          offset += n;
          return Promise.resolve(n);
        },
      } as unknown as StreamConn;
      const reader = new ConnReader(conn, 64);
      const end = await reader.readHeadEnd();
      assertEquals(end - reader.start, text.indexOf("NEXT"), `${JSON.stringify(text)} by ${chunk}`);
      // The next head starts fresh: what follows is not mistaken for one.
      reader.start = end;
      await reader.readHeadEnd().then(
        () => {
          throw new Error("a truncated second head was accepted");
        },
        (err) => assertEquals((err as Error).name, "PipeError", "end of stream inside a head"),
      );
    }
  }
});

Deno.test("findHeadEnd finds CRLFCRLF and bare LFLF, or -1 when incomplete", () => {
  assertEquals(findHeadEnd(bytes("GET / HTTP/1.1\r\nA: b\r\n\r\nBODY"), 0, 26), 24);
  assertEquals(findHeadEnd(bytes("GET / HTTP/1.1\n\nX"), 0, 17), 16);
  assertEquals(findHeadEnd(bytes("GET / HTTP/1.1\r\nA: b\r\n"), 0, 22), -1);
});

Deno.test("parseRequestHead reads line, headers and framing", () => {
  const h = newHead();
  parseRequestHead(
    "POST http://svc/p HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\nConnection: close, X-A\r\n\r\n",
    h,
  );
  assertEquals([h.method, h.target, h.minor], ["POST", "http://svc/p", 1]);
  assertEquals(names(h), ["host", "content-length", "connection"]);
  assertEquals(h.host, "svc");
  assertEquals([h.framing, h.contentLength, h.close], [Framing.Length, 5, true]);
  assertEquals(h.connectionTokens, ["x-a"]);
  parseRequestHead("GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", h);
  assertEquals(h.framing, Framing.Chunked);
  parseRequestHead("GET / HTTP/1.0\r\n\r\n", h);
  assertEquals([h.framing, h.close], [Framing.None, true]);
});

Deno.test("parseRequestHead splits the request line at its first and last space", () => {
  const h = newHead();
  const good: [string, string, string][] = [
    ["GET /p?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/p?q=1"],
    ["OPTIONS * HTTP/1.1\r\n\r\n", "OPTIONS", "*"],
    ["DELETE http://svc/x HTTP/1.0\n\n", "DELETE", "http://svc/x"],
  ];
  for (const [text, method, target] of good) {
    parseRequestHead(text, h);
    assertEquals([h.method, h.target], [method, target], text);
  }
  const bad = [
    "GET /HTTP/1.1\r\n\r\n",
    " / HTTP/1.1\r\n\r\n",
    "GET  HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1 \r\n\r\n",
    "GET / HTTP/1.10\r\n\r\n",
  ];
  for (const text of bad) assertThrowsProtocol(() => parseRequestHead(text, h), text);
});

Deno.test("parseRequestHead rejects smuggling-prone heads", () => {
  const h = newHead();
  const bad = [
    "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
    "GET / HTTP/2.0\r\n\r\n",
    "GET\r\n\r\n",
  ];
  for (const text of bad) assertThrowsProtocol(() => parseRequestHead(text, h), text);
});

Deno.test("parseResponseHead: status, reason and read-to-close without length", () => {
  const h = newHead();
  parseResponseHead("HTTP/1.1 404 Not Found\r\nX: y\r\n\r\n", h);
  assertEquals([h.status, reasonPhrase(h), h.framing], [404, "Not Found", Framing.UntilClose]);
  parseResponseHead("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", h);
  assertEquals([h.minor, h.close, h.framing], [0, false, Framing.Length]);
});

Deno.test("parseHead flags upgrades: Connection lists upgrade and Upgrade is present", () => {
  const h = newHead();
  parseRequestHead(
    "GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\nX-A: 1\r\n\r\n",
    h,
  );
  assertEquals([h.upgrade, h.connectionTokens], ["WebSocket", null]);
  const cases: [string, string][] = [
    ["GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", ""],
    ["GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n", ""],
    ["GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", ""],
    ["GET / HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n", ""],
    ["GET / HTTP/1.1\r\nconnection: UPGRADE\r\nupgrade: echo/1\r\n\r\n", "echo/1"],
    ["GET / HTTP/1.1\r\n\r\n", ""],
  ];
  for (const [text, upgrade] of cases) {
    parseRequestHead(text, h);
    assertEquals(h.upgrade, upgrade, JSON.stringify(text));
  }
  parseResponseHead(
    "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    h,
  );
  assertEquals([h.status, h.upgrade], [101, "websocket"]);
});

Deno.test("ChunkedScanner finds the end across arbitrary splits", () => {
  const body = "4;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n";
  const msg = bytes(body + "NEXT");
  for (let split = 1; split < body.length; split++) {
    const s = new ChunkedScanner();
    const first = s.scan(msg, 0, split);
    if (s.done) throw new Error(`done too early at split ${split}`);
    assertEquals(first, split);
    assertEquals(s.scan(msg, split, msg.length), body.length, `end at split ${split}`);
    assertEquals(s.done, true);
  }
});

Deno.test("ChunkedScanner rejects malformed framing", () => {
  for (const body of ["x\r\n", "4\r\nWikiXX", "\r\n"]) {
    assertThrowsProtocol(() => new ChunkedScanner().scan(bytes(body), 0, body.length), body);
  }
});

Deno.test("ChunkedScanner names what it expected and got, and takes no bare LF or control", () => {
  const cases: [string, string][] = [
    ["zz\r\n", "chunk size: expected a hex digit, got 0x7a"],
    ["4x\r\n", "chunk size: expected a hex digit, ';' or CR LF, got 0x78"],
    ["4\nWiki\r\n", "chunk size: expected a hex digit, ';' or CR LF, got 0x0a"],
    ["4\rWiki\r\n", "chunk size line: expected LF after CR, got 0x57"],
    ["4;a\0\r\nWiki\r\n", "chunk extension: expected no control character, got 0x00"],
    ["4;a\nWiki\r\n", "chunk extension: expected no control character, got 0x0a"],
    ["4\r\nWiki\n", "chunk data: expected CR LF after the chunk, got 0x0a"],
    ["0\r\nX: a\n\r\n", "trailer: expected no control character, got 0x0a"],
    ["0\r\nX: a\rb\r\n\r\n", "trailer: expected LF after CR, got 0x62"],
    ["0\r\nX: a\0\r\n\r\n", "trailer: expected no control character, got 0x00"],
    ["0\r\n\n", "trailer: expected no control character, got 0x0a"],
    ["1234567890abc\r\n", "chunk size: expected at most 12 hex digits"],
  ];
  for (const [body, message] of cases) {
    try {
      new ChunkedScanner().scan(bytes(body), 0, body.length);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      if (!err.message.startsWith(message)) {
        throw new Error(`${JSON.stringify(body)}: ${err.message}`);
      }
      assertEquals(err.status, 400);
      continue;
    }
    throw new Error(`${JSON.stringify(body)}: accepted`);
  }
  const s = new ChunkedScanner();
  const ok = '4;a="b c"\tx\r\nWiki\r\n0\r\nX: a\tb\r\n\r\n';
  assertEquals([s.scan(bytes(ok), 0, ok.length), s.done], [ok.length, true]);
});

Deno.test("hostKey lower-cases and strips the port", () => {
  assertEquals(hostKey("Reviews:9080"), "reviews");
  assertEquals(hostKey("reviews"), "reviews");
  assertEquals(hostKey("[::1]:80"), "::1");
  assertEquals(hostKey("reviews.default:9080"), "reviews.default");
  assertEquals(hostKey("API.LOCAL"), "api.local");
  assertEquals(hostKey("Ünïcode.example:1"), "ünïcode.example");
  assertEquals(hostKey(""), "");
});

Deno.test("pickDestination honours weights", () => {
  const d = [{ cluster: "a", weight: 90 }, { cluster: "b", weight: 10 }];
  assertEquals(pickDestination(d, 0.0)?.cluster, "a");
  assertEquals(pickDestination(d, 0.89)?.cluster, "a");
  assertEquals(pickDestination(d, 0.91)?.cluster, "b");
});
