/**
 * @module
 * The routes of a snapshot as text, one line per match and per destination list, for
 * `weft routes`. Reads a compiled snapshot; compiles nothing.
 */
import type { ClusterConfig, RouteConfig } from "./snapshot.ts";
import type { StringMatch } from "./resources/virtual_service.ts";

function stringMatchText(m: StringMatch): string {
  if (m.exact !== undefined) return `=${m.exact}`;
  if (m.prefix !== undefined) return ` prefix ${m.prefix}`;
  if (m.regex !== undefined) return ` ~${m.regex}`;
  return " present";
}

/** The match of a route in one line: `uri prefix /api, method=GET | headers service=a`. */
export function describeRouteMatch(route: RouteConfig): string {
  if (!route.matches) return `prefix ${route.match.pathPrefix}`;
  return route.matches.map((m) => {
    const parts: string[] = [];
    if (m.uri) parts.push(`uri${stringMatchText(m.uri)}${m.ignoreUriCase ? " (any case)" : ""}`);
    if (m.method) parts.push(`method${stringMatchText(m.method)}`);
    if (m.authority) parts.push(`authority${stringMatchText(m.authority)}`);
    for (const [n, v] of Object.entries(m.headers ?? {})) {
      parts.push(`header ${n}${stringMatchText(v)}`);
    }
    for (const [n, v] of Object.entries(m.queryParams ?? {})) {
      parts.push(`query ${n}${stringMatchText(v)}`);
    }
    for (const [n, v] of Object.entries(m.withoutHeaders ?? {})) {
      parts.push(`without header ${n}${stringMatchText(v)}`);
    }
    for (const [n, v] of Object.entries(m.sourceLabels ?? {})) parts.push(`source ${n}=${v}`);
    if (m.port !== undefined) parts.push(`port ${m.port}`);
    return parts.length > 0 ? parts.join(", ") : "any";
  }).join(" | ");
}

/**
 * The destinations of a route in one line, flagging clusters that cannot serve:
 * `outbound|reviews|v1 90%, outbound|reviews|v3 10% (unresolved: subset "v3" is not defined…)`.
 */
export function describeRouteDestinations(
  route: RouteConfig,
  clusters: ReadonlyMap<string, ClusterConfig>,
): string {
  if (route.redirect) {
    const r = route.redirect;
    const target = [
      r.scheme ? `${r.scheme}://` : "",
      r.authority ?? "",
      r.port !== undefined ? `:${r.port}` : "",
      r.uri ?? "",
    ].join("");
    return `redirect ${r.redirectCode} ${target || "(same URL)"}`;
  }
  return route.destinations.map((d) => {
    const c = clusters.get(d.cluster);
    const note = !c
      ? " (missing)"
      : c.unresolved
      ? ` (unresolved: ${c.unresolved})`
      : c.endpoints.length === 0
      ? " (no endpoints)"
      : "";
    return `${d.cluster} ${d.weight}%${note}`;
  }).join(", ");
}
