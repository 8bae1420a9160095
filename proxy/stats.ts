/**
 * @module
 * The proxy's metrics and access-log record. Labelled children are resolved once per
 * (listener, cluster) and per (code, flag) and cached, so recording a request is a couple of
 * map lookups and number bumps.
 */
import type {
  Counter,
  CounterChild,
  Gauge,
  GaugeChild,
  Histogram,
  HistogramChild,
  Registry,
} from "../lib/mod.ts";
import { type ResponseFlag, responseFlags } from "./local_reply.ts";

/** Which listener handled a request. */
export type ListenerKind = "outbound" | "inbound";

/** One line of the access log. */
export interface AccessLogEntry {
  listener: ListenerKind;
  method: string;
  /** Request path as received (origin-form, or the path of an absolute-form target). */
  path: string;
  /** Routing host (lower case, no port); for inbound, the destination service. */
  host: string;
  /** Status sent to the client; 0 when none was sent (client gone, reset mid-response). */
  status: number;
  /** Envoy response flag; "-" when the upstream answered normally. */
  flag: ResponseFlag;
  /** Cluster name, "" when routing failed. */
  cluster: string;
  /** Endpoint key (`host:port`), "" when none was chosen. */
  upstream: string;
  durationMs: number;
  requestId: string;
}

/** Receives every finished request; called synchronously, so keep it cheap. */
export type AccessLogSink = (entry: AccessLogEntry) => void;

const flagIndex = new Map<ResponseFlag, number>(responseFlags.map((f, i) => [f, i]));

/** Cached children for one (listener, cluster). */
export class RouteStats {
  readonly #byCodeFlag = new Map<number, CounterChild>();
  readonly duration: HistogramChild;

  constructor(
    readonly listener: ListenerKind,
    readonly cluster: string,
    readonly requests: Counter,
    duration: Histogram,
  ) {
    this.duration = duration.with({ listener, cluster });
  }

  /** The last (code, flag) recorded and its child: most requests repeat it. */
  #lastStatus = -1;
  #lastFlag: ResponseFlag = "-";
  #lastChild: CounterChild | null = null;

  record(status: number, flag: ResponseFlag, durationMs: number): void {
    if (status === this.#lastStatus && flag === this.#lastFlag) {
      this.#lastChild!.inc();
      this.duration.observe(durationMs);
      return;
    }
    const key = status * 16 + (flagIndex.get(flag) ?? 0);
    let child = this.#byCodeFlag.get(key);
    if (!child) {
      child = this.requests.with({
        listener: this.listener,
        cluster: this.cluster,
        code: String(status),
        flag,
      });
      this.#byCodeFlag.set(key, child);
    }
    this.#lastStatus = status;
    this.#lastFlag = flag;
    this.#lastChild = child;
    child.inc();
    this.duration.observe(durationMs);
  }
}

/** All metric families of the proxy. */
export class ProxyMetrics {
  readonly requests: Counter;
  readonly duration: Histogram;
  readonly upstreamOpened: Counter;
  readonly active: Gauge;
  readonly downstreamOpened: Counter;
  /** Client connections ended by a downstream timeout, by listener and kind. */
  readonly downstreamTimeouts: Counter;
  /** Client connections closed on accept because the listener was full. */
  readonly downstreamRefused: Counter;
  readonly #outboundStats = new Map<string, RouteStats>();
  readonly #inboundStats = new Map<string, RouteStats>();
  readonly activeOutbound: GaugeChild;
  readonly activeInbound: GaugeChild;
  /** Upgraded (WebSocket) tunnels open now, by listener. */
  readonly upgraded: Gauge;
  readonly upgradedOutbound: GaugeChild;
  readonly upgradedInbound: GaugeChild;

  constructor(registry: Registry) {
    this.requests = registry.counter(
      "weft_requests_total",
      "Requests handled by the proxy, by listener, cluster, status code and response flag.",
    );
    this.duration = registry.histogram(
      "weft_request_duration_ms",
      "Time from request head received to response end, in milliseconds.",
    );
    this.upstreamOpened = registry.counter(
      "weft_upstream_connections_opened_total",
      "TCP connections the proxy opened to upstream endpoints.",
    );
    this.downstreamOpened = registry.counter(
      "weft_downstream_connections_accepted_total",
      "TCP connections accepted by the proxy listeners.",
    );
    this.downstreamTimeouts = registry.counter(
      "weft_downstream_timeouts_total",
      "Client connections ended by a downstream timeout, by listener and kind " +
        "(request_headers, idle, request_body).",
    );
    this.downstreamRefused = registry.counter(
      "weft_downstream_connections_refused_total",
      "Client connections closed on accept: the listener had maxDownstreamConnections open.",
    );
    this.active = registry.gauge("weft_active_requests", "Requests in flight, by listener.");
    this.activeOutbound = this.active.with({ listener: "outbound" });
    this.activeInbound = this.active.with({ listener: "inbound" });
    this.upgraded = registry.gauge(
      "weft_upgraded_connections",
      "Upgraded connections (WebSocket and other HTTP/1.1 Upgrade tunnels) open now.",
    );
    this.upgradedOutbound = this.upgraded.with({ listener: "outbound" });
    this.upgradedInbound = this.upgraded.with({ listener: "inbound" });
  }

  /** The cached stats of (listener, cluster); cluster "" for requests that found no route. */
  route(listener: ListenerKind, cluster: string): RouteStats {
    const cache = listener === "outbound" ? this.#outboundStats : this.#inboundStats;
    let s = cache.get(cluster);
    if (!s) {
      s = new RouteStats(listener, cluster, this.requests, this.duration);
      cache.set(cluster, s);
    }
    return s;
  }
}
