/**
 * @module
 * Unit tests of the head parser's strictness (RFC 9110/9112): every shape of head it refuses,
 * the status a refusal asks for (400, 414, 431) and the field the message names, and the
 * valid neighbours of each shape, which must still parse.
 */
import { newHead, parseHead } from "./head.ts";
import { ConnReader, maxHeaderCount, maxTargetBytes, ProtocolError } from "./http1.ts";
import type { StreamConn } from "./io/net.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../tests/support/assert.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

function parse(text: string, isRequest = true) {
  const h = newHead();
  const b = bytes(text);
  parseHead(b, 0, b.length, h, isRequest);
  return h;
}

/** Asserts that `text` is refused with `status` and a message containing `includes`. */
function refused(text: string, status: number, includes: string, isRequest = true): void {
  const err = assertThrows(() => parse(text, isRequest), ProtocolError, includes);
  assertEquals(err.status, status, JSON.stringify(text));
}

Deno.test("a control character in a header value is refused, HTAB and obs-text pass", () => {
  for (const c of ["\0", "\r", "\x01", "\x1f", "\x7f", "\v"]) {
    refused(`GET / HTTP/1.1\r\nHost: a\r\nX-A: b${c}c\r\n\r\n`, 400, 'header "x-a"');
    refused(`HTTP/1.1 200 OK\r\nX-A: b${c}c\r\n\r\n`, 400, 'header "x-a"', false);
  }
  // A bare CR at the end of the value, before the line's CR LF.
  refused("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n", 400, "got 0x0d");
  // The value's bytes of a header the proxy reads (Host) are checked as well.
  refused("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 400, 'header "host"');
  const h = parse("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\tc \xe9\r\n\r\n");
  assertEquals(h.count, 2);
});

Deno.test("a header name that is not a token is refused", () => {
  refused("GET / HTTP/1.1\r\nX A: b\r\n\r\n", 400, "header name");
  refused("GET / HTTP/1.1\r\nX\0A: b\r\n\r\n", 400, "header name");
  refused("GET / HTTP/1.1\r\nX-\xe9: b\r\n\r\n", 400, "header name");
  refused("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "whitespace before the colon");
  refused("GET / HTTP/1.1\r\n\rX: a\r\n\r\n", 400, "header name");
  parse("GET / HTTP/1.1\r\nX-A!#$%&'*+.^_`|~9: b\r\n\r\n");
});

Deno.test("a request with two Host headers is refused, also when they agree", () => {
  refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "host: expected one Host");
  refused("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nhost: a\r\n\r\n", 400, "host");
  // An absolute-form target with a Host that disagrees is fine: the target wins.
  assertEquals(parse("GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n").host, "a");
});

Deno.test("a request-target with a byte outside visible ASCII is refused", () => {
  for (const t of ["/a b", "/a\tb", "/a\0b", "/a\rb", "/\x7f", "/\xe9"]) {
    refused(`GET ${t} HTTP/1.1\r\nHost: a\r\n\r\n`, 400, "request-target");
  }
  assertEquals(
    parse("GET /a%20b?q=%22~!$&'()*+,;= HTTP/1.1\r\n\r\n").target,
    "/a%20b?q=%22~!$&'()*+,;=",
  );
});

Deno.test("a method that is not a token is refused, and only GET, HEAD, POST are taken as such", () => {
  refused("G(T / HTTP/1.1\r\n\r\n", 400, "method");
  refused("G\0T / HTTP/1.1\r\n\r\n", 400, "method");
  for (const m of ["GET", "HEAD", "POST", "HEXX", "HEAT", "POKE", "PUST", "POSX", "PUT"]) {
    assertEquals(parse(`${m} / HTTP/1.1\r\n\r\n`).method, m);
  }
});

Deno.test("a request-target over the limit gets 414", () => {
  const at = "/" + "a".repeat(maxTargetBytes - 1);
  assertEquals(parse(`GET ${at} HTTP/1.1\r\n\r\n`).target.length, maxTargetBytes);
  refused(`GET ${at}b HTTP/1.1\r\n\r\n`, 414, `longer than ${maxTargetBytes} bytes`);
});

Deno.test("more header lines than the limit get 431", () => {
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `x-${i}: v\r\n`).join("");
  assertEquals(parse(`GET / HTTP/1.1\r\n${lines(maxHeaderCount)}\r\n`).count, maxHeaderCount);
  refused(`GET / HTTP/1.1\r\n${lines(maxHeaderCount + 1)}\r\n`, 431, "more than 100 header lines");
  refused(`GET / HTTP/1.1\r\n${lines(10_000)}\r\n`, 431, "header lines");
});

Deno.test("a request with Content-Length and Transfer-Encoding, or TE in HTTP/1.0, is refused", () => {
  refused(
    "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    400,
    "content-length, transfer-encoding: expected one of them, got both",
  );
  refused(
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    400,
    "both",
  );
  refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
  // A response with both is framed by Transfer-Encoding (RFC 9112 6.3).
  parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false);
});

Deno.test("a control character in a reason phrase is refused", () => {
  refused("HTTP/1.1 200 O\rK\r\n\r\n", 400, "reason phrase", false);
  refused("HTTP/1.1 200 O\0K\r\n\r\n", 400, "reason phrase", false);
  parse("HTTP/1.1 200 Very OK\tfine\r\n\r\n", false);
});

/** A connection that hands out `data` and then ends. */
function feed(data: Uint8Array): StreamConn {
  let offset = 0;
  return {
    read(p: Uint8Array): Promise<number | null> {
      if (offset >= data.length) return Promise.resolve(null);
      const n = Math.min(p.length, data.length - offset);
      p.set(data.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  } as unknown as StreamConn;
}

Deno.test("a head over 64 KiB gets 431, or 414 when its request line alone is over the limit", async () => {
  const many = "GET / HTTP/1.1\r\n" + "x-a: " + "v".repeat(70_000) + "\r\n\r\n";
  const tooLarge = await assertRejects(
    () => new ConnReader(feed(bytes(many))).readHeadEnd(),
    ProtocolError,
    "head: larger than 65536 bytes",
  );
  assertEquals(tooLarge.status, 431);
  const longLine = "GET /" + "a".repeat(70_000) + " HTTP/1.1\r\n\r\n";
  const uri = await assertRejects(
    () => new ConnReader(feed(bytes(longLine))).readHeadEnd(),
    ProtocolError,
    "request-target",
  );
  assertEquals(uri.status, 414);
  const fits = "GET / HTTP/1.1\r\nx-a: " + "v".repeat(60_000) + "\r\n\r\n";
  assert(await new ConnReader(feed(bytes(fits))).readHeadEnd() > 0, "a 60 KB head is read");
});

/**
 * Fuzz-style: every byte value at every position of a small request's value, name and
 * target. The parser must either refuse with a ProtocolError or accept a head in which the
 * byte sits where it was put, so no input reads as a different message.
 */
Deno.test("every byte in a value, name or target is accepted or refused, never misread", () => {
  const h = newHead();
  const template = "GET /ab HTTP/1.1\r\nX-Na: va\r\nHost: h\r\n\r\n";
  const positions = [5, 6, 20, 21, 24, 25];
  for (const at of positions) {
    for (let c = 0; c < 256; c++) {
      const b = bytes(template);
      b[at] = c;
      try {
        parseHead(b, 0, b.length, h, true);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        continue;
      }
      const ok = c > 32 && c < 127;
      const inValue = at >= 24;
      const inName = at >= 18 && at < 22;
      if (inValue) assert(ok || c === 9 || c === 32 || c >= 128, `value byte 0x${c.toString(16)}`);
      else assert(ok, `${inName ? "name" : "target"} byte 0x${c.toString(16)} accepted`);
      assertEquals([h.count, h.host], [2, "h"], `byte 0x${c.toString(16)} at ${at}`);
    }
  }
});
