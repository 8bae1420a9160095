/**
 * @module
 * The HTTP/1.1 codec of a listener connection and the forwarding of each request to an
 * upstream over a pooled HTTP/1.1 connection. Heads are parsed and rewritten as bytes
 * (head.ts); bodies move as bytes through one buffer per socket (content-length, chunked passed through
 * verbatim, or read-to-close), in both directions at once. No Request/Response/Headers objects
 * are created: this path is what decides the proxy's throughput (see bench/http_proxy.ts).
 *
 * Per request: parse head -> route (filters/request_plan.ts on the snapshot current at that
 * moment: VirtualService match, redirect, CORS, fault, weighted destination, hash key, rewrite,
 * header edits, mirror) -> circuit-breaker admission (breaker.ts: 503 UO, or a wait for a
 * connection slot) -> cluster balancer pick without ejected endpoints (cluster.ts) -> pooled
 * connection (pool.ts) -> write head (+ small body in the same write) -> pump request body while
 * reading the response head -> report the try's outcome to outlier detection (outlier.ts) ->
 * retry when the route's policy (and `maxRetries`) says so -> write response head (+ small
 * body) -> pump response body -> return the connection to the pool (unless
 * `maxRequestsPerConnection` retires it).
 *
 * Routes without filters take the same path as before the filters existed: the checks they
 * add are a few field tests, and no async step is added unless a fault, retries (which need
 * the small request body in hand) or a mirror ask for it.
 *
 * Upgrade requests (`Connection: upgrade` + `Upgrade`, flagged by the head parse as
 * `head.upgrade`) leave this path after the pick: a dedicated upstream connection, one try,
 * and after a `101` a byte tunnel with an idle timeout instead of the route timeout
 * (#upgrade, #tunnel), as Envoy's `upgrade_configs` do.
 */
import type { StreamConn } from "./io/net.ts";
import type {
  ClusterConfig,
  EndpointConfig,
  Logger,
  RouteRetryPolicy,
  Snapshot,
} from "../lib/mod.ts";
import type { Clock } from "../lib/mod.ts";
import type { Balancer, PickContext, PickOutcome } from "./balancer/balancer.ts";
import type { CircuitBreaker, PendingConnection } from "./breaker.ts";
import type { ClusterManager, ClusterState } from "./cluster.ts";
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
  encoder,
  Framing,
  PipeError,
  ProtocolError,
  pumpChunked,
  pumpLength,
  pumpUntilClose,
  writeAll,
} from "./http1.ts";
import { closeQuietly, type TrackedConnection } from "./listener.ts";
import { BufferPool } from "./buffers.ts";
import type { LocalOriginFailure } from "./outlier.ts";
import { localReplyBytes, type ResponseFlag } from "./local_reply.ts";
import { ConnectError, type PoolManager, type UpstreamConnection } from "./pool.ts";
import { hostKey } from "./router.ts";
import { preflightReplyBytes } from "./filters/cors.ts";
import { mirrorHeadText, type MirrorSender, withBody } from "./filters/mirror.ts";
import { redirectReplyBytes } from "./filters/redirect.ts";
import { Decision, RequestPlan } from "./filters/request_plan.ts";
import { headValue } from "./filters/request_view.ts";
import {
  CONNECT_FAILURE,
  PER_TRY_TIMEOUT,
  RESET,
  retriableResult,
  retryBackoffMs,
  tryDeadline,
  type TryResult,
} from "./filters/retry.ts";
import type { AccessLogSink, ListenerKind, ProxyMetrics, RouteStats } from "./stats.ts";
import { joinConnections, tcpIdleTimeoutMs, tcpUpgradeProtocol } from "./tcp.ts";

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
  /** Sends mirror copies (VirtualService `mirror`), fire and forget. */
  readonly mirrors: MirrorSender;
  /** Set on stop: finish the current request, then close. */
  draining: boolean;
}

/** Largest request body the proxy reads in full before forwarding, for retries and mirrors. */
const maxHeldBodyBytes = 16 * 1024;

const noPick: PickContext = {};
const http11 = new TextEncoder().encode("HTTP/1.1");
const headBufferBytes = 16 * 1024;
/** Head buffers of closed connections, kept for the next ones (see buffers.ts). */
const headBuffers = new BufferPool(headBufferBytes, 64);
const tcpSwitchingBytes = new TextEncoder().encode(
  `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${tcpUpgradeProtocol}\r\n\r\n`,
);

/**
 * Generated x-request-ids: a random UUID drawn once per process with its last 12 hex digits
 * replaced by a counter, so ids stay UUID-shaped and unique per node (2^48 requests) while
 * costing a string concatenation instead of a random UUID per request.
 */
const requestIdPrefix = crypto.randomUUID().slice(0, 24);
/** Random start, so that two processes sharing a prefix by chance still differ. */
let requestIdCounter = Math.floor(Math.random() * 2 ** 40);

const requestIdLineStart = `x-request-id: ${requestIdPrefix}`;

/** The next request id's counter value. */
function nextRequestSerial(): number {
  return requestIdCounter++ % 2 ** 48;
}

/** The id a serial stands for (what the x-request-id line carries), for the access log. */
function requestIdOf(serial: number): string {
  return requestIdPrefix + serial.toString(16).padStart(12, "0");
}

/** Writes `name` (with its ": "), `value` and the line end. */
function headerLine(w: HeadWriter, name: string, value: string): void {
  w.ascii(name);
  w.ascii(value);
  w.crlf();
}

/** Reused retry input for a response status (retry decisions are synchronous). */
const retryStatus: { kind: "status"; status: number } = { kind: "status", status: 0 };

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

class Http1Session implements Expiring {
  // The connection's own state, set by attach() (from the constructor, and on each reuse).
  tracked!: TrackedConnection;
  ctx!: Http1Context;
  conn!: StreamConn;
  reader!: ConnReader;
  clientIp = "";
  /** `x-forwarded-for` for a request that has none, encoded once per client address. */
  #forwardedForLine = new Uint8Array(0);

  readonly req: Head = newHead();
  readonly res: Head = newHead();
  readonly out = new HeadWriter(headBuffers.take());
  readonly reqScanner = new ChunkedScanner();
  readonly resScanner = new ChunkedScanner();
  readonly outcome: PickOutcome = { latencyMs: 0, ok: true };

  /** Slot in the deadline ticker's set. */
  denseIndex = -1;

  // Per-request state, reset at the start of each request.
  started = 0;
  /** Set when the upstream exchange ended, so the end time is read once. */
  ended = 0;
  status = 0;
  flag: ResponseFlag = "-";
  path = "";
  host = "";
  requestId = "";
  /** Serial of the x-request-id this proxy generated (-1: the client sent one, or none yet). */
  requestSerial = -1;
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
  /** Route decisions of the current outbound request (reused per connection). */
  readonly plan: RequestPlan = new RequestPlan();
  /** The request / response heads are relayed without edits (no plan applies). */
  plainRequest = true;
  plainResponse = true;
  /** Retry policy of the route (undefined: one try). */
  retry: RouteRetryPolicy | undefined = undefined;
  /** Absolute route deadline (0: none); `deadline` may be an earlier per-try deadline. */
  routeDeadline = 0;
  /** The current try's `perTryTimeout` expired (the route deadline had not). */
  tryTimedOut = false;
  /** State of the cluster the current try went to (outlier reports, breaker). */
  clusterState: ClusterState | undefined = undefined;
  /** Circuit-breaker holds of the current request, given back in #finish. */
  slotOf: CircuitBreaker | null = null;
  requestOf: CircuitBreaker | null = null;
  retryOf: CircuitBreaker | null = null;
  /** Set while the request waits for a connection slot (`maxConnections`). */
  pending: PendingConnection | null = null;
  /** The current try's outcome was told to outlier detection. */
  tryReported = false;
  readonly #keepRequest = (head: Head, i: number): boolean =>
    keepRequestLine(head, i) && !this.plan.dropsRequestLine(head, i);
  readonly #keepResponse = (head: Head, i: number): boolean =>
    keepResponseLine(head, i) && !this.plan.dropsResponseLine(head, i);

  constructor(tracked: TrackedConnection, ctx: Http1Context) {
    this.attach(tracked, ctx);
  }

  /**
   * Takes a connection: a new session's first, or a reused one's next (from `idleSessions`).
   * Per-request state is reset when each request starts; this sets what belongs to the
   * connection.
   */
  attach(tracked: TrackedConnection, ctx: Http1Context): void {
    this.tracked = tracked;
    this.ctx = ctx;
    this.conn = tracked.conn;
    this.reader = new ConnReader(tracked.conn);
    const ip = (tracked.conn.remoteAddr as Deno.NetAddr).hostname;
    if (ip !== this.clientIp) {
      this.clientIp = ip;
      this.#forwardedForLine = encoder.encode(`x-forwarded-for: ${ip}\r\n`);
    }
    this.stats = null;
    this.deadline = 0;
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
          // ConnReader.readHeadEnd inlined: no async frame of its own per request.
          const reader = this.reader;
          headEnd = reader.headEnd();
          while (headEnd < 0) {
            if (!reader.received(await this.conn.read(reader.space()))) break;
            headEnd = reader.headEnd();
          }
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

  #resetRequestState(): void {
    this.status = 0;
    this.flag = "-";
    this.path = "";
    this.host = "";
    this.requestId = "";
    this.requestSerial = -1;
    this.clusterName = "";
    this.endpoint = undefined;
    this.upstream = null;
    this.timedOut = false;
    this.ended = 0;
    this.headSent = false;
    this.reqBodyDone = true;
    this.reqBodyError = undefined;
    this.plainRequest = true;
    this.plainResponse = true;
    this.retry = undefined;
    this.routeDeadline = 0;
    this.tryTimedOut = false;
    this.clusterState = undefined;
  }

  #finish(): void {
    const ctx = this.ctx;
    if (this.slotOf !== null || this.retryOf !== null) this.#releaseBreaker();
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
        requestId: this.requestSerial < 0 ? this.requestId : requestIdOf(this.requestSerial),
      });
    }
  }

  /** Sends a local reply; closes the client afterwards when its request body was not read. */
  async #localReply(
    status: number,
    flag: ResponseFlag,
    message: string,
    close: boolean,
    bytes?: (close: boolean) => Uint8Array,
  ): Promise<boolean> {
    const mustClose = close || this.ctx.draining || this.req.close ||
      (this.req.framing !== Framing.None && !this.#bodyConsumed());
    this.status = status;
    this.flag = flag;
    this.headSent = true;
    await writeAll(
      this.conn,
      bytes ? bytes(mustClose) : localReplyBytes(status, flag, message, mustClose),
    );
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
    let pick = noPick;
    if (ctx.kind === "outbound") {
      this.host = hostKey(authority ?? hostHeader);
      const plan = this.plan;
      const received = authority ?? hostHeader;
      const decision = plan.decide(
        snapshot,
        req,
        req.method,
        path,
        received,
        this.host,
        this.clientIp,
        Math.random,
      );
      if (decision === Decision.NoRoute) return this.#localReply(404, "NR", "no route", false);
      const route = plan.route!;
      if (decision === Decision.Redirect) {
        const code = route.redirect!.redirectCode;
        const location = plan.location;
        return this.#localReply(code, "-", "", false, (c) => redirectReplyBytes(code, location, c));
      }
      if (decision === Decision.Preflight) {
        const cors = plan.cors!;
        const origin = plan.corsOrigin;
        return this.#localReply(200, "-", "", false, (c) => preflightReplyBytes(cors, origin, c));
      }
      cluster = plan.cluster!;
      timeoutMs = route.timeoutMs;
      pick = plan.pick;
      this.plainRequest = plan.plainRequest;
      this.plainResponse = plan.plainResponse;
      if (plan.upstreamAuthority !== undefined) req.replaceHost = true;
      this.retry = route.retries;
      const fault = plan.fault;
      if (fault.delayMs > 0 || fault.abortStatus > 0) {
        return this.#faultThenDispatch(cluster, timeoutMs, snapshot, path, authority);
      }
    } else {
      this.host = destinationHeader !== "" ? destinationHeader : hostKey(authority ?? hostHeader);
      cluster = snapshot.inbound.get(this.host);
      if (!cluster) return this.#localReply(404, "NR", "no local service", false);
      // Raw TCP tunnels (proxy/tcp.ts): one field test on the plain request path.
      if (cluster.protocol === "tcp" || req.upgrade !== "") {
        const tcpAsked = req.upgrade.toLowerCase() === tcpUpgradeProtocol;
        if (cluster.protocol === "tcp") {
          this.clusterName = cluster.name;
          if (!tcpAsked || req.framing !== Framing.None) {
            return this.#localReply(
              400,
              "-",
              `tcp service: expects upgrade to ${tcpUpgradeProtocol}`,
              true,
            );
          }
          return this.#tcpTunnel(cluster);
        }
        if (tcpAsked) {
          return this.#localReply(400, "-", `service "${this.host}" is not a tcp service`, true);
        }
      }
      timeoutMs = snapshot.tuning.routeTimeoutMs;
    }
    return this.#dispatch(cluster, timeoutMs, snapshot, path, authority, pick, this.started);
  }

  /** Fault injection (delay, then abort) before the request is dispatched. */
  async #faultThenDispatch(
    cluster: ClusterConfig,
    timeoutMs: number,
    snapshot: Snapshot,
    path: string,
    authority: string | null,
  ): Promise<boolean> {
    const fault = this.plan.fault;
    // The delay comes first and is not part of the route timeout (Envoy's fault filter runs
    // before the router).
    if (fault.delayMs > 0) {
      this.flag = "DI";
      await new Promise<void>((resolve) => this.ctx.clock.setTimeout(resolve, fault.delayMs));
    }
    if (fault.abortStatus > 0) {
      this.clusterName = cluster.name;
      return this.#localReply(fault.abortStatus, "FI", "fault filter abort", false);
    }
    // The parsed head points into the read buffer, which nothing has read into since.
    const start = fault.delayMs > 0 ? this.ctx.clock.now() : this.started;
    return this.#dispatch(cluster, timeoutMs, snapshot, path, authority, this.plan.pick, start);
  }

  /** Reads the upstream's final response head, relaying 1xx interim responses first. */
  async #readFinalResponseHead(up: UpstreamConnection, fresh: boolean): Promise<void> {
    let headEnd: number;
    try {
      headEnd = await up.reader.readHeadEnd();
    } catch (err) {
      throw this.#readFailure(err, fresh, 0);
    }
    if (!this.#acceptResponseHead(up, headEnd, fresh, 0)) await this.#relayInterims(up, fresh);
  }

  /**
   * Relays the 1xx interim response in `this.res` to the client, and any that follow, until
   * the final response head is in `this.res`.
   */
  async #relayInterims(up: UpstreamConnection, fresh: boolean): Promise<void> {
    for (let interim = 1;; interim++) {
      await writeAll(this.conn, this.#buildResponseHead(this.res, true, true).view())
        .catch(() => {});
      let headEnd: number;
      try {
        headEnd = await up.reader.readHeadEnd();
      } catch (err) {
        throw this.#readFailure(err, fresh, interim);
      }
      if (this.#acceptResponseHead(up, headEnd, fresh, interim)) return;
    }
  }

  /** The response flag for an exchange that failed while streaming (Envoy's names). */
  #failureFlag(err: unknown): ResponseFlag {
    if (this.timedOut) return "UT";
    if (err instanceof PipeError && err.side === "dst") return "DC";
    if (err instanceof ProtocolError) return "UPE";
    return isReset(err) ? "UR" : "UC";
  }

  /** Picks an endpoint, builds the upstream head, and runs the exchange. */
  #dispatch(
    cluster: ClusterConfig,
    timeoutMs: number,
    snapshot: Snapshot,
    path: string,
    authority: string | null,
    pick: PickContext,
    start: number,
  ): Promise<boolean> {
    const ctx = this.ctx;
    const req = this.req;
    this.clusterName = cluster.name;
    const state = ctx.clusters.get(cluster.name);
    const breaker = state?.breaker;
    if (breaker !== undefined && this.slotOf === null) {
      // Circuit breaker (DestinationRule connectionPool): a connection slot, then a request.
      const slot = breaker.acquireConnection();
      if (slot === false) return this.#localReply(503, "UO", "upstream overflow", false);
      if (slot !== true) {
        return this.#queueThenDispatch(
          slot,
          cluster,
          timeoutMs,
          snapshot,
          path,
          authority,
          pick,
          start,
        );
      }
      this.slotOf = breaker;
      if (!breaker.tryStartRequest()) {
        return this.#localReply(503, "UO", "upstream overflow", false);
      }
      this.requestOf = breaker;
    }
    this.clusterState = state;
    const endpoint = state?.pick(pick);
    if (!state || !endpoint) return this.#localReply(503, "UH", "no healthy upstream", false);
    this.endpoint = endpoint;

    let headBytes = this.#buildRequestHead(req, path, authority, endpoint, cluster);
    if (timeoutMs > 0) {
      this.deadline = this.routeDeadline = start + timeoutMs;
      ctx.deadlines.arm(this.deadline);
    }
    // WebSocket and other upgrades: one try on a connection of their own, never mirrored.
    if (req.upgrade !== "") {
      return this.#upgrade(headBytes, endpoint, cluster, snapshot, state.balancer);
    }
    const mirror = this.plan.mirrorCluster;
    if (ctx.kind === "outbound" && (this.retry !== undefined || mirror !== undefined)) {
      const mirrorHead = mirror === undefined ? "" : this.#mirrorHead(mirror, path, authority);
      // A client that sent `Expect: 100-continue` waits for the upstream's 100 before sending
      // its body, so that body is streamed (one try, no mirror) rather than waited for.
      if (
        !this.reqBodyDone && req.framing === Framing.Length &&
        req.contentLength <= maxHeldBodyBytes && headValue(req, "expect") === null
      ) {
        return this.#holdBodyThenExchange(
          cluster,
          snapshot,
          state.balancer,
          endpoint,
          mirror,
          mirrorHead,
        );
      }
      // Retries resend the head: keep a copy, as the response head reuses the writer.
      if (this.retry !== undefined && this.reqBodyDone) headBytes = headBytes.slice();
      if (mirror !== undefined) this.#sendMirror(mirror, mirrorHead, headBytes);
    }
    // No async frame of its own: #exchange releases the pick when it ends.
    return this.#exchange(headBytes, endpoint, cluster, snapshot, state.balancer);
  }

  /**
   * Waits (bounded by the route timeout) for a connection slot of the cluster's circuit
   * breaker, then dispatches; 503 UO when the request cannot be admitted after all.
   */
  async #queueThenDispatch(
    waiter: PendingConnection,
    cluster: ClusterConfig,
    timeoutMs: number,
    snapshot: Snapshot,
    path: string,
    authority: string | null,
    pick: PickContext,
    start: number,
  ): Promise<boolean> {
    const ctx = this.ctx;
    if (timeoutMs > 0) {
      this.deadline = this.routeDeadline = start + timeoutMs;
      ctx.deadlines.arm(this.deadline);
    }
    this.pending = waiter;
    const granted = await waiter.granted;
    this.pending = null;
    if (granted) this.slotOf = waiter.breaker;
    if (this.timedOut) return this.#localReply(504, "UT", "upstream request timeout", false);
    if (!granted || !waiter.breaker.tryStartRequest()) {
      return this.#localReply(503, "UO", "upstream overflow", false);
    }
    this.requestOf = waiter.breaker;
    // The parsed head still points into the read buffer, which nothing has read into since.
    return this.#dispatch(cluster, timeoutMs, snapshot, path, authority, pick, start);
  }

  /** Gives back what the request holds of a circuit breaker. */
  #releaseBreaker(): void {
    this.requestOf?.endRequest();
    this.retryOf?.endRetry();
    this.slotOf?.releaseConnection();
    this.slotOf = this.requestOf = this.retryOf = null;
  }

  /** Admits a retry under the breaker's `maxRetries` (one retry slot per request). */
  #startRetry(): boolean {
    const breaker = this.clusterState?.breaker;
    if (breaker === undefined || this.retryOf !== null) return true;
    if (!breaker.tryStartRetry()) return false;
    this.retryOf = breaker;
    return true;
  }

  /** Tells outlier detection how a try ended: a response status or a local failure. */
  #reportTry(endpoint: EndpointConfig, failure: UpstreamFailure | null): void {
    this.tryReported = true;
    const state = this.clusterState;
    if (state === undefined || state.outlier === undefined) return;
    if (failure === null) {
      state.report(endpoint, this.res.status);
      return;
    }
    let kind: LocalOriginFailure = "reset";
    if (failure.flag === "UF") kind = "connect";
    else if (failure.flag === "UT") kind = "timeout";
    state.report(endpoint, 0, kind);
  }

  /**
   * Reads a small request body in full before forwarding, so that retries can resend it and
   * a mirror can copy it. The upstream head is already in the writer, so the read buffer may
   * be compacted.
   */
  async #holdBodyThenExchange(
    cluster: ClusterConfig,
    snapshot: Snapshot,
    balancer: Balancer,
    endpoint: EndpointConfig,
    mirror: ClusterConfig | undefined,
    mirrorHead: string,
  ): Promise<boolean> {
    const reader = this.reader;
    const length = this.req.contentLength;
    let complete = true;
    try {
      while (reader.buffered < length) {
        if (!(await reader.fill())) {
          complete = false;
          break;
        }
      }
    } catch {
      complete = false;
    }
    if (!complete) {
      // The client went away mid-body: nothing was sent upstream.
      this.flag = "DC";
      this.#release(balancer, endpoint, false);
      return false;
    }
    const w = this.out;
    w.copy(reader.buf, reader.start, reader.start + length);
    reader.start += length;
    this.reqBodyDone = true;
    let headBytes = w.view();
    if (this.retry !== undefined) headBytes = headBytes.slice();
    if (mirror !== undefined) this.#sendMirror(mirror, mirrorHead, headBytes);
    return this.#exchange(headBytes, endpoint, cluster, snapshot, balancer);
  }

  /** The head of this request's mirror copy (before the read buffer is reused). */
  #mirrorHead(mirror: ClusterConfig, path: string, authority: string | null): string {
    const req = this.req;
    const plan = this.plan;
    const viaInbound = mirror.endpoints.some((e) => e.viaInbound);
    return mirrorHeadText(req, {
      method: req.method,
      target: plan.upstreamTarget ?? path,
      authority: plan.upstreamAuthority ?? authority ?? req.host,
      destinationService: viaInbound ? mirror.service : undefined,
      clientIp: this.clientIp,
      forwardedFor: req.forwardedFor,
      requestPlan: plan.requestPlan,
      bodyLength: req.framing === Framing.Length ? req.contentLength : 0,
    });
  }

  /**
   * Sends the mirror copy when the whole body is in hand (the tail of `headBytes`); requests
   * whose body streams are not mirrored.
   */
  #sendMirror(mirror: ClusterConfig, mirrorHead: string, headBytes: Uint8Array): void {
    const req = this.req;
    const mirrors = this.ctx.mirrors;
    if (!this.reqBodyDone || req.framing === Framing.Chunked) {
      mirrors.counts.skipped++;
      return;
    }
    const state = this.ctx.clusters.get(mirror.name);
    const endpoint = state?.balancer.pick(this.plan.pick);
    if (!state || !endpoint) {
      mirrors.counts.skipped++;
      return;
    }
    const length = req.framing === Framing.Length ? req.contentLength : 0;
    const body = length > 0 ? headBytes.subarray(headBytes.length - length) : null;
    const balancer = state.balancer;
    mirrors.send(endpoint.hostname, endpoint.port, withBody(mirrorHead, body), (ok, latencyMs) => {
      balancer.release(endpoint, { ok, latencyMs });
    });
  }

  /** Ends a forwarded exchange: clears the deadline and tells the balancer how it went. */
  #release(balancer: Balancer, endpoint: EndpointConfig, ok: boolean): void {
    this.deadline = 0;
    if (this.ended === 0) this.ended = this.ctx.clock.now();
    // One outcome object per connection: balancers read it synchronously.
    const outcome = this.outcome;
    outcome.latencyMs = this.ended - this.started;
    outcome.ok = ok;
    balancer.release(endpoint, outcome);
  }

  /**
   * Route timeout or per-try timeout: abort the upstream exchange; the request path turns it
   * into UT, or into a retry when the per-try timeout expired and the policy allows one.
   */
  expire(): void {
    const routeExpired = this.routeDeadline > 0 && this.ctx.clock.now() >= this.routeDeadline;
    if (routeExpired || this.retry === undefined) this.timedOut = true;
    else this.tryTimedOut = true;
    this.upstream?.close();
    this.pending?.cancel();
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
    const plain = this.plainRequest;
    const target = plain ? undefined : this.plan.upstreamTarget;
    // An HTTP/1.0 client cannot read chunked responses, so its request goes upstream as
    // HTTP/1.0 too: the upstream then answers with a length or by closing.
    if (authority === null && req.minor === 1 && target === undefined) {
      w.copy(req.buf, req.start, req.firstLineEnd);
    } else w.ascii(`${req.method} ${target ?? path} HTTP/1.${req.minor}`);
    w.crlf();
    copyLines(req, w, plain ? keepRequestLine : this.#keepRequest);
    // What the proxy adds, written piece by piece: a string built with `+` is a rope that
    // would be flattened (copied) before its characters could be read.
    if (req.forwardedFor === "") {
      const line = this.#forwardedForLine;
      w.copy(line, 0, line.length);
    } else {
      w.ascii("x-forwarded-for: ");
      w.ascii(req.forwardedFor);
      w.ascii(", ");
      w.ascii(this.clientIp);
      w.crlf();
    }
    if (!plain) {
      const rewritten = this.plan.upstreamAuthority;
      if (rewritten !== undefined) headerLine(w, "host: ", rewritten);
      else if (authority !== null) headerLine(w, "host: ", authority);
      if (this.plan.requestPlan !== null) w.ascii(this.plan.requestPlan.appendText);
    } else if (authority !== null) headerLine(w, "host: ", authority);
    if (!req.hasForwardedProto) w.ascii("x-forwarded-proto: http\r\n");
    if (this.requestId === "") {
      this.requestSerial = nextRequestSerial();
      w.ascii(requestIdLineStart);
      // 48 bits as two 24-bit halves: small-integer arithmetic.
      const low = this.requestSerial % 0x1000000;
      w.hex24((this.requestSerial - low) / 0x1000000);
      w.hex24(low);
      w.crlf();
    }
    if (endpoint.viaInbound) headerLine(w, "x-weft-destination: ", cluster.service);
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
   * Runs the exchange with the upstream (with the route's retries) and relays the response,
   * then releases the last pick (ok when a status below 500 was sent and nothing threw); picks
   * of earlier tries are released as each try ends.
   */
  async #exchange(
    headBytes: Uint8Array,
    endpoint: EndpointConfig,
    cluster: ClusterConfig,
    snapshot: Snapshot,
    balancer: Balancer,
  ): Promise<boolean> {
    let failed = false;
    let released = false;
    try {
      const ctx = this.ctx;
      let pool = ctx.pools.pool(endpoint.key, endpoint.hostname, endpoint.port);
      const tuning = snapshot.tuning;
      const req = this.req;
      const res = this.res;
      let bodyPump: Promise<void> | null = null;
      let up: UpstreamConnection | null = null;
      // Only a request whose body is in hand (or has none) can be sent again.
      let retry = this.reqBodyDone ? this.retry : undefined;
      const perTryMs = retry?.perTryTimeoutMs ?? 0;
      let tryStarted = this.started;

      for (let tryIndex = 0;; tryIndex++) {
        this.tryReported = false;
        if (perTryMs > 0) {
          tryStarted = ctx.clock.now();
          this.tryTimedOut = false;
          this.deadline = tryDeadline(this.routeDeadline, tryStarted, perTryMs);
          ctx.deadlines.arm(this.deadline);
        }
        // How this try failed, when it did: a failure to report, and its retry condition.
        let failure: UpstreamFailure | null = null;
        let result: TryResult | null = null;
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
              failure = new UpstreamFailure(
                "UF",
                502,
                timedOut ? "upstream connect timeout" : "upstream connect error",
                false,
              );
              result = this.tryTimedOut ? PER_TRY_TIMEOUT : CONNECT_FAILURE;
              break;
            }
            if (this.timedOut) {
              pool.release(up, false, 0);
              return await this.#localReply(504, "UT", "upstream request timeout", false);
            }
            if (this.tryTimedOut) {
              pool.release(up, false, 0);
              failure = new UpstreamFailure("UT", 504, "upstream request timeout", false);
              result = PER_TRY_TIMEOUT;
              break;
            }
          }
          this.upstream = up;
          const fresh = up.uses === 0;
          try {
            let written: number;
            try {
              written = up.conn.tryWrite?.(headBytes) ?? -1;
              if (written < 0) written = await up.conn.write(headBytes);
            } catch (err) {
              throw this.#sendFailure(up, err);
            }
            if (written < headBytes.length) await this.#sendRest(up, headBytes.subarray(written));
            if (!this.reqBodyDone) bodyPump = this.#pumpRequestBody(up);
            // The response head, read here rather than in #readFinalResponseHead or
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
              throw this.#readFailure(err, fresh, 0);
            }
            if (!this.#acceptResponseHead(up, headEnd, fresh, 0)) {
              // Once the client has seen an interim answer, this exchange is not tried again.
              retry = undefined;
              await this.#relayInterims(up, fresh);
            }
            break;
          } catch (err) {
            pool.release(up, false, 0);
            this.upstream = null;
            if (bodyPump) await bodyPump;
            if (err instanceof UpstreamFailure) {
              const timedOut = this.timedOut || this.tryTimedOut;
              if (err.retryable && !timedOut && attempt < maxStaleRetries) continue;
              if (this.headSent) return false;
              if (this.timedOut) {
                return await this.#localReply(504, "UT", "upstream request timeout", false);
              }
              if (this.tryTimedOut) {
                failure = new UpstreamFailure("UT", 504, "upstream request timeout", false);
                result = PER_TRY_TIMEOUT;
              } else {
                failure = err;
                result = err.flag === "UPE" ? null : RESET;
              }
              break;
            }
            throw err;
          }
        }

        this.#reportTry(endpoint, failure);
        if (failure === null) {
          // A response head arrived: retry on its status, or relay it.
          if (retry === undefined) break;
          retryStatus.status = res.status;
          if (!retriableResult(retry, retryStatus)) break;
          if (tryIndex >= retry.attempts) {
            this.flag = "URX";
            break;
          }
          // maxRetries reached: no retry, this answer stands (Envoy's retry overflow).
          if (!this.#startRetry()) break;
          // Drop this answer: its body is not read, so the connection cannot be reused.
          up!.close();
          pool.release(up!, false, 0);
          this.upstream = null;
        } else {
          const retriable = retry !== undefined && result !== null &&
            retriableResult(retry, result);
          if (!retriable || tryIndex >= retry!.attempts || !this.#startRetry()) {
            const flag = retriable && failure.flag !== "UT" ? "URX" : failure.flag;
            return await this.#localReply(failure.status, flag, failure.message, false);
          }
        }

        // Another try: release this pick, back off, pick again.
        released = true;
        this.#releaseTry(balancer, endpoint, tryStarted);
        const backoffMs = retryBackoffMs(tryIndex + 1, Math.random());
        if (backoffMs > 0) {
          await new Promise<void>((resolve) => ctx.clock.setTimeout(resolve, backoffMs));
        }
        if (this.timedOut) {
          return await this.#localReply(504, "UT", "upstream request timeout", false);
        }
        const state = ctx.clusters.get(cluster.name);
        this.clusterState = state;
        const next = state?.pick(this.plan.pick);
        if (!state || !next) return await this.#localReply(503, "UH", "no healthy upstream", false);
        balancer = state.balancer;
        endpoint = next;
        this.endpoint = next;
        released = false;
        pool = ctx.pools.pool(endpoint.key, endpoint.hostname, endpoint.port);
      }
      // Past the response head, only the route timeout applies.
      if (perTryMs > 0) this.deadline = this.routeDeadline;
      up = up!;

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
          written = this.conn.tryWrite?.(bytes) ?? -1;
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
        this.flag = this.#failureFlag(err);
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
      const breaker = this.clusterState?.breaker;
      const reusable = upstreamOk && !res.close && upReader.buffered === 0 && !this.timedOut &&
        (breaker === undefined || breaker.reusable(up.uses + 1));
      this.upstream = null;
      // The exchange ends here: one clock read serves the pool's idle mark and #release.
      this.ended = ctx.clock.now();
      pool.release(up, reusable, tuning.maxIdlePerEndpoint, this.ended);
      return keepClient;
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      // A try ended by the route timeout, before its outcome was known, is an endpoint timeout.
      if (!this.tryReported && this.flag === "UT") {
        this.#reportTry(endpoint, new UpstreamFailure("UT", 504, "", false));
      }
      if (!released) {
        this.#release(balancer, endpoint, !failed && this.status > 0 && this.status < 500);
      } else {
        this.deadline = 0;
        this.ended = this.ctx.clock.now();
      }
    }
  }

  /**
   * An upgrade request (WebSocket or another HTTP/1.1 `Upgrade`), like Envoy's
   * `upgrade_configs`: the head goes to the endpoint on a connection of its own, never taken
   * from nor returned to the pool. A `101` is relayed and the two sockets are joined
   * (#tunnel); any other answer is relayed as a normal response and the upstream connection
   * closed. One try: retries and mirrors do not apply (fault delay and abort ran before).
   * The route timeout covers the handshake only.
   */
  async #upgrade(
    headBytes: Uint8Array,
    endpoint: EndpointConfig,
    cluster: ClusterConfig,
    snapshot: Snapshot,
    balancer: Balancer,
  ): Promise<boolean> {
    const ctx = this.ctx;
    this.retry = undefined;
    const pool = ctx.pools.pool(endpoint.key, endpoint.hostname, endpoint.port);
    let up: UpstreamConnection | null = null;
    let released = false;
    let failed = false;
    try {
      try {
        up = await pool.connect(cluster.connectTimeoutMs);
      } catch (err) {
        if (this.timedOut) {
          return await this.#localReply(504, "UT", "upstream request timeout", false);
        }
        const timedOut = err instanceof ConnectError && err.timedOut;
        const message = timedOut ? "upstream connect timeout" : "upstream connect error";
        this.#reportTry(endpoint, new UpstreamFailure("UF", 502, message, false));
        return await this.#localReply(502, "UF", message, false);
      }
      if (this.timedOut) {
        return await this.#localReply(504, "UT", "upstream request timeout", false);
      }
      this.upstream = up;
      let bodyPump: Promise<void> | null = null;
      try {
        await this.#sendRest(up, headBytes);
        if (!this.reqBodyDone) bodyPump = this.#pumpRequestBody(up);
        await this.#readFinalResponseHead(up, true);
      } catch (err) {
        if (!(err instanceof UpstreamFailure)) throw err;
        up.close();
        if (bodyPump) await bodyPump;
        const failure = this.timedOut
          ? new UpstreamFailure("UT", 504, "upstream request timeout", false)
          : err;
        this.#reportTry(endpoint, failure);
        if (this.headSent) return false;
        return await this.#localReply(failure.status, failure.flag, failure.message, false);
      }
      this.#reportTry(endpoint, null);
      if (this.res.status !== 101) return await this.#relayRefusal(up, bodyPump);
      // Switched: the pick's outcome is the handshake's (a tunnel's lifetime is no latency),
      // and from here on only the idle timeout applies.
      released = true;
      this.#release(balancer, endpoint, true);
      this.ended = 0;
      this.routeDeadline = 0;
      return await this.#tunnel(up, bodyPump, snapshot.tuning.upstreamIdleTimeoutMs);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      if (up !== null) {
        this.upstream = null;
        pool.release(up, false, 0);
      }
      if (!released) {
        this.#release(balancer, endpoint, !failed && this.status > 0 && this.status < 500);
      }
    }
  }

  /**
   * The inbound end of a TCP upstream (proxy/tcp.ts): connects to the local `tcp` service,
   * answers `101` and joins the two connections. Bytes the client sent after its request head
   * are already buffered and go first. The client connection closes afterwards.
   */
  async #tcpTunnel(cluster: ClusterConfig): Promise<boolean> {
    const ctx = this.ctx;
    const state = ctx.clusters.get(cluster.name);
    const endpoint = state?.pick(noPick);
    if (!state || !endpoint) return this.#localReply(503, "UH", "no healthy upstream", true);
    this.endpoint = endpoint;
    const started = ctx.clock.now();
    const pool = ctx.pools.pool(endpoint.key, endpoint.hostname, endpoint.port);
    let up: UpstreamConnection;
    try {
      up = await pool.connect(cluster.connectTimeoutMs);
    } catch (err) {
      const timedOut = err instanceof ConnectError && err.timedOut;
      state.report(endpoint, 0, timedOut ? "timeout" : "connect");
      state.balancer.release(endpoint, { latencyMs: ctx.clock.now() - started, ok: false });
      return this.#localReply(502, "UF", "upstream connect error", true);
    }
    state.report(endpoint, 200);
    state.balancer.release(endpoint, { latencyMs: ctx.clock.now() - started, ok: true });
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
      pool.release(up, false, 0);
    }
    return false;
  }

  /** Relays an upstream's refusal of an upgrade (any final status but 101) as a response. */
  async #relayRefusal(up: UpstreamConnection, bodyPump: Promise<void> | null): Promise<boolean> {
    const req = this.req;
    const res = this.res;
    const noBody = req.method === "HEAD" || res.status === 204 || res.status === 304;
    const resFraming = noBody ? Framing.None : res.framing;
    let keepClient = !req.close && !this.ctx.draining && resFraming !== Framing.UntilClose &&
      this.reqBodyDone;
    const bytes = this.#buildResponseHead(res, keepClient, false).view();
    this.status = res.status;
    this.headSent = true;
    try {
      await writeAll(this.conn, bytes);
      if (resFraming === Framing.Length) {
        await pumpLength(up.reader, this.conn, res.contentLength);
      } else if (resFraming === Framing.Chunked) {
        await pumpChunked(up.reader, this.conn, this.resScanner);
      } else if (resFraming === Framing.UntilClose) await pumpUntilClose(up.reader, this.conn);
    } catch (err) {
      keepClient = false;
      this.flag = this.#failureFlag(err);
    }
    if (!this.reqBodyDone) {
      // The client's unread body makes its connection unusable.
      keepClient = false;
      up.close();
      closeQuietly(this.conn);
    }
    if (bodyPump) await bodyPump;
    return keepClient && this.reqBodyError === undefined;
  }

  /**
   * Relays the `101` and then moves bytes both ways until both sides have closed, or either
   * fails, or nothing moved for `idleMs`. An end of stream on one side is passed on as a
   * half-close (TCP FIN) to the other. Bytes already read past either head (a first frame
   * the client sent early, or data the upstream sent right after its 101) go first. The
   * client connection is closed afterwards: it spoke another protocol.
   */
  async #tunnel(
    up: UpstreamConnection,
    bodyPump: Promise<void> | null,
    idleMs: number,
  ): Promise<boolean> {
    const ctx = this.ctx;
    // The request body, if any, precedes the tunnel's bytes.
    if (bodyPump) await bodyPump;
    if (this.reqBodyError !== undefined) return false;
    const res = this.res;
    const w = this.out;
    w.reset();
    w.copy(http11, 0, 8);
    w.copy(res.buf, res.start + 8, res.firstLineEnd);
    w.crlf();
    if (this.plainResponse) copyLines(res, w, keepResponseLine);
    else {
      copyLines(res, w, this.#keepResponse);
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

  /** Releases the pick of a try that is followed by another one. */
  #releaseTry(balancer: Balancer, endpoint: EndpointConfig, tryStarted: number): void {
    const outcome = this.outcome;
    outcome.latencyMs = this.ctx.clock.now() - tryStarted;
    outcome.ok = false;
    balancer.release(endpoint, outcome);
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
    if (interim || this.plainResponse) copyLines(res, w, keepResponseLine);
    else {
      copyLines(res, w, this.#keepResponse);
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
