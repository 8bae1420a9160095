/**
 * @module
 * The HTTP/1.1 codec of a listener connection and the forwarding of each request to an
 * upstream over a pooled HTTP/1.1 connection. Heads are parsed and rewritten as bytes
 * (head.ts); bodies move as bytes through one buffer per socket (content-length, chunked passed through
 * verbatim, or read-to-close), in both directions at once. No Request/Response/Headers objects
 * are created: this path is what decides the proxy's throughput (see bench/http_proxy.ts).
 *
 * Per request: parse head -> route (router.ts, on the snapshot current at that moment) ->
 * cluster balancer pick (cluster.ts) -> pooled connection (pool.ts) -> write head (+ small
 * body in the same write) -> pump request body while reading the response head -> write
 * response head (+ small body) -> pump response body -> return the connection to the pool.
 */
import type { ClusterConfig, EndpointConfig, Logger, Snapshot } from "../lib/mod.ts";
import type { Clock } from "../lib/mod.ts";
import type { Balancer, PickContext, PickOutcome } from "./balancer/balancer.ts";
import type { ClusterManager } from "./cluster.ts";
import type { DeadlineTicker, Expiring } from "./deadlines.ts";
import {
  copyLines,
  type Head,
  HeadWriter,
  keepRequestLine,
  keepResponseLine,
  newHead,
  parseHead,
} from "./head.ts";
import {
  ChunkedScanner,
  ConnReader,
  Framing,
  PipeError,
  ProtocolError,
  pumpChunked,
  pumpLength,
  pumpUntilClose,
  writeAll,
} from "./http1.ts";
import { closeQuietly, type TrackedConnection } from "./listener.ts";
import { localReplyBytes, type ResponseFlag } from "./local_reply.ts";
import { ConnectError, type PoolManager, type UpstreamConnection } from "./pool.ts";
import { hostKey, routeOutbound } from "./router.ts";
import type { AccessLogSink, ListenerKind, ProxyMetrics, RouteStats } from "./stats.ts";

/** What a listener's connections share: the proxy's state, read at each request. */
export interface Http1Context {
  readonly kind: ListenerKind;
  /** The snapshot current now; read once per request. */
  snapshot(): Snapshot;
  readonly clusters: ClusterManager;
  readonly pools: PoolManager;
  readonly metrics: ProxyMetrics;
  readonly clock: Clock;
  /** Route timeouts of all requests of the proxy. */
  readonly deadlines: DeadlineTicker;
  readonly logger: Logger;
  readonly accessLog: AccessLogSink | undefined;
  /** Set on stop: finish the current request, then close. */
  draining: boolean;
}

const noPick: PickContext = {};
const http11 = new TextEncoder().encode("HTTP/1.1");
const headBufferBytes = 16 * 1024;

/**
 * Generated x-request-ids: a random UUID drawn once per process with its last 12 hex digits
 * replaced by a counter, so ids stay UUID-shaped and unique per node (2^48 requests) while
 * costing a string concatenation instead of a random UUID per request.
 */
const requestIdPrefix = crypto.randomUUID().slice(0, 24);
/** Random start, so that two processes sharing a prefix by chance still differ. */
let requestIdCounter = Math.floor(Math.random() * 2 ** 40);
const hexPad = "000000000000";

function nextRequestId(): string {
  const hex = (requestIdCounter++ % 2 ** 48).toString(16);
  return requestIdPrefix + hexPad.slice(hex.length) + hex;
}

/** Upstream stale-connection retries for requests without a body (idle close races). */
const maxStaleRetries = 2;

/** Why an upstream exchange failed before a response head was relayed. */
class UpstreamFailure extends Error {
  constructor(
    readonly flag: ResponseFlag,
    readonly status: number,
    message: string,
    /** The exchange may be retried on a fresh connection (stale pooled connection). */
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

function isReset(err: unknown): boolean {
  const cause = err instanceof PipeError ? err.cause : err;
  return cause instanceof Deno.errors.ConnectionReset ||
    cause instanceof Deno.errors.BrokenPipe ||
    cause instanceof Deno.errors.ConnectionAborted;
}

/** Serves one accepted connection with HTTP/1.1 until it closes. Never throws. */
export function serveHttp1(tracked: TrackedConnection, ctx: Http1Context): Promise<void> {
  return new Http1Session(tracked, ctx).run();
}

class Http1Session implements Expiring {
  readonly reader: ConnReader;
  readonly req: Head = newHead();
  readonly res: Head = newHead();
  readonly out = new HeadWriter(new Uint8Array(headBufferBytes));
  readonly reqScanner = new ChunkedScanner();
  readonly resScanner = new ChunkedScanner();
  readonly clientIp: string;
  readonly conn: Deno.TcpConn;
  readonly outcome: PickOutcome = { latencyMs: 0, ok: true };

  // Per-request state, reset at the start of each request.
  started = 0;
  /** Set when the upstream exchange ended, so the end time is read once. */
  ended = 0;
  status = 0;
  flag: ResponseFlag = "-";
  path = "";
  host = "";
  requestId = "";
  clusterName = "";
  endpoint: EndpointConfig | undefined = undefined;
  upstream: UpstreamConnection | null = null;
  timedOut = false;
  deadline = 0;
  headSent = false;
  reqBodyDone = true;
  reqBodyError: unknown = undefined;
  /** Stats of the cluster of this connection's last request. */
  stats: RouteStats | null = null;

  constructor(readonly tracked: TrackedConnection, readonly ctx: Http1Context) {
    this.conn = tracked.conn;
    this.reader = new ConnReader(tracked.conn);
    this.clientIp = (tracked.conn.remoteAddr as Deno.NetAddr).hostname;
  }

  async run(): Promise<void> {
    const ctx = this.ctx;
    ctx.deadlines.track(this);
    try {
      for (;;) {
        this.tracked.idle = true;
        if (ctx.draining) break;
        let headEnd: number;
        try {
          headEnd = await this.reader.readHeadEnd();
        } catch (err) {
          if (err instanceof ProtocolError) {
            this.started = ctx.clock.now();
            this.#resetRequestState();
            await this.#localReply(400, "DPE", err.message, true).catch(() => {});
            this.#finish();
          }
          break;
        }
        if (headEnd < 0) break;
        this.tracked.idle = false;
        // One request, handled here rather than in a method: an async frame per request
        // (a promise and a microtask hop) is measurable on this path.
        this.started = ctx.clock.now();
        this.#resetRequestState();
        const reader = this.reader;
        let parseError: string | null = null;
        try {
          parseHead(reader.buf, reader.start, headEnd, this.req, true);
          reader.start = headEnd;
        } catch (err) {
          parseError = (err as Error).message;
        }
        if (parseError !== null) {
          this.path = "";
          await this.#localReply(400, "DPE", parseError, true).catch(() => {});
          this.#finish();
          break;
        }
        const active = ctx.kind === "outbound"
          ? ctx.metrics.activeOutbound
          : ctx.metrics.activeInbound;
        active.inc();
        let keep = false;
        try {
          keep = await this.#forward();
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
      closeQuietly(this.conn);
    }
  }

  #resetRequestState(): void {
    this.status = 0;
    this.flag = "-";
    this.path = "";
    this.host = "";
    this.requestId = "";
    this.clusterName = "";
    this.endpoint = undefined;
    this.upstream = null;
    this.timedOut = false;
    this.ended = 0;
    this.headSent = false;
    this.reqBodyDone = true;
    this.reqBodyError = undefined;
  }

  #finish(): void {
    const ctx = this.ctx;
    const durationMs = (this.ended > 0 ? this.ended : ctx.clock.now()) - this.started;
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
        requestId: this.requestId,
      });
    }
  }

  /** Sends a local reply; closes the client afterwards when its request body was not read. */
  async #localReply(
    status: number,
    flag: ResponseFlag,
    message: string,
    close: boolean,
  ): Promise<boolean> {
    const mustClose = close || this.ctx.draining || this.req.close ||
      (this.req.framing !== Framing.None && !this.#bodyConsumed());
    this.status = status;
    this.flag = flag;
    this.headSent = true;
    await writeAll(this.conn, localReplyBytes(status, flag, message, mustClose));
    return !mustClose;
  }

  #bodyConsumed(): boolean {
    return this.req.framing === Framing.Length && this.req.contentLength === 0;
  }

  #forward(): Promise<boolean> {
    const ctx = this.ctx;
    const req = this.req;

    // Request target: origin-form "/p" or absolute-form "http://svc/p" (proxy requests).
    let path = req.target;
    let authority: string | null = null;
    if (path.charCodeAt(0) !== 47 /* / */) {
      if (path.length > 7 && path.slice(0, 7).toLowerCase() === "http://") {
        const slash = path.indexOf("/", 7);
        authority = slash < 0 ? path.slice(7) : path.slice(7, slash);
        const at = authority.lastIndexOf("@");
        if (at >= 0) authority = authority.slice(at + 1);
        path = slash < 0 ? "/" : path.slice(slash);
      } else {
        this.path = path;
        return this.#localReply(400, "DPE", "unsupported request target", true);
      }
    }
    this.path = path;
    req.replaceHost = authority !== null;
    const hostHeader = req.host;
    const destinationHeader = req.destination;
    this.requestId = req.requestId;

    // Route on the snapshot current now; everything up to the pick is synchronous, so a
    // concurrent update() cannot mix two snapshots within one request.
    const snapshot = ctx.snapshot();
    let cluster: ClusterConfig | undefined;
    let timeoutMs: number;
    if (ctx.kind === "outbound") {
      this.host = hostKey(authority ?? hostHeader);
      const routed = routeOutbound(snapshot, this.host, path);
      if (!routed) return this.#localReply(404, "NR", "no route", false);
      cluster = routed.cluster;
      timeoutMs = routed.route.timeoutMs;
    } else {
      this.host = destinationHeader !== "" ? destinationHeader : hostKey(authority ?? hostHeader);
      cluster = snapshot.inbound.get(this.host);
      if (!cluster) return this.#localReply(404, "NR", "no local service", false);
      timeoutMs = snapshot.tuning.routeTimeoutMs;
    }
    this.clusterName = cluster.name;
    const state = ctx.clusters.get(cluster.name);
    const endpoint = state?.balancer.pick(noPick);
    if (!state || !endpoint) return this.#localReply(503, "UH", "no healthy upstream", false);
    this.endpoint = endpoint;

    const headBytes = this.#buildRequestHead(req, path, authority, endpoint, cluster);
    if (timeoutMs > 0) {
      this.deadline = this.started + timeoutMs;
      ctx.deadlines.arm();
    }
    // No async frame of its own: #exchange releases the pick when it ends.
    return this.#exchange(headBytes, endpoint, cluster, snapshot, state.balancer);
  }

  /** Ends a forwarded exchange: clears the deadline and tells the balancer how it went. */
  #release(balancer: Balancer, endpoint: EndpointConfig, ok: boolean): void {
    this.deadline = 0;
    this.ended = this.ctx.clock.now();
    // One outcome object per connection: balancers read it synchronously.
    const outcome = this.outcome;
    outcome.latencyMs = this.ended - this.started;
    outcome.ok = ok;
    balancer.release(endpoint, outcome);
  }

  /** Route timeout: abort the upstream exchange; the request path turns it into UT. */
  expire(): void {
    this.timedOut = true;
    this.upstream?.close();
  }

  /** Upstream request head (and a small fully-buffered body) as bytes ready to write. */
  #buildRequestHead(
    req: Head,
    path: string,
    authority: string | null,
    endpoint: EndpointConfig,
    cluster: ClusterConfig,
  ): Uint8Array {
    const w = this.out;
    w.reset();
    // An HTTP/1.0 client cannot read chunked responses, so its request goes upstream as
    // HTTP/1.0 too: the upstream then answers with a length or by closing.
    if (authority === null && req.minor === 1) w.copy(req.buf, req.start, req.firstLineEnd);
    else w.ascii(`${req.method} ${path} HTTP/1.${req.minor}`);
    w.crlf();
    copyLines(req, w, keepRequestLine);
    // What the proxy adds, as one short string.
    let h = req.forwardedFor === ""
      ? `x-forwarded-for: ${this.clientIp}\r\n`
      : `x-forwarded-for: ${req.forwardedFor}, ${this.clientIp}\r\n`;
    if (authority !== null) h += `host: ${authority}\r\n`;
    if (!req.hasForwardedProto) h += "x-forwarded-proto: http\r\n";
    if (this.requestId === "") {
      this.requestId = nextRequestId();
      h += `x-request-id: ${this.requestId}\r\n`;
    }
    if (endpoint.viaInbound) h += `x-weft-destination: ${cluster.service}\r\n`;
    if (req.framing === Framing.Length) h += `content-length: ${req.contentLength}\r\n\r\n`;
    else if (req.framing === Framing.Chunked) h += "transfer-encoding: chunked\r\n\r\n";
    else h += "\r\n";
    w.ascii(h);

    // Small body already buffered: send it with the head in one write.
    const reader = this.reader;
    if (
      req.framing === Framing.Length && req.contentLength <= reader.buffered &&
      req.contentLength <= 16 * 1024
    ) {
      w.copy(reader.buf, reader.start, reader.start + req.contentLength);
      reader.start += req.contentLength;
      this.reqBodyDone = true;
    } else this.reqBodyDone = req.framing === Framing.None;
    return w.view();
  }

  /**
   * Runs the exchange with the upstream and relays the response, then releases the pick
   * (ok when a status below 500 was sent and nothing threw).
   */
  async #exchange(
    headBytes: Uint8Array,
    endpoint: EndpointConfig,
    cluster: ClusterConfig,
    snapshot: Snapshot,
    balancer: Balancer,
  ): Promise<boolean> {
    let failed = false;
    try {
      const ctx = this.ctx;
      const pool = ctx.pools.pool(endpoint.key, endpoint.hostname, endpoint.port);
      const tuning = snapshot.tuning;
      const req = this.req;
      const res = this.res;
      let bodyPump: Promise<void> | null = null;
      let up: UpstreamConnection | null = null;

      for (let attempt = 0;; attempt++) {
        up = attempt < maxStaleRetries ? pool.takeIdle() : null;
        if (!up) {
          try {
            up = await pool.connect(cluster.connectTimeoutMs);
          } catch (err) {
            if (this.timedOut) {
              return await this.#localReply(504, "UT", "upstream request timeout", false);
            }
            const timedOut = err instanceof ConnectError && err.timedOut;
            return await this.#localReply(
              502,
              "UF",
              timedOut ? "upstream connect timeout" : "upstream connect error",
              false,
            );
          }
          if (this.timedOut) {
            pool.release(up, false, 0);
            return await this.#localReply(504, "UT", "upstream request timeout", false);
          }
        }
        this.upstream = up;
        const fresh = up.uses === 0;
        try {
          let written: number;
          try {
            written = await up.conn.write(headBytes);
          } catch (err) {
            throw this.#sendFailure(up, err);
          }
          if (written < headBytes.length) await this.#sendRest(up, headBytes.subarray(written));
          if (!this.reqBodyDone) bodyPump = this.#pumpRequestBody(up);
          // Read the final response head, relaying 1xx interim responses as they are.
          for (let interim = 0;; interim++) {
            let headEnd: number;
            try {
              headEnd = await up.reader.readHeadEnd();
            } catch (err) {
              throw this.#readFailure(err, fresh, interim);
            }
            if (this.#acceptResponseHead(up, headEnd, fresh, interim)) break;
            await writeAll(this.conn, this.#buildResponseHead(this.res, true, true).view())
              .catch(() => {});
          }
          break;
        } catch (err) {
          pool.release(up, false, 0);
          this.upstream = null;
          if (bodyPump) await bodyPump;
          if (err instanceof UpstreamFailure) {
            if (err.retryable && !this.timedOut && attempt < maxStaleRetries) continue;
            if (this.headSent) return false;
            if (this.timedOut) {
              return await this.#localReply(504, "UT", "upstream request timeout", false);
            }
            return await this.#localReply(err.status, err.flag, err.message, false);
          }
          throw err;
        }
      }

      // Relay the response head, with the body when it is small and already buffered.
      const noBody = req.method === "HEAD" || res.status === 204 || res.status === 304;
      const resFraming = noBody ? Framing.None : res.framing;
      let keepClient = !req.close && !ctx.draining && resFraming !== Framing.UntilClose &&
        this.reqBodyDone;
      const upReader = up.reader;
      const w = this.#buildResponseHead(res, keepClient, false);
      let inlined = false;
      if (
        resFraming === Framing.Length && res.contentLength <= upReader.buffered &&
        res.contentLength <= 16 * 1024
      ) {
        w.copy(upReader.buf, upReader.start, upReader.start + res.contentLength);
        upReader.start += res.contentLength;
        inlined = true;
      }
      const bytes = w.view();
      this.status = res.status;
      this.headSent = true;
      let upstreamOk = true;
      try {
        let written: number;
        try {
          written = await this.conn.write(bytes);
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
        if (this.timedOut) this.flag = "UT";
        else if (err instanceof PipeError && err.side === "dst") this.flag = "DC";
        else if (err instanceof ProtocolError) this.flag = "UPE";
        else this.flag = isReset(err) ? "UR" : "UC";
      }

      // An upstream that answered before reading the whole request body cannot be reused, and
      // the client's unread body makes its connection unusable too.
      if (!this.reqBodyDone) {
        upstreamOk = false;
        keepClient = false;
        up.close();
        closeQuietly(this.conn);
      }
      if (bodyPump) await bodyPump;
      if (this.reqBodyError !== undefined) {
        upstreamOk = false;
        keepClient = false;
      }
      const reusable = upstreamOk && !res.close && upReader.buffered === 0 && !this.timedOut;
      this.upstream = null;
      pool.release(up, reusable, tuning.maxIdlePerEndpoint);
      return keepClient;
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      this.#release(balancer, endpoint, !failed && this.status > 0 && this.status < 500);
    }
  }

  #sendFailure(up: UpstreamConnection, err: unknown): UpstreamFailure {
    return new UpstreamFailure(
      isReset(err) ? "UR" : "UC",
      502,
      "upstream connection terminated",
      up.uses > 0 && this.req.framing === Framing.None,
    );
  }

  /** Writes what the first write of a request head left over. */
  async #sendRest(up: UpstreamConnection, rest: Uint8Array): Promise<void> {
    try {
      await writeAll(up.conn, rest);
    } catch (err) {
      throw this.#sendFailure(up, err);
    }
  }

  /** Streams the request body to the upstream; records failure instead of throwing. */
  async #pumpRequestBody(up: UpstreamConnection): Promise<void> {
    const req = this.req;
    try {
      if (req.framing === Framing.Length) await pumpLength(this.reader, up.conn, req.contentLength);
      else await pumpChunked(this.reader, up.conn, this.reqScanner);
      this.reqBodyDone = true;
    } catch (err) {
      this.reqBodyError = err;
      if (err instanceof PipeError && err.side === "src") {
        // The client went away mid-upload: abandon the exchange.
        this.flag = "DC";
        up.close();
      } else if (err instanceof ProtocolError) {
        this.flag = "DPE";
        up.close();
        closeQuietly(this.conn);
      }
      // A write failure to the upstream shows up on the response side as well.
    }
  }

  /** Why reading a response head failed, as an {@linkcode UpstreamFailure}. */
  #readFailure(err: unknown, fresh: boolean, interim: number): UpstreamFailure {
    if (err instanceof ProtocolError) {
      return new UpstreamFailure("UPE", 502, "upstream protocol error", false);
    }
    const reset = isReset(err);
    return new UpstreamFailure(
      reset ? "UR" : "UC",
      502,
      reset ? "upstream reset" : "upstream connection terminated",
      !fresh && interim === 0 && this.req.framing === Framing.None && reset,
    );
  }

  /**
   * Parses a response head ending at `headEnd` into `this.res`; returns false for a 1xx
   * interim response that the caller relays before reading the next head. Synchronous, so the
   * usual exchange costs no extra async frame.
   */
  #acceptResponseHead(
    up: UpstreamConnection,
    headEnd: number,
    fresh: boolean,
    interim: number,
  ): boolean {
    const res = this.res;
    if (headEnd < 0) {
      throw new UpstreamFailure(
        "UC",
        502,
        "upstream connection terminated",
        !fresh && interim === 0 && this.req.framing === Framing.None,
      );
    }
    const reader = up.reader;
    try {
      parseHead(reader.buf, reader.start, headEnd, res, false);
    } catch {
      throw new UpstreamFailure("UPE", 502, "upstream protocol error", false);
    }
    // The head's bytes stay in the buffer until the next read, which comes after the
    // outgoing head is built.
    reader.start = headEnd;
    return res.status >= 200 || res.status === 101 || interim >= 16;
  }

  /** Client response head; `interim` heads carry no framing headers. */
  #buildResponseHead(res: Head, keepClient: boolean, interim: boolean): HeadWriter {
    const w = this.out;
    w.reset();
    // Status line as HTTP/1.1 (what the proxy speaks), status and reason as received.
    w.copy(http11, 0, 8);
    w.copy(res.buf, res.start + 8, res.firstLineEnd);
    w.crlf();
    copyLines(res, w, keepResponseLine);
    if (!interim) {
      if (res.framing === Framing.Length) {
        w.ascii(
          keepClient
            ? `content-length: ${res.contentLength}\r\n\r\n`
            : `content-length: ${res.contentLength}\r\nconnection: close\r\n\r\n`,
        );
        return w;
      }
      if (res.framing === Framing.Chunked) w.ascii("transfer-encoding: chunked\r\n");
      if (!keepClient) w.ascii("connection: close\r\n");
    }
    w.crlf();
    return w;
  }
}
