/**
 * @module
 * The session layer for HTTP/1.1: one downstream connection of a listener, decoded request by
 * request, and the downstream half of the codec. Heads are parsed and written as bytes
 * (head.ts); bodies move as bytes through one buffer per socket (content-length, chunked passed
 * through verbatim, or read-to-close), in both directions at once. No Request/Response/Headers
 * objects are created: this path decides the proxy's throughput (see bench/http_proxy.ts).
 *
 * Per request: read and parse the head -> the logical layer routes it (logical.ts) -> the
 * concrete layer picks and tries endpoints (concrete.ts) -> this session writes the response
 * head (with a small body in the same write) and pumps the body, or writes a local reply —
 * every local reply is written by {@linkcode Http1Session.reply} — then records stats and the
 * access log. A session serves its connection's requests one at a time, so it is its own
 * {@linkcode Exchange}; sessions of closed connections are reused by the next ones.
 *
 * The request loop is inlined in `run` rather than split into a method per request: an async
 * frame per request (a promise and a microtask hop) is measurable on this path.
 */
import {
  ConnReader,
  encoder,
  Framing,
  PipeError,
  ProtocolError,
  pumpChunked,
  pumpLength,
  pumpUntilClose,
  writeAll,
} from "./http1.ts";
import { BodyWatch, countTimeout, Phase } from "./downstream_timeouts.ts";
import { Exchange, headBuffers, type ProxyContext } from "./exchange.ts";
import { type Head, parseHead } from "./head.ts";
import { copyLines, type HeadWriter, keepResponseLine } from "./head_writer.ts";
import { closeQuietly, type TrackedConnection } from "./listener.ts";
import { finishConcrete } from "./concrete.ts";
import { forward } from "./logical.ts";
import {
  type LocalReply,
  localReplyBytes,
  malformedRequestReply,
  replies,
  type ResponseFlag,
} from "./local_reply.ts";
import type { UpstreamConnection } from "./pool.ts";
import { requestIdOf } from "./request_id.ts";
import type { RouteStats } from "./stats.ts";
import { joinConnections, tcpIdleTimeoutMs, tcpUpgradeProtocol } from "./tcp.ts";
import { streamFailureFlag } from "./upstream_failure.ts";

const closing = (r: LocalReply) => localReplyBytes(r.status, r.flag, r.message, true);
const headersTimeoutBytes = closing(replies.headersTimeout);
const bodyTimeoutBytes = closing(replies.bodyTimeout);
/** Largest response body sent in the same write as its head. */
const inlineBodyBytes = 16 * 1024;
const http11 = new TextEncoder().encode("HTTP/1.1");
const tcpSwitchingBytes = new TextEncoder().encode(
  `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${tcpUpgradeProtocol}\r\n\r\n`,
);

/** Serves one accepted connection with HTTP/1.1 until it closes. Never throws. */
export function serveHttp1(tracked: TrackedConnection, ctx: ProxyContext): Promise<void> {
  const session = idleSessions.pop();
  if (session === undefined) return new Http1Session(tracked, ctx).run();
  session.attach(tracked, ctx);
  return session.run();
}

/**
 * Sessions of closed connections, reused by the next ones (at most 64 kept). A session is a few
 * KB of objects (heads, plan, scanners, writer); allocated per connection, they made connection
 * churn a GC problem: after a full GC, newly built sessions kept surviving young collections
 * (scavenges of 20-30 ms, p99 of 24 ms for the first seconds of churn, with
 * `--no-allocation-site-pretenuring` already set); reused, 0.4-0.8 ms and 2.6-2.9 ms.
 */
const idleSessions: Http1Session[] = [];
const maxIdleSessions = 64;

/** Sessions kept for reuse right now (for tests). */
export function idleSessionCount(): number {
  return idleSessions.length;
}

class Http1Session extends Exchange {
  tracked!: TrackedConnection;
  /** Stats of the cluster of this connection's last request. */
  stats: RouteStats | null = null;
  /** What `deadline` is for. */
  phase: Phase = Phase.Head;
  readonly bodyWatch: BodyWatch = new BodyWatch(this);
  /** When the last request finished (the idle timeout counts from there). */
  finishedAt = 0;

  constructor(tracked: TrackedConnection, ctx: ProxyContext) {
    super();
    this.attach(tracked, ctx);
  }

  /**
   * Takes a connection: a new session's first, or a reused one's next (from `idleSessions`).
   * Per-request state is reset when each request begins; this sets what belongs to the
   * connection.
   */
  attach(tracked: TrackedConnection, ctx: ProxyContext): void {
    this.tracked = tracked;
    this.ctx = ctx;
    this.conn = tracked.conn;
    this.reader = new ConnReader(tracked.conn);
    const ip = (tracked.conn.remoteAddr as Deno.NetAddr).hostname;
    if (ip !== this.clientIp) {
      this.clientIp = ip;
      this.forwardedForLine = encoder.encode(`x-forwarded-for: ${ip}\r\n`);
    }
    this.stats = null;
    this.deadline = 0;
    this.reader.watch = this.bodyWatch;
    this.bodyWatch.deadline = 0;
    this.phase = Phase.Head;
    this.finishedAt = ctx.clock.now();
  }

  /** Enters `phase` with its deadline `ms` after `from` (0 ms: none). */
  #await(phase: Phase, ms: number, from: number): void {
    this.phase = phase;
    this.deadline = ms > 0 ? from + ms : 0;
    if (ms > 0) this.ctx.deadlines.arm(this.deadline);
  }

  /** Route or per-try timeout while routed; else the idle (close) or head (408) timeout. */
  override expire(): void {
    const phase = this.phase;
    if (phase === Phase.Route) return super.expire();
    if (phase === Phase.Closing) return;
    this.phase = Phase.Closing;
    const conn = this.conn;
    countTimeout(this.ctx, phase === Phase.Idle ? "idle" : "request_headers");
    if (phase === Phase.Idle) closeQuietly(conn);
    else writeAll(conn, headersTimeoutBytes).catch(() => {}).finally(() => closeQuietly(conn));
  }

  /** The body stopped coming: 408 unless a response head went out, then close (see BodyWatch). */
  expireBody(): void {
    if (this.reqBodyDone || this.phase !== Phase.Route) return;
    this.phase = Phase.Closing;
    countTimeout(this.ctx, "request_body");
    this.upstream?.close();
    this.pending?.cancel();
    const conn = this.conn;
    if (this.headSent) return closeQuietly(conn);
    this.headSent = true;
    this.status = replies.bodyTimeout.status;
    this.flag = replies.bodyTimeout.flag;
    writeAll(conn, bodyTimeoutBytes).catch(() => {}).finally(() => closeQuietly(conn));
  }

  async run(): Promise<void> {
    const ctx = this.ctx;
    ctx.deadlines.track(this);
    ctx.deadlines.track(this.bodyWatch);
    try {
      for (;;) {
        this.tracked.idle = true;
        if (ctx.draining) break;
        // A head is timed from accept (first request) or the previous request's end (pipelined);
        // otherwise the connection is idle until a byte comes.
        const tuning = ctx.snapshot().tuning;
        if (this.phase === Phase.Head || this.reader.buffered > 0) {
          this.#await(Phase.Head, tuning.requestHeadersTimeoutMs, this.finishedAt);
        } else this.#await(Phase.Idle, tuning.downstreamIdleTimeoutMs, this.finishedAt);
        // Waiting for a request: the 64 KiB read buffer goes back to the pool (issue 16).
        if (this.reqBodyDone) this.reader.park();
        let headEnd: number;
        try {
          // ConnReader.readHeadEnd inlined: no async frame of its own per request.
          const reader = this.reader;
          headEnd = reader.headEnd();
          while (headEnd < 0) {
            if (!reader.received(await this.conn.read(reader.space()))) break;
            headEnd = reader.headEnd();
            if (headEnd < 0 && this.phase === Phase.Idle) {
              this.#await(Phase.Head, tuning.requestHeadersTimeoutMs, ctx.clock.now());
            }
          }
        } catch (err) {
          if (err instanceof ProtocolError && this.phase !== Phase.Closing) {
            this.phase = Phase.Route;
            this.begin(ctx.clock.now());
            await this.reply(malformedRequestReply(err), true).catch(() => {});
            this.#finish();
          }
          break;
        }
        if (headEnd < 0 || this.phase === Phase.Closing) break;
        this.phase = Phase.Route;
        this.deadline = 0;
        this.tracked.idle = false;
        this.begin(ctx.clock.now());
        const reader = this.reader;
        headEnd -= reader.unpark(); // a head read into the small idle buffer moves to a read buffer
        let parseError: Error | null = null;
        try {
          parseHead(reader.buf, reader.start, headEnd, this.req, true);
          reader.start = headEnd;
        } catch (err) {
          parseError = err as Error;
        }
        if (parseError !== null) {
          await this.reply(malformedRequestReply(parseError), true).catch(() => {});
          this.#finish();
          break;
        }
        const active = ctx.kind === "outbound"
          ? ctx.metrics.activeOutbound
          : ctx.metrics.activeInbound;
        active.inc();
        let keep = false;
        try {
          keep = await forward(this);
        } catch (err) {
          // Anything unexpected: the connection's state is unknown, so close it.
          ctx.logger.debug("request failed", { error: String(err) });
          if (this.status === 0) this.flag = this.flag === "-" ? "DC" : this.flag;
        } finally {
          active.dec();
          this.#finish();
        }
        if (!keep) break;
      }
    } catch (err) {
      ctx.logger.debug("connection handler failed", { error: String(err) });
    } finally {
      ctx.deadlines.untrack(this);
      ctx.deadlines.untrack(this.bodyWatch);
      closeQuietly(this.conn);
      // A request body still being pumped may have a read pending into the read buffer, and
      // it still uses this session (the body pump's failure leaves the flag unset): only then
      // are neither the buffers nor the session reused.
      if (this.reqBodyDone) {
        this.reader.release();
        if (idleSessions.length < maxIdleSessions) idleSessions.push(this);
        else headBuffers.give(this.out.fixed as Uint8Array<ArrayBuffer>);
      }
    }
  }

  /** Records the finished request: breaker holds back, stats, access log. */
  #finish(): void {
    const ctx = this.ctx;
    finishConcrete(this);
    const end = this.finishedAt = this.ended > 0 ? this.ended : ctx.clock.now();
    const durationMs = end - this.started;
    // Requests on a connection usually go to one cluster: skip the map lookup then.
    let stats = this.stats;
    if (stats === null || stats.cluster !== this.clusterName) {
      stats = this.stats = ctx.metrics.route(ctx.kind, this.clusterName);
    }
    stats.record(this.status, this.flag, durationMs);
    if (ctx.accessLog) {
      ctx.accessLog({
        listener: ctx.kind,
        method: this.req.method,
        path: this.path,
        host: this.host,
        status: this.status,
        flag: this.flag,
        cluster: this.clusterName,
        upstream: this.endpoint?.key ?? "",
        durationMs,
        requestId: this.requestSerial < 0 ? this.requestId : requestIdOf(this.requestSerial),
      });
    }
  }

  /** Closes the client afterwards when asked, or when its request body was not read. */
  #mustClose(close: boolean): boolean {
    const req = this.req;
    return close || this.ctx.draining || req.close ||
      (req.framing !== Framing.None &&
        !(req.framing === Framing.Length && req.contentLength === 0));
  }

  override async reply(
    reply: LocalReply,
    close = false,
    flag: ResponseFlag = reply.flag,
  ): Promise<boolean> {
    const mustClose = this.#mustClose(close);
    this.status = reply.status;
    this.flag = flag;
    this.headSent = true;
    await writeAll(this.conn, localReplyBytes(reply.status, flag, reply.message, mustClose));
    return !mustClose;
  }

  override async replyWith(
    status: number,
    bytes: (close: boolean) => Uint8Array,
  ): Promise<boolean> {
    const mustClose = this.#mustClose(false);
    this.status = status;
    this.flag = "-";
    this.headSent = true;
    await writeAll(this.conn, bytes(mustClose));
    return !mustClose;
  }

  override async relayInterim(): Promise<void> {
    await writeAll(this.conn, this.#buildResponseHead(this.res, true, true).view())
      .catch(() => {});
  }

  /**
   * The usual response — head and a small body in one write the socket takes at once, the
   * request body done — completes synchronously: an async frame per request is measurable
   * on this path. Everything else continues in {@linkcode Http1Session.#relayRest}.
   */
  override relayResponse(up: UpstreamConnection): boolean | Promise<boolean> {
    const ctx = this.ctx;
    const req = this.req;
    const res = this.res;
    // Relay the response head, with the body when it is small and already buffered.
    const noBody = req.method === "HEAD" || res.status === 204 || res.status === 304;
    const resFraming = noBody ? Framing.None : res.framing;
    const keepClient = !req.close && !ctx.draining && resFraming !== Framing.UntilClose &&
      this.reqBodyDone;
    const upReader = up.reader;
    const w = this.#buildResponseHead(res, keepClient, false);
    let inlined = resFraming === Framing.None;
    if (
      resFraming === Framing.Length && res.contentLength <= upReader.buffered &&
      res.contentLength <= inlineBodyBytes
    ) {
      w.copy(upReader.buf, upReader.start, upReader.start + res.contentLength);
      upReader.start += res.contentLength;
      inlined = true;
    }
    const bytes = w.view();
    this.status = res.status;
    this.headSent = true;
    let written: number;
    try {
      written = this.conn.tryWrite?.(bytes) ?? -1;
    } catch (err) {
      return this.#relayRest(up, bytes, -1, resFraming, inlined, keepClient, err);
    }
    if (
      written === bytes.length && inlined && this.reqBodyDone && this.bodyPump === null &&
      this.reqBodyError === undefined
    ) {
      this.upstreamReusable = true;
      return keepClient;
    }
    return this.#relayRest(up, bytes, written, resFraming, inlined, keepClient, undefined);
  }

  /** The rest of a response relay: the head's unwritten tail, the body, the request's end. */
  async #relayRest(
    up: UpstreamConnection,
    bytes: Uint8Array,
    written: number,
    resFraming: Framing,
    inlined: boolean,
    keepClient: boolean,
    writeError: unknown,
  ): Promise<boolean> {
    const upReader = up.reader;
    const res = this.res;
    let upstreamOk = true;
    try {
      if (writeError !== undefined) throw new PipeError("dst", "error", writeError);
      try {
        if (written < 0) written = await this.conn.write(bytes);
      } catch (err) {
        throw new PipeError("dst", "error", err);
      }
      if (written < bytes.length) await writeAll(this.conn, bytes.subarray(written));
      if (!inlined) {
        if (resFraming === Framing.Length) {
          await pumpLength(upReader, this.conn, res.contentLength);
        } else if (resFraming === Framing.Chunked) {
          await pumpChunked(upReader, this.conn, this.resScanner);
        } else if (resFraming === Framing.UntilClose) {
          await pumpUntilClose(upReader, this.conn);
          upstreamOk = false;
        }
      }
    } catch (err) {
      upstreamOk = false;
      keepClient = false;
      this.flag = streamFailureFlag(err, this.timedOut);
    }

    // An upstream that answered before reading the whole request body cannot be reused, and
    // the client's unread body makes its connection unusable too.
    if (!this.reqBodyDone) {
      upstreamOk = false;
      keepClient = false;
      up.close();
      closeQuietly(this.conn);
    }
    if (this.bodyPump) await this.bodyPump;
    if (this.reqBodyError !== undefined) {
      upstreamOk = false;
      keepClient = false;
    }
    this.upstreamReusable = upstreamOk;
    return keepClient;
  }

  /**
   * Relays the `101` and then moves bytes both ways until both sides have closed, or either
   * fails, or nothing moved for `idleMs`. An end of stream on one side is passed on as a
   * half-close (TCP FIN) to the other. Bytes already read past either head (a first frame
   * the client sent early, or data the upstream sent right after its 101) go first. The
   * client connection is closed afterwards: it spoke another protocol.
   */
  override async tunnel(up: UpstreamConnection, idleMs: number): Promise<boolean> {
    const ctx = this.ctx;
    // The request body, if any, precedes the tunnel's bytes.
    if (this.bodyPump) await this.bodyPump;
    if (this.reqBodyError !== undefined) return false;
    const res = this.res;
    const w = this.out;
    w.reset();
    w.copy(http11, 0, 8);
    w.copy(res.buf, res.start + 8, res.firstLineEnd);
    w.crlf();
    if (this.plainResponse) copyLines(res, w, keepResponseLine);
    else {
      copyLines(res, w, this.keepResponse);
      w.ascii(this.plan.responseExtra);
    }
    const protocol = res.upgrade !== "" ? res.upgrade : this.req.upgrade;
    w.ascii(`connection: upgrade\r\nupgrade: ${protocol}\r\n\r\n`);
    this.status = 101;
    this.headSent = true;
    try {
      await writeAll(this.conn, w.view());
    } catch {
      this.flag = "DC";
      return false;
    }

    const tunnels = ctx.kind === "outbound"
      ? ctx.metrics.upgradedOutbound
      : ctx.metrics.upgradedInbound;
    tunnels.inc();
    try {
      await joinConnections(this.reader, up.reader, idleMs, ctx.clock);
    } finally {
      up.close();
      tunnels.dec();
    }
    return false;
  }

  override async tcpTunnel(up: UpstreamConnection): Promise<boolean> {
    const ctx = this.ctx;
    this.status = 101;
    this.headSent = true;
    const tunnels = ctx.metrics.upgradedInbound;
    tunnels.inc();
    try {
      await writeAll(this.conn, tcpSwitchingBytes);
      await joinConnections(this.reader, up.reader, tcpIdleTimeoutMs, ctx.clock);
    } catch {
      this.flag = "DC";
    } finally {
      tunnels.dec();
    }
    return false;
  }

  /** Client response head; `interim` heads carry no framing headers. */
  #buildResponseHead(res: Head, keepClient: boolean, interim: boolean): HeadWriter {
    const w = this.out;
    w.reset();
    // Status line as HTTP/1.1 (what the proxy speaks), status and reason as received.
    w.copy(http11, 0, 8);
    w.copy(res.buf, res.start + 8, res.firstLineEnd);
    w.crlf();
    if (interim || this.plainResponse) copyLines(res, w, keepResponseLine);
    else {
      copyLines(res, w, this.keepResponse);
      w.ascii(this.plan.responseExtra);
    }
    if (!interim) {
      if (res.framing === Framing.Length) {
        w.ascii("content-length: ");
        w.decimal(res.contentLength);
        w.crlf();
      } else if (res.framing === Framing.Chunked) w.ascii("transfer-encoding: chunked\r\n");
      if (!keepClient) w.ascii("connection: close\r\n");
    }
    w.crlf();
    return w;
  }
}
