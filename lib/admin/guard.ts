/**
 * @module
 * Keeps web pages away from the admin API (hono middleware). A browser lets any page send a
 * "simple" cross-origin POST (no preflight), and DNS rebinding lets a page's own host name
 * resolve to 127.0.0.1, so loopback alone protects nothing. {@linkcode adminGuard} refuses,
 * with 403:
 *
 * - every request whose `Host` names neither a loopback host (`localhost`, `127.0.0.0/8`,
 *   `[::1]`) nor the host of `--admin-addr` (under DNS rebinding the `Host` is the attacker's
 *   name, so reads would leak as well); `GET /metrics` and `GET /healthz` are exempt, since
 *   Prometheus and health checkers reach them by any address;
 * - a state-changing request (POST, PUT, PATCH, DELETE) whose `Origin`, when present, is not
 *   the origin the `Host` names (a page of another site, or `null`).
 *
 * When the admin API listens on a wildcard address (`0.0.0.0`, `::`) any IP-literal `Host` is
 * accepted too: the API is reachable at every address of the machine, and an IP literal cannot
 * be rebound by DNS. The port is not compared: a rebinding page names the admin port itself.
 */
import type { MiddlewareHandler } from "hono";
import type { ErrorResponse } from "./api_types.ts";

/** Paths any `Host` may read (scrapers and health checks address the node by IP). */
const OPEN_PATHS = new Set(["/metrics", "/healthz"]);
const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** What a `Host` header may hold: a name or IPv4 address, or a bracketed IPv6, and a port. */
const HOST_SYNTAX = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * The host name of an authority (`host[:port]`) in the normal form a browser sends (lower
 * case, IPv6 in brackets and compressed), or `undefined` when it is not one.
 */
function hostnameOf(authority: string): string | undefined {
  if (!HOST_SYNTAX.test(authority)) return undefined;
  try {
    return new URL(`http://${authority}`).hostname;
  } catch {
    return undefined;
  }
}

function isIpv4(host: string): boolean {
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(host);
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || (isIpv4(host) && host.startsWith("127."));
}

/** The host name of `--admin-addr` in the form {@linkcode hostnameOf} gives. */
function configuredHost(adminHost: string): string | undefined {
  return hostnameOf(
    adminHost.includes(":") && !adminHost.startsWith("[") ? `[${adminHost}]` : adminHost,
  );
}

function forbidden(header: string, message: string): Response {
  const body: ErrorResponse = { error: message, details: [{ path: `headers.${header}`, message }] };
  return new Response(JSON.stringify(body), {
    status: 403,
    headers: { "content-type": "application/json" },
  });
}

/**
 * The admin API's Host and Origin check. `adminHost` is the host of `--admin-addr`; without
 * it only loopback names are accepted.
 */
export function adminGuard(adminHost?: string): MiddlewareHandler {
  const own = adminHost === undefined ? undefined : configuredHost(adminHost);
  const wildcard = own === "0.0.0.0" || own === "[::]";
  const allowed = (host: string) =>
    isLoopback(host) || host === own || (wildcard && (isIpv4(host) || host.startsWith("[")));
  const expected = `localhost, 127.0.0.0/8, [::1]${
    own === undefined || isLoopback(own)
      ? ""
      : wildcard
      ? " or an IP address (--admin-addr is a wildcard address)"
      : ` or ${own} (--admin-addr)`
  }`;
  return async (c, next) => {
    const method = c.req.method;
    const stateChanging = STATE_CHANGING.has(method);
    if (!stateChanging && OPEN_PATHS.has(c.req.path)) return await next();
    // Browsers always send Host; without one (an in-process request), the URL's host stands.
    const host = c.req.header("host") ?? new URL(c.req.url).host;
    const hostname = hostnameOf(host);
    if (hostname === undefined || !allowed(hostname)) {
      return forbidden(
        "host",
        `Host header: expected ${expected}, got ${JSON.stringify(host)} ` +
          "(refused: a web page may reach the admin API by DNS rebinding)",
      );
    }
    const origin = c.req.header("origin");
    if (stateChanging && origin !== undefined && !sameOrigin(origin, host)) {
      return forbidden(
        "origin",
        `Origin header: expected http://${host} or none, got ${JSON.stringify(origin)} ` +
          `(refused: a web page of another origin may not ${method} to the admin API)`,
      );
    }
    return await next();
  };
}

/** Whether `origin` (`scheme://host[:port]`) is the origin of a page served from `host`. */
function sameOrigin(origin: string, host: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null" (sandboxed frames, file: pages) and garbage
  }
  // Exactly what a browser sends: a scheme and an authority, nothing after it.
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.origin !== origin) {
    return false;
  }
  return url.host === new URL(`http://${host}`).host;
}
