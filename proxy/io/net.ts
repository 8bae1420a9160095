/**
 * @module
 * The socket surface the proxy uses, and its two backends. The data plane only needs
 * `read`/`write`/half-close/close on a stream plus `listen` and `connect`, so it is written
 * against {@linkcode StreamConn} and {@linkcode Network}: `denoNetwork` uses `Deno.listen` and
 * `Deno.connect` (everywhere), the epoll backend (io/epoll.ts) uses nonblocking sockets and
 * one `epoll_wait` through FFI (Linux, `--allow-ffi`). A `Deno.TcpConn` is a StreamConn as is.
 */
import type { HostPort } from "../../lib/mod.ts";

/** A connected byte stream (TCP). Errors are `Deno.errors.*` classes, as Deno's sockets throw. */
export interface StreamConn {
  /** Reads into `p`; resolves with the count, or null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves with how much was written (callers loop). */
  write(p: Uint8Array): Promise<number>;
  /**
   * Writes some of `p` now if the socket can take it at once: the count, or -1 when the bytes
   * must go through `write` (would block, busy, failed). Spares the request path a promise
   * and a microtask hop per write; backends without it always go through `write`.
   */
  tryWrite?(p: Uint8Array): number;
  /** Sends FIN (half-close) after what was written. */
  closeWrite(): Promise<void>;
  /** Closes both directions; pending reads and writes fail. Throws if already closed. */
  close(): void;
  setNoDelay(noDelay?: boolean): void;
  readonly remoteAddr: Deno.Addr;
}

/** A bound listening socket. */
export interface StreamListener {
  readonly addr: HostPort;
  /** The next connection; rejects once the listener is closed. */
  accept(): Promise<StreamConn>;
  close(): void;
}

/** Where sockets come from. */
export interface Network {
  /** "deno" or "epoll", for logs and the admin status. */
  readonly name: string;
  listen(addr: HostPort): StreamListener;
  /** Opens a connection; an abort of `signal` before it is up fails it and frees the socket. */
  connect(hostname: string, port: number, signal?: AbortSignal): Promise<StreamConn>;
  /** Resolves once no socket of this network is open and its poller stopped (tests, stop). */
  settled(): Promise<void>;
  /**
   * Milliseconds on `performance.now()`'s scale, read once per I/O round: while the poller
   * hands out a round of events, the time the round began; elsewhere a fresh reading. Timing
   * a request this way costs no clock call (Deno's `performance.now()` is a runtime call,
   * 0.13-0.2 us here) and is off by at most one round. Absent: use `performance.now()`.
   */
  now?(): number;
}

class DenoListener implements StreamListener {
  readonly #listener: Deno.TcpListener;
  readonly addr: HostPort;

  constructor(addr: HostPort) {
    this.#listener = Deno.listen({ hostname: addr.hostname, port: addr.port, transport: "tcp" });
    this.addr = { hostname: this.#listener.addr.hostname, port: this.#listener.addr.port };
  }

  accept(): Promise<StreamConn> {
    return this.#listener.accept();
  }

  close(): void {
    this.#listener.close();
  }
}

/** Deno's own sockets: portable, and what runs without the FFI permission. */
export const denoNetwork: Network = {
  name: "deno",
  listen: (addr) => new DenoListener(addr),
  connect: (hostname, port, signal) => Deno.connect({ hostname, port, signal }),
  settled: () => Promise.resolve(),
};
