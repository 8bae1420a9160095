/**
 * @module
 * The downstream timeouts of an HTTP/1.1 session, on the proxy's one `DeadlineTicker` (deadlines.ts)
 * rather than a timer per connection: what the session's `deadline` stands for ({@linkcode
 * Phase}: idle, request head, routed request), and the request body timeout that runs beside
 * the route deadline ({@linkcode BodyWatch}). The session (session_http1.ts) acts on them.
 */
import type { Expiring } from "./deadlines.ts";
import type { ProxyContext } from "./exchange.ts";
import type { ReadWatch } from "./http1.ts";

/** What a {@linkcode BodyWatch} needs of its session. */
export interface BodyReader {
  readonly ctx: ProxyContext;
  /** True when no request body is being read (none, or all of it was). */
  readonly reqBodyDone: boolean;
  /** Ends the request: the body stopped coming. */
  expireBody(): void;
}

/**
 * What the session's `deadline` means now, so that one ticker entry serves every downstream
 * timeout: the connection waits for a request (idle timeout), reads a request head (request
 * headers timeout), or a request is routed (route and per-try timeouts, exchange.ts). The
 * request body timeout runs beside the route deadline, on the session's {@linkcode BodyWatch}.
 */
export const enum Phase {
  Idle,
  Head,
  Route,
  /** A downstream timeout ended the connection; nothing more is read from it. */
  Closing,
}

/** Counts a connection ended by a downstream timeout of `kind`. */
export function countTimeout(
  ctx: ProxyContext,
  kind: "idle" | "request_headers" | "request_body",
): void {
  ctx.metrics.downstreamTimeouts.with({ listener: ctx.kind, kind }).inc();
}

/**
 * The request body timeout of one session: armed when a read of the request body starts
 * (ConnReader.fill), cleared when it returns, so only the client's silence counts, not an
 * upstream slow to take the body. Tracked by the same ticker as the session. On expiry the
 * session answers 408 unless a response head went out, then closes the connection: that ends
 * the pending body read, and with it the request in the concrete and endpoint layers.
 */
export class BodyWatch implements Expiring, ReadWatch {
  denseIndex = -1;
  deadline = 0;
  constructor(readonly session: BodyReader) {}

  reading(): void {
    const s = this.session;
    // The downstream reader's other reads (tunnels) are not a request body.
    if (s.reqBodyDone) return;
    const ctx = s.ctx;
    const ms = ctx.snapshot().tuning.requestBodyTimeoutMs;
    if (ms <= 0) return;
    this.deadline = ctx.clock.now() + ms;
    ctx.deadlines.arm(this.deadline);
  }

  read(): void {
    this.deadline = 0;
  }

  expire(): void {
    this.session.expireBody();
  }

  abort(): void {}
}
