/**
 * @module
 * The endpoint layer for HTTP/1.1 upstreams: one try of a request on one connection to one
 * endpoint. It builds the upstream request head (with what the proxy adds: `x-forwarded-*`,
 * `x-request-id`, `x-weft-destination`, the route's header edits), takes a pooled connection
 * (or opens one), writes the head with a small body in the same write, streams a larger body
 * while it reads the response head, relays 1xx interim answers, and classifies what went wrong
 * as an {@linkcode UpstreamFailure}. A pooled connection the upstream closed while idle is
 * retried on another one (at most {@linkcode maxStaleRetries} times) for requests without a
 * body; every other decision about another try belongs to the concrete layer.
 *
 * The head read of the usual try is inlined in {@linkcode tryOnce} rather than in a helper:
 * an async frame per request (a promise and a microtask hop) is measurable on this path.
 */
import type { EndpointConfig } from "../lib/mod.ts";
import type { Exchange } from "./exchange.ts";
import { type Head, parseHead } from "./head.ts";
import { copyLines, type HeadWriter, keepRequestLine } from "./head_writer.ts";
import { Framing, PipeError, ProtocolError, pumpChunked, pumpLength, writeAll } from "./http1.ts";
import { closeQuietly } from "./listener.ts";
import { malformedRequestReply, replies } from "./local_reply.ts";
import { ConnectError, type EndpointPool, type UpstreamConnection } from "./pool.ts";
import { CONNECT_FAILURE, PER_TRY_TIMEOUT, RESET } from "./filters/retry.ts";
import { nextRequestSerial, requestIdLineStart } from "./request_id.ts";
import {
  connectErrorFailure,
  connectTimeoutFailure,
  isReset,
  timedOutTry,
  UpstreamFailure,
} from "./upstream_failure.ts";

/** Upstream stale-connection retries for requests without a body (idle close races). */
export const maxStaleRetries = 2;

/** Largest request body sent in the same write as its head. */
const inlineBodyBytes = 16 * 1024;

/** How a try ended. */
export const enum TryEnd {
  /** The final response head is in `x.res`, its connection in `x.upstream`. */
  Response,
  /** The try failed: `x.failure` says how, `x.failureResult` which retry condition it meets. */
  Failed,
  /** The route deadline passed: the request ends with a timeout reply. */
  RouteTimeout,
  /**
   * Something already went to the client, or the client failed the request: it can only be
   * abandoned, and the endpoint is not blamed.
   */
  Abandoned,
}

/** Writes `name` (with its ": "), `value` and the line end. */
function headerLine(w: HeadWriter, name: string, value: string): void {
  w.ascii(name);
  w.ascii(value);
  w.crlf();
}

/**
 * The upstream request head (and a small body already buffered) as bytes ready to write, in
 * `x.out`. Sets `x.reqBodyDone` when nothing of the body is left to stream.
 */
export function buildRequestHead(x: Exchange, endpoint: EndpointConfig): Uint8Array {
  const req = x.req;
  const authority = x.authority;
  const w = x.out;
  w.reset();
  const plain = x.plainRequest;
  const target = plain ? undefined : x.plan.upstreamTarget;
  // An HTTP/1.0 client cannot read chunked responses, so its request goes upstream as
  // HTTP/1.0 too: the upstream then answers with a length or by closing.
  if (authority === null && req.minor === 1 && target === undefined) {
    w.copy(req.buf, req.start, req.firstLineEnd);
  } else w.ascii(`${req.method} ${target ?? x.path} HTTP/1.${req.minor}`);
  w.crlf();
  copyLines(req, w, plain ? keepRequestLine : x.keepRequest);
  // What the proxy adds, written piece by piece: a string built with `+` is a rope that
  // would be flattened (copied) before its characters could be read.
  if (req.forwardedFor === "") {
    const line = x.forwardedForLine;
    w.copy(line, 0, line.length);
  } else {
    w.ascii("x-forwarded-for: ");
    w.ascii(req.forwardedFor);
    w.ascii(", ");
    w.ascii(x.clientIp);
    w.crlf();
  }
  if (!plain) {
    const rewritten = x.plan.upstreamAuthority;
    if (rewritten !== undefined) headerLine(w, "host: ", rewritten);
    else if (authority !== null) headerLine(w, "host: ", authority);
    if (x.plan.requestPlan !== null) w.ascii(x.plan.requestPlan.appendText);
  } else if (authority !== null) headerLine(w, "host: ", authority);
  if (!req.hasForwardedProto) w.ascii("x-forwarded-proto: http\r\n");
  if (x.requestId === "") {
    x.requestSerial = nextRequestSerial();
    w.ascii(requestIdLineStart);
    // 48 bits as two 24-bit halves: small-integer arithmetic.
    const low = x.requestSerial % 0x1000000;
    w.hex24((x.requestSerial - low) / 0x1000000);
    w.hex24(low);
    w.crlf();
  }
  if (endpoint.viaInbound) headerLine(w, "x-weft-destination: ", x.cluster!.service);
  if (req.upgrade !== "") {
    w.ascii("connection: upgrade\r\n");
    headerLine(w, "upgrade: ", req.upgrade);
  }
  if (req.framing === Framing.Length) {
    w.ascii("content-length: ");
    w.decimal(req.contentLength);
    w.crlf();
  } else if (req.framing === Framing.Chunked) w.ascii("transfer-encoding: chunked\r\n");
  w.crlf();

  // Small body already buffered: send it with the head in one write.
  const reader = x.reader;
  if (
    req.framing === Framing.Length && req.contentLength <= reader.buffered &&
    req.contentLength <= inlineBodyBytes
  ) {
    w.copy(reader.buf, reader.start, reader.start + req.contentLength);
    reader.start += req.contentLength;
    x.reqBodyDone = true;
  } else x.reqBodyDone = req.framing === Framing.None;
  return w.view();
}

/**
 * One try: a pooled or new connection from `pool`, the head written, the body streamed (its
 * pump in `x.bodyPump`), the final response head read into `x.res`. Interim 1xx answers are
 * relayed to the client on the way (`x.interimRelayed`).
 */
export async function tryOnce(
  x: Exchange,
  pool: EndpointPool,
  connectTimeoutMs: number,
  headBytes: Uint8Array,
): Promise<TryEnd> {
  x.failure = null;
  x.failureResult = null;
  x.interimRelayed = false;
  for (let attempt = 0;; attempt++) {
    let up = attempt < maxStaleRetries ? pool.takeIdle() : null;
    if (!up) {
      try {
        up = await pool.connect(connectTimeoutMs);
      } catch (err) {
        if (x.timedOut) return TryEnd.RouteTimeout;
        const timedOut = err instanceof ConnectError && err.timedOut;
        x.failure = timedOut ? connectTimeoutFailure : connectErrorFailure;
        x.failureResult = x.tryTimedOut ? PER_TRY_TIMEOUT : CONNECT_FAILURE;
        return TryEnd.Failed;
      }
      if (x.timedOut) {
        pool.release(up, false, 0);
        return TryEnd.RouteTimeout;
      }
      if (x.tryTimedOut) {
        pool.release(up, false, 0);
        x.failure = timedOutTry;
        x.failureResult = PER_TRY_TIMEOUT;
        return TryEnd.Failed;
      }
    }
    x.upstream = up;
    const fresh = up.uses === 0;
    try {
      let written: number;
      try {
        written = up.conn.tryWrite?.(headBytes) ?? -1;
        if (written < 0) written = await up.conn.write(headBytes);
      } catch (err) {
        throw sendFailure(x, up, err);
      }
      if (written < headBytes.length) await sendRest(x, up, headBytes.subarray(written));
      if (!x.reqBodyDone) x.bodyPump = pumpRequestBody(x, up);
      // The response head, read here rather than in readFinalResponseHead or
      // ConnReader.readHeadEnd: no async frame of their own per request.
      let headEnd: number;
      try {
        const upReader = up.reader;
        headEnd = upReader.headEnd();
        while (headEnd < 0) {
          if (!upReader.received(await up.conn.read(upReader.space()))) break;
          headEnd = upReader.headEnd();
        }
      } catch (err) {
        throw readFailure(x, err, fresh, 0);
      }
      if (!acceptResponseHead(x, up, headEnd, fresh, 0)) {
        x.interimRelayed = true;
        await relayInterims(x, up, fresh);
      }
      // A response that came in as the body pump answered the client itself is not relayed.
      if (x.reqBodyError instanceof ProtocolError) {
        throw new UpstreamFailure(replies.terminated, false);
      }
      return TryEnd.Response;
    } catch (err) {
      pool.release(up, false, 0);
      x.upstream = null;
      if (x.bodyPump) await x.bodyPump;
      if (!(err instanceof UpstreamFailure)) throw err;
      // The upstream side failed because the client did (its connection closed by the pump):
      // no failure of the endpoint, and nothing to answer.
      if (x.clientFailed) return TryEnd.Abandoned;
      if (err.retryable && !x.timedOut && !x.tryTimedOut && attempt < maxStaleRetries) continue;
      if (x.headSent) return TryEnd.Abandoned;
      if (x.timedOut) return TryEnd.RouteTimeout;
      if (x.tryTimedOut) {
        x.failure = timedOutTry;
        x.failureResult = PER_TRY_TIMEOUT;
      } else {
        x.failure = err;
        x.failureResult = err.flag === "UPE" ? null : RESET;
      }
      return TryEnd.Failed;
    }
  }
}

/** Reads the upstream's final response head, relaying 1xx interim responses first. */
export async function readFinalResponseHead(
  x: Exchange,
  up: UpstreamConnection,
  fresh: boolean,
): Promise<void> {
  let headEnd: number;
  try {
    headEnd = await up.reader.readHeadEnd();
  } catch (err) {
    throw readFailure(x, err, fresh, 0);
  }
  if (!acceptResponseHead(x, up, headEnd, fresh, 0)) await relayInterims(x, up, fresh);
}

/**
 * Relays the 1xx interim response in `x.res` to the client, and any that follow, until the
 * final response head is in `x.res`.
 */
async function relayInterims(x: Exchange, up: UpstreamConnection, fresh: boolean): Promise<void> {
  for (let interim = 1;; interim++) {
    await x.relayInterim();
    let headEnd: number;
    try {
      headEnd = await up.reader.readHeadEnd();
    } catch (err) {
      throw readFailure(x, err, fresh, interim);
    }
    if (acceptResponseHead(x, up, headEnd, fresh, interim)) return;
  }
}

function sendFailure(x: Exchange, up: UpstreamConnection, err: unknown): UpstreamFailure {
  return new UpstreamFailure(
    isReset(err) ? replies.reset : replies.terminated,
    up.uses > 0 && x.req.framing === Framing.None,
  );
}

/** Writes what the first write of a request head left over. */
export async function sendRest(
  x: Exchange,
  up: UpstreamConnection,
  rest: Uint8Array,
): Promise<void> {
  try {
    await writeAll(up.conn, rest);
  } catch (err) {
    throw sendFailure(x, up, err);
  }
}

/** Streams the request body to the upstream; records failure instead of throwing. */
export async function pumpRequestBody(x: Exchange, up: UpstreamConnection): Promise<void> {
  const req = x.req;
  try {
    if (req.framing === Framing.Length) await pumpLength(x.reader, up.conn, req.contentLength);
    else await pumpChunked(x.reader, up.conn, x.reqScanner);
    x.reqBodyDone = true;
  } catch (err) {
    x.reqBodyError = err;
    if (err instanceof PipeError && err.side === "src") {
      // The client went away mid-upload: abandon the exchange.
      x.flag = "DC";
      x.clientFailed = true;
      up.close();
    } else if (err instanceof ProtocolError) {
      // A malformed body (a bad chunk size) is the client's fault: it gets a 400 when nothing
      // of a response went to it yet (the try is then abandoned, and not held against the
      // endpoint), and its connection is closed, since where its next request starts is lost.
      const answer = x.headSent ? null : x.reply(malformedRequestReply(err), true);
      x.flag = "DPE";
      x.clientFailed = true;
      up.close();
      if (answer !== null) await answer.catch(() => {});
      closeQuietly(x.conn);
    }
    // A write failure to the upstream shows up on the response side as well.
  }
}

/** Why reading a response head failed, as an {@linkcode UpstreamFailure}. */
function readFailure(x: Exchange, err: unknown, fresh: boolean, interim: number): UpstreamFailure {
  if (err instanceof ProtocolError) return new UpstreamFailure(replies.protocolError, false);
  const reset = isReset(err);
  return new UpstreamFailure(
    reset ? replies.reset : replies.terminated,
    !fresh && interim === 0 && x.req.framing === Framing.None && reset,
  );
}

/**
 * Parses a response head ending at `headEnd` into `x.res`; returns false for a 1xx interim
 * response that the caller relays before reading the next head. Synchronous, so the usual
 * exchange costs no extra async frame.
 */
function acceptResponseHead(
  x: Exchange,
  up: UpstreamConnection,
  headEnd: number,
  fresh: boolean,
  interim: number,
): boolean {
  const res: Head = x.res;
  if (headEnd < 0) {
    throw new UpstreamFailure(
      replies.terminated,
      !fresh && interim === 0 && x.req.framing === Framing.None,
    );
  }
  const reader = up.reader;
  try {
    parseHead(reader.buf, reader.start, headEnd, res, false);
  } catch {
    throw new UpstreamFailure(replies.protocolError, false);
  }
  // The head's bytes stay in the buffer until the next read, which comes after the outgoing
  // head is built.
  reader.start = headEnd;
  return res.status >= 200 || res.status === 101 || interim >= 16;
}
