/**
 * @module
 * Replies the proxy makes itself, with Envoy's response flags: a short JSON body
 * `{"error":"...","flag":"NR"}` and the flag in header `x-weft-flag`, so a caller (and the
 * access log) can tell a proxy decision from an upstream answer.
 */
import { encoder, ProtocolError } from "./http1.ts";

/** Envoy response flags used by Weft; "-" means none. */
export type ResponseFlag =
  | "-"
  /** No route for the host/path. */
  | "NR"
  /** No healthy upstream endpoint. */
  | "UH"
  /** Upstream connection failure (refused or connect timeout). */
  | "UF"
  /** Upstream connection terminated before a complete response. */
  | "UC"
  /** Upstream reset the connection. */
  | "UR"
  /** Upstream request timeout (route timeout). */
  | "UT"
  /** Downstream connection terminated before the exchange finished. */
  | "DC"
  /** Downstream protocol error (malformed request). */
  | "DPE"
  /** Upstream protocol error (malformed response). */
  | "UPE"
  /** Request aborted by fault injection. */
  | "FI"
  /** Request delayed by fault injection. */
  | "DI"
  /** Retries exhausted: the last try's failure is what the client got. */
  | "URX"
  /** Upstream overflow: a circuit breaker (DestinationRule connectionPool) refused it. */
  | "UO";

/** Flags in a fixed order, so metrics can index cached children by number. */
export const responseFlags: readonly ResponseFlag[] = [
  "-",
  "NR",
  "UH",
  "UF",
  "UC",
  "UR",
  "UT",
  "DC",
  "DPE",
  "UPE",
  "FI",
  "DI",
  "URX",
  "UO",
];

const statusText: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  409: "Conflict",
  414: "URI Too Long",
  418: "I'm a teapot",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/**
 * A reply the proxy makes itself: status, flag and message, named once here so that every
 * layer that gives up on a request answers the same way for the same reason.
 */
export interface LocalReply {
  readonly status: number;
  readonly flag: ResponseFlag;
  readonly message: string;
}

function reply(status: number, flag: ResponseFlag, message: string): LocalReply {
  return Object.freeze({ status, flag, message });
}

/** The proxy's own answers, by reason. */
export const replies = Object.freeze({
  /** A request target that is neither origin-form nor an `http://` absolute URL. */
  badTarget: reply(400, "DPE", "unsupported request target"),
  noRoute: reply(404, "NR", "no route"),
  noLocalService: reply(404, "NR", "no local service"),
  noHealthyUpstream: reply(503, "UH", "no healthy upstream"),
  /** A circuit breaker (DestinationRule connectionPool) refused the request. */
  overflow: reply(503, "UO", "upstream overflow"),
  /** The route timeout (or, after retries, the last per-try timeout) expired. */
  timeout: reply(504, "UT", "upstream request timeout"),
  connectError: reply(502, "UF", "upstream connect error"),
  connectTimeout: reply(502, "UF", "upstream connect timeout"),
  terminated: reply(502, "UC", "upstream connection terminated"),
  reset: reply(502, "UR", "upstream reset"),
  protocolError: reply(502, "UPE", "upstream protocol error"),
  /** The client did not complete a request head within `requestHeadersTimeoutMs`. */
  headersTimeout: reply(408, "DC", "request headers timeout"),
  /** The client sent no request body byte for `requestBodyTimeoutMs`. */
  bodyTimeout: reply(408, "DC", "request body timeout"),
});

const faultAborts = new Map<number, LocalReply>();

/** The fault filter's abort with the configured status. */
export function faultAbortReply(status: number): LocalReply {
  let r = faultAborts.get(status);
  if (r === undefined) faultAborts.set(status, r = reply(status, "FI", "fault filter abort"));
  return r;
}

/**
 * A request the downstream codec refused, flagged DPE with the parser's reason: 414 for a
 * request-target over its limit, 431 for a head too large or with too many header lines
 * (the status a {@linkcode ProtocolError} carries), 400 for anything else malformed.
 */
export function malformedRequestReply(error: Error): LocalReply {
  const status = error instanceof ProtocolError ? error.status : 400;
  return reply(status, "DPE", error.message);
}

/** A raw TCP service asked for with something else than its upgrade. */
export function tcpExpectedReply(protocol: string): LocalReply {
  return reply(400, "-", `tcp service: expects upgrade to ${protocol}`);
}

/** A TCP upgrade sent to a service that is not a `tcp` one. */
export function notTcpServiceReply(service: string): LocalReply {
  return reply(400, "-", `service "${service}" is not a tcp service`);
}

const cache = new Map<string, Uint8Array>();

/**
 * The complete bytes of a local reply. Cached per (status, flag, message, close) because the
 * same few replies repeat under failure, when allocation matters most.
 */
export function localReplyBytes(
  status: number,
  flag: ResponseFlag,
  message: string,
  close: boolean,
): Uint8Array {
  const key = `${status}|${flag}|${close}|${message}`;
  let bytes = cache.get(key);
  if (!bytes) {
    const body = JSON.stringify({ error: message, flag });
    const bodyBytes = encoder.encode(body);
    bytes = encoder.encode(
      `HTTP/1.1 ${status} ${statusText[status] ?? "Error"}\r\n` +
        `content-type: application/json\r\n` +
        `content-length: ${bodyBytes.length}\r\n` +
        `x-weft-flag: ${flag}\r\n` +
        (close ? "connection: close\r\n" : "") +
        `\r\n${body}`,
    );
    if (cache.size < 256) cache.set(key, bytes);
  }
  return bytes;
}
