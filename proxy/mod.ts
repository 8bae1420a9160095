/**
 * @module
 * Weft's data plane. A {@linkcode Proxy} owns an outbound listener (local applications send
 * requests for mesh services here, as proxy requests or with the service as `Host`) and an
 * inbound listener (other nodes deliver requests for this node's services here, naming the
 * service in `x-weft-destination`). It routes each request on the snapshot current when the
 * request arrived; {@linkcode Proxy.update} swaps snapshots atomically while connection pools
 * and balancer state carry over, keyed by endpoint key and cluster name. The snapshot's
 * `tcpUpstreams` (config `upstreams`) add one raw TCP listener each (tcp.ts), bound at start.
 */
import {
  type Clock,
  errorMessage,
  formatHostPort,
  type HostPort,
  ListenError,
  listenFailureReason,
  type Logger,
  realClock,
  type Registry,
  type Snapshot,
  type TimerId,
} from "../lib/mod.ts";
import { ClusterManager } from "./cluster.ts";
import { DeadlineTicker } from "./deadlines.ts";
import { MirrorSender } from "./filters/mirror.ts";
import type { ProxyContext } from "./exchange.ts";
import { serveHttp1 } from "./session_http1.ts";
import { TcpListener } from "./listener.ts";
import { denoNetwork, type Network } from "./io/net.ts";
import { PoolManager } from "./pool.ts";
import { type AccessLogSink, type ListenerKind, ProxyMetrics } from "./stats.ts";
import { serveTcpUpstream, type TcpContext, TcpMetrics } from "./tcp.ts";

export { balancerFactories, type BalancerFactory } from "./cluster.ts";
export {
  type CheckedService,
  defaultProbe,
  HealthChecker,
  type HealthCheckerOptions,
  type HealthProbe,
  isChecked,
} from "./health.ts";
export { type ResponseFlag, responseFlags } from "./local_reply.ts";
export { denoNetwork, type Network, type StreamConn } from "./io/net.ts";
export { createEpollNetwork, selectNetwork } from "./io/epoll.ts";
export { hostKey, matchRoute, pickDestination, routeOutbound } from "./router.ts";
export type { AccessLogEntry, AccessLogSink, ListenerKind } from "./stats.ts";

/** Waits for the network's poller to stop, at most `ms`. */
async function settledWithin(network: Network, ms: number, clock: Clock): Promise<void> {
  let timer: TimerId | undefined;
  await Promise.race([
    network.settled(),
    new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, ms))),
  ]);
  if (timer !== undefined) clock.clearTimeout(timer);
}

/** Construction options of a {@linkcode Proxy}. */
export interface ProxyOptions {
  snapshot: Snapshot;
  logger: Logger;
  metrics: Registry;
  clock?: Clock;
  /**
   * Receives one entry per finished request (method, path, host, status, flag, cluster,
   * upstream endpoint, duration, request id). When absent, entries are logged at debug level.
   */
  accessLog?: AccessLogSink;
  /** Where sockets come from (io/net.ts); default Deno's own. */
  network?: Network;
}

/** Where to listen; port 0 picks a free port. */
export interface ProxyAddresses {
  outbound: HostPort;
  inbound: HostPort;
}

/** A bound TCP upstream listener (config `upstreams`). */
export interface TcpUpstreamAddress {
  service: string;
  hostname: string;
  port: number;
}

/**
 * Outlier-detection and circuit-breaker counts per cluster, copied into gauges at scrape time
 * so the request path only bumps the detector's and breaker's own fields.
 */
function collectResilienceMetrics(metrics: Registry, clusters: ClusterManager): void {
  const ejected = metrics.gauge(
    "weft_outlier_ejected_endpoints",
    "Endpoints ejected now by outlier detection.",
  );
  const ejections = metrics.gauge(
    "weft_outlier_ejections",
    "Ejections made by outlier detection since start (a count).",
  );
  const active = metrics.gauge(
    "weft_cluster_active_requests",
    "Upstream requests in flight per cluster (circuit breaker view).",
  );
  const pending = metrics.gauge(
    "weft_cluster_pending_requests",
    "Requests waiting for an upstream connection per cluster.",
  );
  const overflow = metrics.gauge(
    "weft_circuit_breaker_overflows",
    "Requests refused or delayed by a circuit breaker limit since start (a count).",
  );
  metrics.addCollector(() => {
    for (const [cluster, state] of clusters.entries()) {
      if (state.outlier) {
        const o = state.outlier.stats;
        ejected.with({ cluster }).set(o.ejectedNow);
        ejections.with({ cluster }).set(o.ejectionsTotal);
      }
      if (state.breaker) {
        const b = state.breaker.stats;
        active.with({ cluster }).set(b.activeRequests);
        pending.with({ cluster }).set(b.pendingRequests);
        overflow.with({ cluster, limit: "max_requests" }).set(b.requestOverflows);
        overflow.with({ cluster, limit: "max_pending_requests" }).set(b.pendingOverflows);
        overflow.with({ cluster, limit: "max_connections" }).set(b.connectionOverflows);
        overflow.with({ cluster, limit: "max_retries" }).set(b.retryOverflows);
      }
    }
  });
}

/** The HTTP/1.1 data plane of one node. */
export class Proxy {
  #snapshot: Snapshot;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #metrics: ProxyMetrics;
  readonly #clusters: ClusterManager;
  readonly #pools: PoolManager;
  readonly #network: Network;
  readonly #deadlines: DeadlineTicker;
  readonly #accessLog: AccessLogSink | undefined;
  readonly #mirrors = new MirrorSender();
  readonly #contexts: ProxyContext[] = [];
  #listeners: TcpListener[] = [];
  readonly #tcpMetrics: TcpMetrics;
  #tcpBound: TcpUpstreamAddress[] = [];
  #state: "new" | "running" | "stopping" | "stopped" = "new";
  #stopping: Promise<void> | undefined;

  /** Name of the socket backend in use ("epoll" or "deno"). */
  get networkName(): string {
    return this.#network.name;
  }

  constructor(options: ProxyOptions) {
    this.#snapshot = options.snapshot;
    this.#logger = options.logger;
    this.#network = options.network ?? denoNetwork;
    // Requests are timed on the network's per-round clock where it has one.
    const roundNow = this.#network.now;
    this.#clock = options.clock ?? (roundNow ? { ...realClock, now: roundNow } : realClock);
    this.#metrics = new ProxyMetrics(options.metrics);
    this.#clusters = new ClusterManager(this.#logger, this.#clock);
    this.#deadlines = new DeadlineTicker(this.#clock);
    const opened = this.#metrics.upstreamOpened;
    this.#pools = new PoolManager(
      this.#clock,
      (endpoint) => opened.with({ endpoint }),
      this.#network,
    );
    const logger = this.#logger;
    this.#accessLog = options.accessLog ??
      (logger.enabled("debug") ? (e) => logger.debug("access", { ...e }) : undefined);
    this.#tcpMetrics = new TcpMetrics(options.metrics);
    this.#clusters.sync(this.#snapshot);
    collectResilienceMetrics(options.metrics, this.#clusters);
  }

  /**
   * Binds both listeners and starts serving. Resolves with the bound addresses (the real
   * ports when 0 was given). Throws if an address cannot be bound.
   */
  start(addrs: ProxyAddresses): Promise<ProxyAddresses> {
    if (this.#state !== "new") return Promise.reject(new Error("proxy already started"));
    const outbound = this.#listen("outbound", addrs.outbound);
    let inbound: TcpListener;
    try {
      inbound = this.#listen("inbound", addrs.inbound);
    } catch (err) {
      outbound.stopAccepting();
      throw err;
    }
    this.#listeners = [outbound, inbound];
    try {
      this.#listenTcpUpstreams();
    } catch (err) {
      for (const l of this.#listeners) l.stopAccepting();
      this.#listeners = [];
      throw err;
    }
    this.#state = "running";
    this.#pools.startSweeper(this.#snapshot.tuning.upstreamIdleTimeoutMs);
    this.#logger.info("proxy listening", {
      outbound: `${outbound.addr.hostname}:${outbound.addr.port}`,
      inbound: `${inbound.addr.hostname}:${inbound.addr.port}`,
      ...(this.#tcpBound.length > 0
        ? { tcp: this.#tcpBound.map((a) => `${a.service}=${a.hostname}:${a.port}`) }
        : {}),
      snapshot: this.#snapshot.version,
    });
    return Promise.resolve({ outbound: outbound.addr, inbound: inbound.addr });
  }

  /**
   * One listener per `tcpUpstreams` entry of the snapshot at start. The set is fixed for the
   * proxy's life (a later snapshot's endpoints are used, its listener set is not).
   */
  #listenTcpUpstreams(): void {
    const ctx: TcpContext = {
      snapshot: () => this.#snapshot,
      clusters: this.#clusters,
      pools: this.#pools,
      metrics: this.#tcpMetrics,
      logger: this.#logger,
      clock: this.#clock,
    };
    for (const upstream of this.#snapshot.tcpUpstreams ?? []) {
      const addr = { hostname: upstream.localHost, port: upstream.localPort };
      let listener: TcpListener;
      try {
        listener = new TcpListener(
          this.#network,
          addr,
          (tracked) => serveTcpUpstream(tracked, upstream, ctx),
          this.#clock,
        );
      } catch (err) {
        throw new ListenError(
          `tcp upstream ${upstream.service}`,
          formatHostPort(addr),
          listenFailureReason(err) ?? errorMessage(err),
        );
      }
      this.#listeners.push(listener);
      this.#tcpBound.push({ service: upstream.service, ...listener.addr });
    }
  }

  /** Bound TCP upstream listeners (real ports when 0 was configured), in config order. */
  tcpAddresses(): TcpUpstreamAddress[] {
    return this.#tcpBound.map((a) => ({ ...a }));
  }

  #listen(kind: ListenerKind, addr: HostPort): TcpListener {
    const ctx: ProxyContext = {
      kind,
      snapshot: () => this.#snapshot,
      clusters: this.#clusters,
      pools: this.#pools,
      metrics: this.#metrics,
      clock: this.#clock,
      deadlines: this.#deadlines,
      logger: this.#logger,
      accessLog: this.#accessLog,
      mirrors: this.#mirrors,
      draining: false,
    };
    this.#contexts.push(ctx);
    const accepted = this.#metrics.downstreamOpened.with({ listener: kind });
    const refused = this.#metrics.downstreamRefused.with({ listener: kind });
    const limit = {
      max: () => this.#snapshot.tuning.maxDownstreamConnections,
      refused: () => refused.inc(),
    };
    try {
      return new TcpListener(
        this.#network,
        addr,
        (tracked) => {
          accepted.inc();
          return serveHttp1(tracked, ctx);
        },
        this.#clock,
        limit,
      );
    } catch (err) {
      throw new ListenError(
        `${kind} listener`,
        formatHostPort(addr),
        listenFailureReason(err) ?? errorMessage(err),
      );
    }
  }

  /**
   * Installs a new snapshot. Requests already routed finish on the snapshot they started
   * with; balancers (by cluster name) and connection pools (by endpoint key) carry over, and
   * pools of endpoints no cluster uses any more are closed.
   */
  update(snapshot: Snapshot): void {
    const previous = this.#snapshot;
    this.#snapshot = snapshot;
    const liveKeys = this.#clusters.sync(snapshot);
    this.#pools.retain(liveKeys);
    if (
      this.#state === "running" &&
      previous.tuning.upstreamIdleTimeoutMs !== snapshot.tuning.upstreamIdleTimeoutMs
    ) {
      this.#pools.startSweeper(snapshot.tuning.upstreamIdleTimeoutMs);
    }
  }

  /** Mirror copies still in flight (VirtualService `mirror`); for tests and status. */
  mirrorsInFlight(): number {
    return this.#mirrors.inFlight;
  }

  /** The snapshot new requests are routed with. */
  current(): Snapshot {
    return this.#snapshot;
  }

  /**
   * Stops accepting, lets requests in flight finish for up to `drainMs` (default: the
   * snapshot's `drainTimeoutMs`), then closes every connection and pool.
   */
  stop(drainMs: number = this.#snapshot.tuning.drainTimeoutMs): Promise<void> {
    // Every caller waits for the same drain.
    this.#stopping ??= this.#stop(drainMs);
    return this.#stopping;
  }

  async #stop(drainMs: number): Promise<void> {
    const wasRunning = this.#state === "running";
    this.#state = "stopping";
    if (wasRunning) {
      for (const ctx of this.#contexts) ctx.draining = true;
      await Promise.all(this.#listeners.map((l) => l.stopAccepting()));
      for (const l of this.#listeners) l.closeIdle();
      const deadline = this.#clock.now() + drainMs;
      for (const l of this.#listeners) {
        await l.waitIdle(Math.max(0, deadline - this.#clock.now()));
      }
      // Requests still queued by a circuit breaker would wait for a slot forever, and one
      // waiting on an upstream that never answers until its route timeout.
      this.#clusters.cancelPending();
      this.#deadlines.abortAll();
      await Promise.all(this.#listeners.map((l) => l.closeAll()));
    }
    await this.#mirrors.close();
    this.#deadlines.close();
    this.#pools.close();
    // The epoll backend's wait loop ends once its last socket closed; a socket still owned by
    // something else (a health check, another proxy in the process) must not hold stop up.
    await settledWithin(this.#network, 1000, this.#clock);
    this.#state = "stopped";
  }
}
