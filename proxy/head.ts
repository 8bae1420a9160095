/**
 * @module
 * HTTP/1.1 heads parsed and rewritten as bytes. The parser records where each header line
 * sits in the read buffer and classifies the few names the proxy acts on (hop-by-hop, framing,
 * host, forwarding headers); everything else is copied to the outgoing head as raw byte runs.
 * Measured on the benchmark, decoding every head to strings, splitting and re-encoding cost
 * about a quarter of the proxy's CPU per request; this path creates a handful of small strings.
 *
 * A parsed head refers to the reader's buffer: build the outgoing head (head_writer.ts) before
 * reading again.
 *
 * What is refused (RFC 9110/9112), so that nothing an upstream could read differently is
 * forwarded: a method or header name that is not a token; a request-target with a byte outside
 * visible ASCII (a space, a control, a non-ASCII byte), or longer than `maxTargetBytes` (414);
 * a control character other than HTAB in a field value (NUL, a bare CR) or a reason phrase;
 * more than `maxHeaderCount` header lines (431); in a request, two `Host` lines,
 * `Content-Length` with `Transfer-Encoding`, `Transfer-Encoding` in HTTP/1.0, or a
 * `Transfer-Encoding` whose last coding is not `chunked`. Each check is a byte loop over bytes
 * the parser reads anyway, or once more over a value; none allocates on a valid head.
 */
import { Framing, maxHeaderCount, maxTargetBytes, ProtocolError } from "./http1.ts";

/** What the proxy does with a header line. */
export const enum Kind {
  /** End-to-end: copied as is. */
  Other = 0,
  /** Hop-by-hop: never forwarded. */
  Drop,
  Host,
  XForwardedFor,
  XForwardedProto,
  XRequestId,
  XWeftDestination,
  ContentLength,
  TransferEncoding,
  Connection,
  /** Hop-by-hop like Drop, but its value is read: an upgrade request keeps it. */
  Upgrade,
}

/** A parsed head. Offsets index `buf`; `names`/`values` are only filled by `headerList`. */
export interface Head {
  buf: Uint8Array;
  /** Start of the first line and end of it (before CR LF). */
  start: number;
  firstLineEnd: number;
  /** Index just past the blank line. */
  end: number;
  /** Request: method; response: "". */
  method: string;
  /** Request: request-target as sent; response: "". */
  target: string;
  /** Response status; 0 for requests. */
  status: number;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  framing: Framing;
  contentLength: number;
  /** Connection said `close` (or HTTP/1.0 without `keep-alive`). */
  close: boolean;
  /** Lower-cased extra hop-by-hop names listed in `Connection`, if any. */
  connectionTokens: string[] | null;
  /** Some line ended in a bare LF: copy line by line, normalising to CRLF. */
  bareLf: boolean;
  count: number;
  lineStart: number[];
  /** End of each line's value, before CR LF. */
  lineEnd: number[];
  nameEnd: number[];
  kind: number[];
  /** Request in absolute form: its Host line is replaced by the target's authority. */
  replaceHost: boolean;
  /** Values of the headers the proxy reads ("" when absent). */
  host: string;
  forwardedFor: string;
  hasForwardedProto: boolean;
  requestId: string;
  destination: string;
  /**
   * The protocol(s) of `Upgrade` when `Connection` lists `upgrade` (HTTP/1.1 only), else "".
   * Requests asking for `h2c` get "" (Envoy strips h2c upgrades too): the proxy routes each
   * request itself rather than handing the connection to one upstream.
   */
  upgrade: string;
}

/** An empty head; heads are reused per connection. */
export function newHead(): Head {
  return {
    buf: new Uint8Array(0),
    start: 0,
    firstLineEnd: 0,
    end: 0,
    method: "",
    target: "",
    status: 0,
    minor: 1,
    framing: Framing.None,
    contentLength: 0,
    close: false,
    connectionTokens: null,
    bareLf: false,
    count: 0,
    lineStart: [],
    lineEnd: [],
    nameEnd: [],
    kind: [],
    replaceHost: false,
    host: "",
    forwardedFor: "",
    hasForwardedProto: false,
    requestId: "",
    destination: "",
    upgrade: "",
  };
}

const decoder = new TextDecoder();

/** 1 for the bytes of a token (RFC 9110 5.6.2 tchar): method and header names. */
const tokenByte = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  tokenByte[c.charCodeAt(0)] = 1;
}

/** A byte shown in an error message: the character when printable, else its hex code. */
function shown(c: number): string {
  return c > 32 && c < 127 ? `'${String.fromCharCode(c)}'` : `0x${c.toString(16).padStart(2, "0")}`;
}

/** The error for byte `c` of the name of the header line at `pos`. */
function nameError(buf: Uint8Array, pos: number, at: number): ProtocolError {
  const c = buf[at];
  if (c === 32 || c === 9) {
    let p = at;
    while (buf[p] === 32 || buf[p] === 9) p++;
    if (buf[p] === 58) return new ProtocolError("header name: whitespace before the colon");
  }
  const name = text(buf, pos, at);
  return new ProtocolError(
    `header name${name === "" ? "" : ` "${name}…"`}: expected token characters, got ${shown(c)}`,
  );
}

/** The error for the control character at `at` in the header line at `pos`. */
function controlError(buf: Uint8Array, pos: number, at: number): ProtocolError {
  let colon = pos;
  while (colon < at && buf[colon] !== 58) colon++;
  if (colon === at) return nameError(buf, pos, at);
  const c = buf[at];
  return new ProtocolError(
    `header "${text(buf, pos, colon).toLowerCase()}": expected visible characters, spaces or ` +
      `tabs in the value, got ${shown(c)}`,
  );
}

/** Case-insensitive compare of `buf[p, p + name.length)` with a lower-case ASCII name. */
function nameIs(buf: Uint8Array, p: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const e = name.charCodeAt(i);
    const b = buf[p + i];
    if (b !== e && !(e >= 97 && (b | 0x20) === e)) return false;
  }
  return true;
}

/** Classifies a header name (`len` bytes at `p`). */
function classify(buf: Uint8Array, p: number, len: number): Kind {
  switch (len) {
    case 2:
      return nameIs(buf, p, "te") ? Kind.Drop : Kind.Other;
    case 4:
      return nameIs(buf, p, "host") ? Kind.Host : Kind.Other;
    case 7:
      if (nameIs(buf, p, "upgrade")) return Kind.Upgrade;
      return nameIs(buf, p, "trailer") ? Kind.Drop : Kind.Other;
    case 10:
      if (nameIs(buf, p, "connection")) return Kind.Connection;
      return nameIs(buf, p, "keep-alive") ? Kind.Drop : Kind.Other;
    case 12:
      return nameIs(buf, p, "x-request-id") ? Kind.XRequestId : Kind.Other;
    case 14:
      return nameIs(buf, p, "content-length") ? Kind.ContentLength : Kind.Other;
    case 15:
      return nameIs(buf, p, "x-forwarded-for") ? Kind.XForwardedFor : Kind.Other;
    case 16:
      return nameIs(buf, p, "proxy-connection") ? Kind.Drop : Kind.Other;
    case 17:
      if (nameIs(buf, p, "transfer-encoding")) return Kind.TransferEncoding;
      return nameIs(buf, p, "x-forwarded-proto") ? Kind.XForwardedProto : Kind.Other;
    case 18:
      if (nameIs(buf, p, "x-weft-destination")) return Kind.XWeftDestination;
      return nameIs(buf, p, "proxy-authenticate") ? Kind.Drop : Kind.Other;
    case 19:
      return nameIs(buf, p, "proxy-authorization") ? Kind.Drop : Kind.Other;
    default:
      return Kind.Other;
  }
}

/** Longest run decoded in JS; TextDecoder is a runtime call, dearer than a short loop. */
const shortTextBytes = 64;

function text(buf: Uint8Array, from: number, to: number): string {
  if (to - from <= shortTextBytes) {
    // Heads are ASCII in practice (host, target, ids): build the string without the subarray
    // view and the runtime call; anything non-ASCII goes through the decoder (UTF-8 rules).
    let s = "";
    for (let i = from; i < to; i++) {
      const c = buf[i];
      if (c >= 0x80) return decoder.decode(buf.subarray(from, to));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decoder.decode(buf.subarray(from, to));
}

/**
 * `text(buf, from, to)`, or `previous` when it spells the same bytes: a header that repeats on
 * every request of a connection (Host) keeps one string, so no allocation, and its hash (for
 * the route lookups keyed by host) is computed once.
 */
function sameOrText(previous: string, buf: Uint8Array, from: number, to: number): string {
  const n = to - from;
  if (previous.length === n) {
    let i = 0;
    while (i < n && previous.charCodeAt(i) === buf[from + i]) i++;
    if (i === n) return previous;
  }
  return text(buf, from, to);
}

/**
 * Index of the line feed that ends the header line at `from`, like {@linkcode lineFeed}, and
 * throws on a control character in the line other than HTAB or the CR before the LF: RFC 9110
 * 5.5, CR, LF and NUL never pass in a value, and no other control is field content either.
 * Checked in the loop that finds the line's end, so a valid line costs one compare per byte.
 */
function fieldLineFeed(buf: Uint8Array, from: number, end: number): number {
  let lf = from;
  for (; lf < end; lf++) {
    const c = buf[lf];
    if (c < 32 || c === 127) {
      if (c === 10) return lf;
      if (c !== 9 && !(c === 13 && buf[lf + 1] === 10)) throw controlError(buf, from, lf);
    }
  }
  throw new ProtocolError("truncated head");
}

/**
 * Index of the first line feed in `buf[from, end)`; throws when the head ends without one. A
 * byte loop: lines are short, and `indexOf` on a typed array is a C++ builtin whose entry costs
 * more than the scan.
 */
function lineFeed(buf: Uint8Array, from: number, end: number): number {
  let lf = from;
  while (lf < end && buf[lf] !== 10) lf++;
  if (lf >= end) throw new ProtocolError("truncated head");
  return lf;
}

/** HTTP/1.x version at `p` (8 bytes): returns the minor version. */
function version(buf: Uint8Array, p: number, limit: number): number {
  if (
    p + 8 > limit || buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 ||
    buf[p + 3] !== 80 || buf[p + 4] !== 47 || buf[p + 5] !== 49 || buf[p + 6] !== 46
  ) {
    throw new ProtocolError("unsupported protocol version");
  }
  const minor = buf[p + 7];
  if (minor === 49) return 1;
  if (minor === 48) return 0;
  throw new ProtocolError("unsupported protocol version");
}

/**
 * The method `buf[from, to)`, already checked to be a token; the usual ones without building a
 * string. Every byte is compared: a `HEXX` taken for `HEAD` would make the proxy expect a
 * response without a body, and read the upstream's body as the next response.
 */
function internMethod(buf: Uint8Array, from: number, to: number): string {
  const len = to - from;
  if (len === 3 && buf[from] === 71 && buf[from + 1] === 69 && buf[from + 2] === 84) return "GET";
  if (len === 4 && buf[from + 3] === 84 && buf[from] === 80 && buf[from + 1] === 79) {
    if (buf[from + 2] === 83) return "POST";
  } else if (len === 4 && buf[from] === 72 && buf[from + 1] === 69) {
    if (buf[from + 2] === 65 && buf[from + 3] === 68) return "HEAD";
  }
  return text(buf, from, to);
}

/**
 * Parses the head in `buf[start, end)` (`end` just past the blank line, as found by
 * `findHeadEnd`). Throws {@linkcode ProtocolError} on malformed or smuggling-prone input.
 */
export function parseHead(
  buf: Uint8Array,
  start: number,
  end: number,
  head: Head,
  isRequest: boolean,
): void {
  head.buf = buf;
  head.start = start;
  head.end = end;
  // Spaces, like line feeds (lineFeed), are found by byte loops rather than `indexOf`.
  let lf = lineFeed(buf, start, end);
  const le = lf > start && buf[lf - 1] === 13 ? lf - 1 : lf;
  head.firstLineEnd = le;
  head.bareLf = le === lf;
  if (isRequest) {
    let sp1 = start;
    while (sp1 < le && buf[sp1] !== 32) sp1++;
    let sp2 = le - 1;
    while (sp2 > sp1 && buf[sp2] !== 32) sp2--;
    if (sp1 <= start || sp1 >= le || sp2 <= sp1 + 1) {
      throw new ProtocolError("malformed request line");
    }
    head.minor = version(buf, sp2 + 1, le);
    if (sp2 + 9 !== le) throw new ProtocolError("malformed request line");
    for (let i = start; i < sp1; i++) {
      if (tokenByte[buf[i]] === 0) {
        throw new ProtocolError(`method: expected token characters, got ${shown(buf[i])}`);
      }
    }
    if (sp2 - sp1 - 1 > maxTargetBytes) {
      throw new ProtocolError(`request-target: longer than ${maxTargetBytes} bytes`, 414);
    }
    for (let i = sp1 + 1; i < sp2; i++) {
      const c = buf[i];
      if (c <= 32 || c >= 127) {
        throw new ProtocolError(
          `request-target: expected visible ASCII characters, got ${shown(c)}`,
        );
      }
    }
    head.method = internMethod(buf, start, sp1);
    head.target = text(buf, sp1 + 1, sp2);
    head.status = 0;
  } else {
    head.minor = version(buf, start, le);
    const s = start + 9;
    if (buf[start + 8] !== 32 || s + 3 > le) throw new ProtocolError("malformed status line");
    const d0 = buf[s] - 48, d1 = buf[s + 1] - 48, d2 = buf[s + 2] - 48;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) {
      throw new ProtocolError("malformed status code");
    }
    for (let i = s + 3; i < le; i++) {
      const c = buf[i];
      if ((c < 32 && c !== 9) || c === 127) {
        throw new ProtocolError(`reason phrase: expected visible characters, got ${shown(c)}`);
      }
    }
    head.status = d0 * 100 + d1 * 10 + d2;
    head.method = "";
    head.target = "";
  }

  head.replaceHost = false;
  const previousHost = head.host;
  head.host = "";
  head.forwardedFor = "";
  head.hasForwardedProto = false;
  head.requestId = "";
  head.destination = "";
  head.connectionTokens = null;
  head.close = head.minor === 0;
  let contentLength = -1;
  let transferEncoding: string | null = null;
  let connection: string | null = null;
  let upgrade: string | null = null;
  let hosts = 0;
  let count = 0;
  const { lineStart, lineEnd, nameEnd, kind } = head;
  let pos = lf + 1;
  for (;;) {
    lf = fieldLineFeed(buf, pos, end);
    const lineEndAt = lf > pos && buf[lf - 1] === 13 ? lf - 1 : lf;
    if (lineEndAt === lf) head.bareLf = true;
    if (lineEndAt === pos) break;
    const first = buf[pos];
    if (first === 32 || first === 9) throw new ProtocolError("obsolete header line folding");
    if (count === maxHeaderCount) {
      throw new ProtocolError(`headers: more than ${maxHeaderCount} header lines`, 431);
    }
    // Names are short: a byte loop finds the colon sooner than a builtin call would.
    let colon = pos;
    for (; colon < lineEndAt; colon++) {
      const c = buf[colon];
      if (c === 58) break;
      if (tokenByte[c] === 0) throw nameError(buf, pos, colon);
    }
    if (colon === pos || colon >= lineEndAt) {
      throw new ProtocolError("header line: expected a name and a colon, got no colon");
    }
    const k = classify(buf, pos, colon - pos);
    lineStart[count] = pos;
    lineEnd[count] = lineEndAt;
    nameEnd[count] = colon;
    kind[count] = k;
    count++;
    if (k !== Kind.Other && k !== Kind.Drop) {
      let vs = colon + 1;
      while (vs < lineEndAt && (buf[vs] === 32 || buf[vs] === 9)) vs++;
      let ve = lineEndAt;
      while (ve > vs && (buf[ve - 1] === 32 || buf[ve - 1] === 9)) ve--;
      switch (k) {
        case Kind.ContentLength: {
          if (ve === vs || ve - vs > 15) throw new ProtocolError("invalid content-length");
          let n = 0;
          for (let i = vs; i < ve; i++) {
            const d = buf[i] - 48;
            if (d < 0 || d > 9) throw new ProtocolError("invalid content-length");
            n = n * 10 + d;
          }
          if (contentLength >= 0 && contentLength !== n) {
            throw new ProtocolError("conflicting content-length");
          }
          contentLength = n;
          break;
        }
        case Kind.Host:
          // Two Host lines are read differently by different servers (first or last wins).
          if (++hosts > 1 && isRequest) {
            throw new ProtocolError("host: expected one Host header, got two or more");
          }
          head.host = sameOrText(previousHost, buf, vs, ve);
          break;
        case Kind.XForwardedFor: {
          const v = text(buf, vs, ve);
          head.forwardedFor = head.forwardedFor === "" ? v : `${head.forwardedFor}, ${v}`;
          break;
        }
        case Kind.XForwardedProto:
          head.hasForwardedProto = true;
          break;
        case Kind.XRequestId:
          head.requestId = text(buf, vs, ve);
          break;
        case Kind.XWeftDestination:
          head.destination = text(buf, vs, ve).toLowerCase();
          break;
        case Kind.TransferEncoding: {
          const v = text(buf, vs, ve);
          transferEncoding = transferEncoding === null ? v : `${transferEncoding}, ${v}`;
          break;
        }
        case Kind.Connection: {
          // The usual lone token, compared as bytes: no string, split or trim per message.
          // HTTP/1.1 only, where token order cannot matter (keep-alive changes nothing).
          if (head.minor === 1) {
            if (ve - vs === 10 && nameIs(buf, vs, "keep-alive")) break;
            if (ve - vs === 5 && nameIs(buf, vs, "close")) {
              head.close = true;
              break;
            }
          }
          const v = text(buf, vs, ve);
          connection = connection === null ? v : `${connection}, ${v}`;
          break;
        }
        case Kind.Upgrade: {
          const v = text(buf, vs, ve);
          upgrade = upgrade === null ? v : `${upgrade}, ${v}`;
          break;
        }
      }
    }
    pos = lf + 1;
  }
  head.count = count;
  if (lf + 1 !== end) throw new ProtocolError("malformed head end");

  head.upgrade = "";
  if (connection !== null) {
    let connectionUpgrade = false;
    for (const raw of connection.split(",")) {
      const token = raw.trim().toLowerCase();
      if (token === "close") head.close = true;
      else if (token === "keep-alive") {
        if (head.minor === 0) head.close = false;
      } else if (token === "upgrade") {
        // Not a connection token: `Upgrade` is hop-by-hop by its kind already, so lines
        // need no name lookup for it.
        connectionUpgrade = true;
      } else if (token !== "") (head.connectionTokens ??= []).push(token);
    }
    if (
      connectionUpgrade && upgrade !== null && upgrade !== "" && head.minor === 1 &&
      !(isRequest && upgrade.toLowerCase() === "h2c")
    ) head.upgrade = upgrade;
  }
  head.contentLength = 0;
  if (transferEncoding !== null) {
    if (isRequest) {
      // RFC 9112 6.1 and 6.3: a server may refuse these, and must close the connection if it
      // does not; refused like Envoy does by default, since a server behind that reads the
      // other framing would take the rest of the body for a second request.
      if (contentLength >= 0) {
        throw new ProtocolError(
          "content-length, transfer-encoding: expected one of them, got both",
        );
      }
      if (head.minor === 0) {
        throw new ProtocolError("transfer-encoding: expected HTTP/1.1, got HTTP/1.0");
      }
    }
    if (!/(^|,)\s*chunked\s*$/i.test(transferEncoding)) {
      if (isRequest) throw new ProtocolError("transfer-encoding without final chunked");
      head.framing = Framing.UntilClose;
    } else head.framing = Framing.Chunked;
  } else if (contentLength >= 0) {
    head.contentLength = contentLength;
    head.framing = Framing.Length;
  } else head.framing = isRequest ? Framing.None : Framing.UntilClose;
}

/** The lower-cased name of header line `i`. */
export function headerName(head: Head, i: number): string {
  return text(head.buf, head.lineStart[i], head.nameEnd[i]).toLowerCase();
}

/** The trimmed value of header line `i`. */
export function headerValue(head: Head, i: number): string {
  return text(head.buf, head.nameEnd[i] + 1, head.lineEnd[i]).trim();
}

/** Response reason phrase. */
export function reasonPhrase(head: Head): string {
  return text(head.buf, head.start + 13, head.firstLineEnd);
}
