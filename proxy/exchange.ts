/**
 * @module
 * One request in flight, as every layer of the data path sees it. The layers, in order:
 *
 * - the **session** (session_http1.ts) decodes requests from one downstream connection, writes
 *   every local reply and relays responses: it is the downstream codec, and it extends
 *   {@linkcode Exchange} with those operations;
 * - the **logical** layer (logical.ts) selects the route and runs the filters (redirect, CORS,
 *   fault, mirror, header edits);
 * - the **concrete** layer (concrete.ts) admits the request to a cluster (circuit breaker),
 *   picks endpoints with the balancer, reports outcomes to outlier detection and runs the
 *   retry loop (retry_state.ts);
 * - the **endpoint** layer (endpoint_http1.ts) runs one try on a pooled connection to one
 *   upstream: the upstream codec.
 *
 * An `Exchange` holds the request's state that the layers share (its timing, flag, status,
 * cluster, endpoint, breaker holds, deadlines) and declares what the layers ask of the
 * downstream codec. HTTP/1.1 sessions reuse one exchange for every request of their connection
 * (one request at a time), so the common request allocates nothing here; a multiplexing codec
 * gives each stream its own. The request and response heads use the byte-level head model of
 * head.ts, which the HTTP/1.1 codecs parse into and write from; sockets are `StreamConn`s
 * (io/net.ts), so a TLS transport is a `StreamConn` under either codec.
 */
import type {
  Clock,
  ClusterConfig,
  EndpointConfig,
  Logger,
  RouteRetryPolicy,
  Snapshot,
} from "../lib/mod.ts";
import type { PickContext, PickOutcome } from "./balancer/balancer.ts";
import type { CircuitBreaker, PendingConnection } from "./breaker.ts";
import type { ClusterManager, ClusterState } from "./cluster.ts";
import type { DeadlineTicker, Expiring } from "./deadlines.ts";
import { type Head, newHead } from "./head.ts";
import { HeadWriter, keepRequestLine, keepResponseLine } from "./head_writer.ts";
import { ChunkedScanner, type ConnReader } from "./http1.ts";
import type { StreamConn } from "./io/net.ts";
import { BufferPool } from "./buffers.ts";
import type { LocalReply, ResponseFlag } from "./local_reply.ts";
import type { MirrorSender } from "./filters/mirror.ts";
import { RequestPlan } from "./filters/request_plan.ts";
import { RetryState } from "./retry_state.ts";
import type { PoolManager, UpstreamConnection } from "./pool.ts";
import type { UpstreamFailure } from "./upstream_failure.ts";
import type { TryResult } from "./filters/retry.ts";
import type { AccessLogSink, ListenerKind, ProxyMetrics } from "./stats.ts";

/** What a listener's connections share: the proxy's state, read at each request. */
export interface ProxyContext {
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

/** The pick input of requests without a hash key. */
export const noPick: PickContext = {};

const headBufferBytes = 16 * 1024;
/** Head buffers of closed connections, kept for the next ones (see buffers.ts). */
export const headBuffers: BufferPool = new BufferPool(headBufferBytes, 64);

/**
 * The state of one request shared by the layers, and the downstream operations they call.
 * Per-request fields are reset by {@linkcode Exchange.begin}.
 */
export abstract class Exchange implements Expiring {
  ctx!: ProxyContext;
  /** The downstream connection, and the reader its request bodies come from. */
  conn!: StreamConn;
  reader!: ConnReader;
  clientIp = "";
  /** `x-forwarded-for` for a request that has none, encoded once per client address. */
  forwardedForLine: Uint8Array = new Uint8Array(0);

  /** The request head as the downstream codec parsed it. */
  readonly req: Head = newHead();
  /** The upstream's response head as the endpoint codec parsed it. */
  readonly res: Head = newHead();
  /** Builds upstream request heads and downstream response heads (one at a time). */
  readonly out: HeadWriter = new HeadWriter(headBuffers.take());
  readonly reqScanner: ChunkedScanner = new ChunkedScanner();
  readonly resScanner: ChunkedScanner = new ChunkedScanner();
  /** The balancer's outcome input, reused (balancers read it synchronously). */
  readonly outcome: PickOutcome = { latencyMs: 0, ok: true };
  /** Route decisions of the current outbound request (logical layer). */
  readonly plan: RequestPlan = new RequestPlan();
  /** The retry loop's state (concrete layer). */
  readonly retries: RetryState = new RetryState();

  /** Which request head lines go upstream when the route edits headers. */
  readonly keepRequest = (head: Head, i: number): boolean =>
    keepRequestLine(head, i) && !this.plan.dropsRequestLine(head, i);
  /** Which response head lines go to the client when the route edits headers. */
  readonly keepResponse = (head: Head, i: number): boolean =>
    keepResponseLine(head, i) && !this.plan.dropsResponseLine(head, i);

  /** Slot in the deadline ticker's set. */
  denseIndex = -1;
  /** When `expire` is due: the route deadline, or an earlier per-try deadline (0: none). */
  deadline = 0;

  // Per-request state, reset by begin().
  /** The snapshot the request was routed on, kept for all its tries. */
  snapshot: Snapshot | undefined = undefined;
  /** The cluster the logical layer chose (from `snapshot`), and the request's route timeout. */
  cluster: ClusterConfig | undefined = undefined;
  timeoutMs = 0;
  /** The authority of an absolute-form target (`http://svc/p`), or null for origin-form. */
  authority: string | null = null;
  /** The balancer's input for every pick of this request (a consistent-hash key). */
  pick: PickContext = noPick;
  started = 0;
  /** Set when the upstream exchange ended, so the end time is read once. */
  ended = 0;
  /** Status sent to the client (0: none yet). */
  status = 0;
  flag: ResponseFlag = "-";
  path = "";
  host = "";
  requestId = "";
  /** Serial of the x-request-id this proxy generated (-1: the client sent one, or none yet). */
  requestSerial = -1;
  clusterName = "";
  endpoint: EndpointConfig | undefined = undefined;
  /** The upstream connection of the current try (closed by `expire`). */
  upstream: UpstreamConnection | null = null;
  /** The route deadline passed. */
  timedOut = false;
  /** A response head (or local reply) went to the client: nothing can be retried after it. */
  headSent = false;
  reqBodyDone = true;
  reqBodyError: unknown = undefined;
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
  /** Circuit-breaker holds of the current request, given back when it finishes. */
  slotOf: CircuitBreaker | null = null;
  requestOf: CircuitBreaker | null = null;
  retryOf: CircuitBreaker | null = null;
  /** Set while the request waits for a connection slot (`maxConnections`). */
  pending: PendingConnection | null = null;
  /** The current try's outcome was told to outlier detection. */
  tryReported = false;
  /** The request body being streamed upstream by the current try, if any. */
  bodyPump: Promise<void> | null = null;
  /** How the current try failed, when it did (endpoint layer), and its retry condition. */
  failure: UpstreamFailure | null = null;
  failureResult: TryResult | null = null;
  /** The client saw a 1xx answer of the current try: the exchange cannot be tried again. */
  interimRelayed = false;
  /**
   * The client failed the request (went away mid-body, or sent a malformed body): whatever
   * the upstream side saw after that says nothing about the endpoint.
   */
  clientFailed = false;
  /** Keys of the endpoints this request tried, kept while it has a retry policy. */
  readonly triedEndpoints: string[] = [];

  /** Starts a request at `now`: clears what the previous one left. */
  begin(now: number): void {
    this.snapshot = undefined;
    this.cluster = undefined;
    this.timeoutMs = 0;
    this.authority = null;
    this.pick = noPick;
    this.started = now;
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
    this.bodyPump = null;
    this.clientFailed = false;
    this.triedEndpoints.length = 0;
  }

  /** Arms the route deadline, `timeoutMs` after `start` (0: no route timeout). */
  armRouteDeadline(start: number, timeoutMs: number): void {
    if (timeoutMs <= 0) return;
    this.deadline = this.routeDeadline = start + timeoutMs;
    this.ctx.deadlines.arm(this.deadline);
  }

  /**
   * Route timeout or per-try timeout: abort the upstream exchange; the concrete layer turns it
   * into UT, or into a retry when the per-try timeout expired and the policy allows one.
   */
  expire(): void {
    const routeExpired = this.routeDeadline > 0 && this.ctx.clock.now() >= this.routeDeadline;
    if (routeExpired || this.retry === undefined) this.timedOut = true;
    else this.tryTimedOut = true;
    this.upstream?.close();
    this.pending?.cancel();
  }

  /**
   * The drain ended with this request still in flight (the proxy is stopping): end it as if
   * its route deadline had passed, so that no further try starts and an upstream that never
   * answers cannot hold the stop up beyond the drain timeout.
   */
  abort(): void {
    this.routeDeadline = this.ctx.clock.now();
    this.timedOut = true;
    this.upstream?.close();
    this.pending?.cancel();
  }

  /**
   * Answers the client with a proxy-made reply; resolves whether the downstream connection
   * stays usable. Every local reply of every layer goes through here.
   */
  abstract reply(reply: LocalReply, close?: boolean, flag?: ResponseFlag): Promise<boolean>;

  /** Answers with bytes a filter built (redirect, CORS preflight) under `status`. */
  abstract replyWith(status: number, bytes: (close: boolean) => Uint8Array): Promise<boolean>;

  /** Relays the 1xx interim response in `res` to the client. */
  abstract relayInterim(): Promise<void>;

  /**
   * Relays the final response in `res` and its body from `up`, then waits for the request
   * body's pump; resolves whether the client connection stays usable, and sets
   * `upstreamReusable` to whether the exchange left `up` in a state to be pooled again. A
   * codec answers synchronously when the whole response went out at once (no async frame).
   */
  abstract relayResponse(up: UpstreamConnection): boolean | Promise<boolean>;

  /**
   * Switches the client connection to a tunnel after the upstream's `101` in `res`, and moves
   * bytes both ways until both sides closed or nothing moved for `idleMs`.
   */
  abstract tunnel(up: UpstreamConnection, idleMs: number): Promise<boolean>;

  /** Joins the client connection to a raw TCP upstream after answering `101` (weft-tcp/1). */
  abstract tcpTunnel(up: UpstreamConnection): Promise<boolean>;

  /** Whether the upstream connection of the last relayed response may be pooled again. */
  upstreamReusable = false;
}
