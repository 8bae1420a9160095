/**
 * @module
 * Why a try at an upstream failed before a response head was relayed: the local reply it
 * turns into, and whether it may be sent again on a fresh connection (a pooled connection the
 * upstream had closed while idle). Reset detection and the flag of a failure while streaming
 * follow Envoy's names.
 */
import { PipeError, ProtocolError } from "./http1.ts";
import { type LocalReply, replies, type ResponseFlag } from "./local_reply.ts";

/** A failed try, thrown inside the endpoint layer and kept on the exchange. */
export class UpstreamFailure extends Error {
  constructor(
    readonly reply: LocalReply,
    /** The exchange may be retried on a fresh connection (stale pooled connection). */
    readonly retryable: boolean,
  ) {
    super(reply.message);
  }

  get flag(): ResponseFlag {
    return this.reply.flag;
  }
}

/** The route or per-try timeout ended the try (never retried on a fresh connection). */
export const timedOutTry: UpstreamFailure = new UpstreamFailure(replies.timeout, false);

/** Opening a connection to the endpoint failed (refused, unreachable). */
export const connectErrorFailure: UpstreamFailure = new UpstreamFailure(
  replies.connectError,
  false,
);
/** Opening a connection to the endpoint took longer than the cluster's connect timeout. */
export const connectTimeoutFailure: UpstreamFailure = new UpstreamFailure(
  replies.connectTimeout,
  false,
);

/** True when `err` (or the socket error a pipe failed with) is a reset by the peer. */
export function isReset(err: unknown): boolean {
  const cause = err instanceof PipeError ? err.cause : err;
  return cause instanceof Deno.errors.ConnectionReset ||
    cause instanceof Deno.errors.BrokenPipe ||
    cause instanceof Deno.errors.ConnectionAborted;
}

/** The response flag for an exchange that failed while streaming. */
export function streamFailureFlag(err: unknown, timedOut: boolean): ResponseFlag {
  if (timedOut) return "UT";
  if (err instanceof PipeError && err.side === "dst") return "DC";
  if (err instanceof ProtocolError) return "UPE";
  return isReset(err) ? "UR" : "UC";
}
