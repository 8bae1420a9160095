/**
 * @module
 * VirtualService `redirect` (Envoy `redirect` route action) and `rewrite` (Envoy
 * `prefix_rewrite` / `host_rewrite_literal`).
 *
 * Redirect: the proxy answers `redirectCode` (default 301) with a `Location` built from the
 * request: `scheme` (default `http`, what the request used), `authority` replacing the host
 * (keeping the request's port unless `port` is set), `port` replacing the port, and `uri`
 * replacing the path. As in Envoy, the request's query string is kept unless the new `uri`
 * carries its own.
 */
import type { RouteRedirect, RouteRewrite } from "../../lib/mod.ts";
import type { HttpMatchRequest } from "../../lib/resources/virtual_service.ts";
import { encoder } from "../http1.ts";
import { rewritePath } from "../route_match.ts";

function splitAuthority(authority: string): { host: string; port: string } {
  const colon = authority.lastIndexOf(":");
  if (colon < 0 || authority.indexOf("]", colon) >= 0) return { host: authority, port: "" };
  return { host: authority.slice(0, colon), port: authority.slice(colon + 1) };
}

/** The `Location` of a redirect for a request to `authority` with `path` and `query`. */
export function redirectLocation(
  redirect: RouteRedirect,
  authority: string,
  path: string,
  query: string,
): string {
  const scheme = redirect.scheme ?? "http";
  const original = splitAuthority(authority);
  let host = original.host;
  let port = original.port;
  if (redirect.authority !== undefined) {
    const target = splitAuthority(redirect.authority);
    host = target.host;
    if (target.port !== "") port = target.port;
  }
  if (redirect.port !== undefined) port = String(redirect.port);
  // A scheme's default port is left out, as Envoy does.
  if ((scheme === "http" && port === "80") || (scheme === "https" && port === "443")) port = "";
  let target = path;
  if (redirect.uri !== undefined) target = redirect.uri;
  if (redirect.uri?.includes("?") !== true && query !== "") target += `?${query}`;
  return `${scheme}://${host}${port === "" ? "" : `:${port}`}${target}`.replace(/[\r\n]/g, "");
}

const reasons: Record<number, string> = {
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
};

/** The complete bytes of a redirect reply. */
export function redirectReplyBytes(code: number, location: string, close: boolean): Uint8Array {
  return encoder.encode(
    `HTTP/1.1 ${code} ${reasons[code] ?? "Redirect"}\r\nlocation: ${location}\r\n` +
      `content-length: 0\r\n${close ? "connection: close\r\n" : ""}\r\n`,
  );
}

/**
 * The request target after `rewrite.uri` (path rewritten, query kept), or the original target
 * when the route has no uri rewrite.
 */
export function rewriteTarget(
  rewrite: RouteRewrite | undefined,
  matched: HttpMatchRequest | undefined,
  path: string,
  query: string,
): string | undefined {
  if (rewrite?.uri === undefined) return undefined;
  const rewritten = rewritePath(path, matched, rewrite.uri);
  return query === "" ? rewritten : `${rewritten}?${query}`;
}
