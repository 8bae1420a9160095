/**
 * @module
 * Keep-alive connection pools, one per upstream endpoint key (`host:port`). Pools outlive
 * snapshots: a swap that keeps an endpoint keeps its warm connections. Idle connections are
 * reused last-in first-out (the warmest socket, least likely closed by the peer) and a sweeper
 * closes those idle longer than the snapshot's `upstreamIdleTimeoutMs`.
 */
import { denoNetwork, type Network, type StreamConn } from "./io/net.ts";
import type { Clock, CounterChild, TimerId } from "../lib/mod.ts";
import { ConnReader } from "./http1.ts";

/** An upstream socket with its read buffer. */
export class UpstreamConnection {
  readonly reader: ConnReader;
  idleSince = 0;
  closed = false;
  /** Exchanges completed on this connection (0 on a fresh one). */
  uses = 0;

  constructor(readonly conn: StreamConn, readonly pool: EndpointPool) {
    this.reader = new ConnReader(conn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed by a failing read or write.
    }
  }
}

/** Thrown when a connection could not be opened; `timedOut` tells a timeout from a refusal. */
export class ConnectError extends Error {
  override name = "ConnectError";
  constructor(message: string, readonly timedOut: boolean, cause?: unknown) {
    super(message, { cause });
  }
}

/** Idle connections to one endpoint. */
export class EndpointPool {
  readonly #idle: UpstreamConnection[] = [];
  #closed = false;
  /** Connections handed out and not yet released. */
  leased = 0;

  constructor(
    readonly key: string,
    readonly hostname: string,
    readonly port: number,
    readonly clock: Clock,
    readonly opened: CounterChild,
    readonly network: Network,
  ) {}

  get idleCount(): number {
    return this.#idle.length;
  }

  /** A warm idle connection, or null when none is available. */
  takeIdle(): UpstreamConnection | null {
    const idle = this.#idle;
    while (idle.length > 0) {
      const c = idle.pop()!;
      if (!c.closed) {
        this.leased++;
        return c;
      }
    }
    return null;
  }

  /** Opens a new connection, failing after `timeoutMs`. */
  async connect(timeoutMs: number): Promise<UpstreamConnection> {
    let timer: TimerId | undefined;
    let timedOut = false;
    // Aborting frees a socket whose handshake never finishes (a black-holed address).
    const abort = timeoutMs > 0 ? new AbortController() : undefined;
    const attempt = this.network.connect(this.hostname, this.port, abort?.signal);
    try {
      const conn = timeoutMs > 0
        ? await Promise.race([
          attempt,
          new Promise<never>((_, reject) => {
            timer = this.clock.setTimeout(() => {
              timedOut = true;
              abort?.abort();
              reject(new ConnectError(`connect to ${this.key} timed out`, true));
            }, timeoutMs);
          }),
        ])
        : await attempt;
      if (timer !== undefined) this.clock.clearTimeout(timer);
      conn.setNoDelay(true);
      this.opened.inc();
      this.leased++;
      return new UpstreamConnection(conn, this);
    } catch (err) {
      if (timer !== undefined) this.clock.clearTimeout(timer);
      if (timedOut) attempt.then((c) => c.close(), () => {});
      if (err instanceof ConnectError) throw err;
      throw new ConnectError(
        `connect to ${this.key} failed: ${(err as Error).message}`,
        false,
        err,
      );
    }
  }

  /**
   * Returns a leased connection. A reusable one goes back to the idle stack unless the pool
   * is full or closed; anything else is closed. `now` (the caller's clock reading, when it has
   * one) marks when it went idle.
   */
  release(c: UpstreamConnection, reusable: boolean, maxIdle: number, now?: number): void {
    this.leased--;
    if (!reusable || c.closed || this.#closed || this.#idle.length >= maxIdle) {
      c.close();
      return;
    }
    c.uses++;
    c.idleSince = now ?? this.clock.now();
    this.#idle.push(c);
  }

  /** Closes connections idle for at least `idleTimeoutMs` (oldest sit at the bottom). */
  sweep(now: number, idleTimeoutMs: number): void {
    const idle = this.#idle;
    let expired = 0;
    while (expired < idle.length && now - idle[expired].idleSince >= idleTimeoutMs) {
      idle[expired++].close();
    }
    if (expired > 0) idle.splice(0, expired);
  }

  /** Closes idle connections now; leased ones are closed when released. */
  close(): void {
    this.#closed = true;
    for (const c of this.#idle) c.close();
    this.#idle.length = 0;
  }

  get closed(): boolean {
    return this.#closed;
  }
}

/** All endpoint pools of a proxy, keyed by endpoint key. */
export class PoolManager {
  readonly #pools = new Map<string, EndpointPool>();
  #sweeper: TimerId | undefined;
  #idleTimeoutMs = 60_000;

  constructor(
    readonly clock: Clock,
    readonly openedFor: (endpointKey: string) => CounterChild,
    readonly network: Network = denoNetwork,
  ) {}

  /** The pool for an endpoint, created on first use. */
  pool(key: string, hostname: string, port: number): EndpointPool {
    let p = this.#pools.get(key);
    if (!p) {
      p = new EndpointPool(key, hostname, port, this.clock, this.openedFor(key), this.network);
      this.#pools.set(key, p);
    }
    return p;
  }

  get size(): number {
    return this.#pools.size;
  }

  /** Drops pools whose endpoint left every cluster. */
  retain(liveKeys: ReadonlySet<string>): void {
    for (const [key, p] of this.#pools) {
      if (!liveKeys.has(key)) {
        p.close();
        this.#pools.delete(key);
      }
    }
  }

  /** Starts (or retunes) the idle sweeper. */
  startSweeper(idleTimeoutMs: number): void {
    this.#idleTimeoutMs = idleTimeoutMs;
    if (this.#sweeper !== undefined) this.clock.clearTimeout(this.#sweeper);
    // A quarter of the timeout keeps connections at most 25% past their deadline.
    const every = Math.min(5_000, Math.max(50, Math.floor(idleTimeoutMs / 4)));
    const tick = () => {
      const now = this.clock.now();
      for (const p of this.#pools.values()) p.sweep(now, this.#idleTimeoutMs);
      this.#sweeper = this.clock.setTimeout(tick, every);
    };
    this.#sweeper = this.clock.setTimeout(tick, every);
  }

  /** Stops the sweeper and closes every idle connection. */
  close(): void {
    if (this.#sweeper !== undefined) this.clock.clearTimeout(this.#sweeper);
    this.#sweeper = undefined;
    for (const p of this.#pools.values()) p.close();
    this.#pools.clear();
  }
}
