/**
 * @module
 * Raw TCP through the mesh, Consul-"upstreams" style. Each configured upstream
 * (snapshot `tcpUpstreams`) gets a local TCP listener; every accepted connection is carried to
 * one endpoint of the service's `outbound|SERVICE` cluster, picked by the cluster's balancer
 * (ejected endpoints excluded, as for HTTP):
 *
 * - a local instance (`viaInbound` false) is connected to directly;
 * - a remote instance is reached through its node's inbound listener with an HTTP/1.1
 *   upgrade to `weft-tcp/1` (`x-weft-destination: SERVICE`); after the `101` the connection
 *   carries the raw bytes (the inbound side is in upgrade.ts, `openTcpTunnel`).
 *
 * Bytes then move both ways with half-close ({@linkcode joinConnections}). No endpoint closes
 * the client at once (flag `UH`); a failed connect or refused handshake closes it too (`UF`).
 * Circuit-breaker limits are not applied to TCP connections.
 */
import type { StreamConn } from "./io/net.ts";
import type { Clock, Counter, Gauge, Logger, Registry, TimerId } from "../lib/mod.ts";
import type { Snapshot, TcpUpstreamConfig } from "../lib/mod.ts";
import type { ClusterManager } from "./cluster.ts";
import { ConnReader, writeAll } from "./http1.ts";
import { closeQuietly, type TrackedConnection } from "./listener.ts";
import type { PoolManager, UpstreamConnection } from "./pool.ts";

/** The `Upgrade` protocol token that asks an inbound listener for a raw TCP tunnel. */
export const tcpUpgradeProtocol = "weft-tcp/1";

/**
 * Idle timeout of a TCP tunnel: Envoy's `tcp_proxy` default of one hour, since raw TCP
 * protocols (databases, caches) often keep quiet connections open for long.
 */
export const tcpIdleTimeoutMs = 3_600_000;

/** Metric families of the TCP upstream listeners. */
export class TcpMetrics {
  readonly connections: Counter;
  readonly active: Gauge;

  constructor(registry: Registry) {
    this.connections = registry.counter(
      "weft_tcp_connections_total",
      "Connections accepted by TCP upstream listeners, by service and response flag.",
    );
    this.active = registry.gauge(
      "weft_tcp_active_connections",
      "TCP upstream connections open now, by service.",
    );
  }
}

/** What the TCP upstream listeners share with the rest of the proxy. */
export interface TcpContext {
  snapshot(): Snapshot;
  readonly clusters: ClusterManager;
  readonly pools: PoolManager;
  readonly metrics: TcpMetrics;
  readonly logger: Logger;
  readonly clock: Clock;
}

/**
 * Moves bytes both ways between two connections until both directions ended, either side
 * failed, or nothing moved for `idleMs`. Bytes already buffered in a reader go first; an end
 * of stream on one side is passed on as a half-close (TCP FIN). Both connections are closed
 * when it resolves.
 */
export async function joinConnections(
  a: ConnReader,
  b: ConnReader,
  idleMs: number,
  clock: Clock,
): Promise<void> {
  let lastActivity = clock.now();
  const closeBoth = (): void => {
    closeQuietly(a.conn);
    closeQuietly(b.conn);
  };
  let idleTimer: TimerId | undefined;
  const checkIdle = (): void => {
    const idleUntil = lastActivity + idleMs;
    const now = clock.now();
    if (now >= idleUntil) {
      idleTimer = undefined;
      closeBoth();
    } else idleTimer = clock.setTimeout(checkIdle, idleUntil - now);
  };
  if (idleMs > 0) idleTimer = clock.setTimeout(checkIdle, idleMs);
  const pipe = async (src: ConnReader, dst: StreamConn): Promise<void> => {
    for (;;) {
      if (src.buffered > 0) {
        await writeAll(dst, src.buf.subarray(src.start, src.end));
        src.start = src.end;
      }
      if (!(await src.fill())) break;
      lastActivity = clock.now();
    }
    await dst.closeWrite();
  };
  try {
    await Promise.all([pipe(a, b.conn).catch(closeBoth), pipe(b, a.conn).catch(closeBoth)]);
  } finally {
    if (idleTimer !== undefined) clock.clearTimeout(idleTimer);
    closeBoth();
  }
}

const noPick = {};
const decoder = new TextDecoder();

/** Why a connection to an endpoint could not be set up. */
class TunnelSetupError extends Error {}

/**
 * Serves one connection accepted by the TCP listener of `upstream`: pick, connect (and
 * handshake through a remote node's inbound listener), then join. Never throws.
 */
export async function serveTcpUpstream(
  tracked: TrackedConnection,
  upstream: TcpUpstreamConfig,
  ctx: TcpContext,
): Promise<void> {
  // A tunnel is never "between requests": a drain waits for it, then closes it.
  tracked.idle = false;
  const client = tracked.conn;
  const metrics = ctx.metrics;
  const service = upstream.service;
  const cluster = ctx.snapshot().clusters.get(upstream.cluster);
  const state = ctx.clusters.get(upstream.cluster);
  const endpoint = cluster !== undefined ? state?.pick(noPick) : undefined;
  if (cluster === undefined || state === undefined || endpoint === undefined) {
    metrics.connections.with({ service, flag: "UH" }).inc();
    ctx.logger.warn("tcp upstream: no healthy endpoint", { service });
    closeQuietly(client);
    return;
  }
  const started = ctx.clock.now();
  const pool = ctx.pools.pool(endpoint.key, endpoint.hostname, endpoint.port);
  let up: UpstreamConnection | undefined;
  try {
    up = await pool.connect(cluster.connectTimeoutMs);
    if (endpoint.viaInbound) await handshake(up, service, cluster.connectTimeoutMs, ctx.clock);
  } catch (err) {
    if (up !== undefined) pool.release(up, false, 0);
    state.report(endpoint, 0, err instanceof TunnelSetupError ? "reset" : "connect");
    state.balancer.release(endpoint, { latencyMs: ctx.clock.now() - started, ok: false });
    metrics.connections.with({ service, flag: "UF" }).inc();
    ctx.logger.warn("tcp upstream: connect failed", {
      service,
      upstream: endpoint.key,
      error: (err as Error).message,
    });
    closeQuietly(client);
    return;
  }
  // As for WebSocket upgrades, the pick's outcome is the setup's: a tunnel's lifetime is no
  // latency.
  state.report(endpoint, 200);
  state.balancer.release(endpoint, { latencyMs: ctx.clock.now() - started, ok: true });
  metrics.connections.with({ service, flag: "-" }).inc();
  const active = metrics.active.with({ service });
  active.inc();
  const reader = new ConnReader(client);
  try {
    await joinConnections(reader, up.reader, tcpIdleTimeoutMs, ctx.clock);
    // Both directions ended, so no read into the client's buffer is pending: it can be reused.
    reader.release();
  } finally {
    active.dec();
    pool.release(up, false, 0);
  }
}

/**
 * Asks a remote node's inbound listener for a raw tunnel to `service` and waits for its
 * `101`. Bytes read past the response head stay in the reader: they belong to the tunnel.
 */
async function handshake(
  up: UpstreamConnection,
  service: string,
  timeoutMs: number,
  clock: Clock,
): Promise<void> {
  const head = `GET / HTTP/1.1\r\nhost: ${service}\r\nx-weft-destination: ${service}\r\n` +
    `connection: upgrade\r\nupgrade: ${tcpUpgradeProtocol}\r\n\r\n`;
  let timedOut = false;
  const timer = timeoutMs > 0
    ? clock.setTimeout(() => {
      timedOut = true;
      up.close();
    }, timeoutMs)
    : undefined;
  try {
    await writeAll(up.conn, new TextEncoder().encode(head));
    const reader = up.reader;
    const headEnd = await reader.readHeadEnd();
    if (headEnd < 0) throw new TunnelSetupError("inbound listener closed the connection");
    const text = decoder.decode(reader.buf.subarray(reader.start, headEnd));
    reader.start = headEnd;
    const statusLine = text.slice(0, text.indexOf("\r\n"));
    if (!/^HTTP\/1\.1 101 /.test(statusLine + " ")) {
      throw new TunnelSetupError(`inbound listener answered "${statusLine}"`);
    }
  } catch (err) {
    if (err instanceof TunnelSetupError) throw err;
    throw new TunnelSetupError(
      timedOut ? "tunnel handshake timed out" : `tunnel handshake failed: ${String(err)}`,
    );
  } finally {
    if (timer !== undefined) clock.clearTimeout(timer);
  }
}
