/**
 * @module
 * TCP listeners, independent of the protocol spoken on them: accept connections, hand each to
 * a protocol handler (HTTP/1.1 today; HTTP/2, TCP proxying or a TLS wrapper later), track them
 * and drain on stop. A handler reports whether its connection is between requests, so a drain
 * can close idle connections at once and let busy ones finish.
 */
import type { Network, StreamConn, StreamListener } from "./io/net.ts";
import {
  type Clock,
  DenseSet,
  type DenseSetMember,
  type HostPort,
  realClock,
  type TimerId,
} from "../lib/mod.ts";

/** One accepted connection as the listener tracks it. */
export interface TrackedConnection {
  readonly conn: StreamConn;
  /** True while no request is in progress; set by the protocol handler. */
  idle: boolean;
}

class AcceptedConnection implements TrackedConnection, DenseSetMember {
  idle = true;
  denseIndex = -1;
  /** The handler serving it (settles when the connection is done). */
  task: Promise<void> = Promise.resolve();
  constructor(readonly conn: StreamConn) {}
}

/** Serves one connection until it ends; must not throw. */
export type ConnectionHandler = (tracked: TrackedConnection) => Promise<void>;

/**
 * A bound on a listener's open connections: `max()` is read at each accept (0: none), and a
 * connection accepted over it is closed at once and told to `refused()`.
 */
export interface ConnectionLimit {
  max(): number;
  refused(): void;
}

/** A bound TCP listener with its accept loop. */
export class TcpListener {
  readonly #listener: StreamListener;
  /** Open connections; a DenseSet, not a Set: connections churn (see lib/dense_set.ts). */
  readonly #connections = new DenseSet<AcceptedConnection>();
  readonly #acceptLoop: Promise<void>;
  #closed = false;
  /** Bound address (the real port when 0 was asked for). */
  readonly addr: HostPort;

  constructor(
    network: Network,
    addr: HostPort,
    readonly handler: ConnectionHandler,
    /** Times the drain (the proxy's clock, so tests can move it). */
    readonly clock: Clock = realClock,
    readonly limit: ConnectionLimit | null = null,
  ) {
    this.#listener = network.listen(addr);
    this.addr = this.#listener.addr;
    this.#acceptLoop = this.#accept();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: StreamConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        if (this.#closed) return;
        // Transient accept failures (EMFILE, aborted handshakes) must not stop the listener.
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const limit = this.limit;
      if (limit !== null) {
        const max = limit.max();
        if (max > 0 && this.#connections.size >= max) {
          // Over the limit: closed before a byte is read, the cheapest answer there is
          // (Envoy's max_downstream_connections does the same).
          closeQuietly(conn);
          limit.refused();
          continue;
        }
      }
      try {
        conn.setNoDelay(true);
      } catch {
        // The peer may already be gone; the handler will see it.
      }
      const accepted = new AcceptedConnection(conn);
      this.#connections.add(accepted);
      accepted.task = this.handler(accepted).finally(() => this.#connections.delete(accepted));
    }
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Stops accepting new connections. */
  async stopAccepting(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    await this.#acceptLoop;
  }

  /** Closes connections that are between requests. */
  closeIdle(): void {
    for (const t of this.#connections.values()) if (t.idle) closeQuietly(t.conn);
  }

  /** Closes every connection and waits for their handlers to finish. */
  async closeAll(): Promise<void> {
    const open = this.#connections.values();
    for (const t of open) closeQuietly(t.conn);
    await Promise.all(open.map((t) => t.task));
  }

  /** Resolves when every handler finished, or after `ms`; true when all finished. */
  async waitIdle(ms: number): Promise<boolean> {
    if (this.#connections.size === 0) return true;
    let timer: TimerId | undefined;
    const timeout = new Promise<false>((r) => (timer = this.clock.setTimeout(() => r(false), ms)));
    const done = Promise.all(this.#connections.values().map((t) => t.task)).then(() => true);
    const result = await Promise.race([done, timeout]);
    if (timer !== undefined) this.clock.clearTimeout(timer);
    return result;
  }
}

/** Closes a connection, ignoring "already closed". */
export function closeQuietly(conn: StreamConn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
