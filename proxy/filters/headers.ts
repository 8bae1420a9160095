/**
 * @module
 * Header edits (Istio `headers.request` / `headers.response`, Envoy
 * `request_headers_to_add/remove`) as a plan applied while a head is copied: which existing
 * header lines to drop, and which lines to append. Per Istio, one `HeaderEdits` applies `set`
 * (replace), then `add` (append), then `remove`; a destination's edits apply after its route's.
 * Plans are composed once per (route, destination) and cached, so a request pays one name
 * comparison per header line and one string append.
 *
 * Framing and hop-by-hop headers (`content-length`, `transfer-encoding`, `connection`, `host`,
 * …) are never edited: the proxy owns them, and changing them would break message framing.
 * Values are stripped of CR and LF so no edit can inject a header line.
 */
import type {
  HeaderEdits,
  HeaderPolicy,
  HeaderValue,
  RouteConfig,
  WeightedCluster,
} from "../../lib/mod.ts";
import { type HeadLines, lineNamed } from "./request_view.ts";

/** The effect of a sequence of edits on one head. */
export interface HeaderPlan {
  /** Lower-case names whose existing lines are dropped. */
  readonly drop: readonly string[];
  /** Lines appended after the kept ones, in order. */
  readonly append: readonly HeaderValue[];
  /** `append` as raw `name: value\r\n` text, ready to write. */
  readonly appendText: string;
}

/** Names the proxy manages itself; edits to them are ignored. */
const PROTECTED = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
]);

function clean(value: string): string {
  return value.indexOf("\r") < 0 && value.indexOf("\n") < 0 ? value : value.replace(/[\r\n]/g, "");
}

/** Composes edits in order (each applied to the result of the previous ones). */
export function composeHeaderEdits(edits: readonly (HeaderEdits | undefined)[]): HeaderPlan {
  const drop = new Set<string>();
  let append: HeaderValue[] = [];
  for (const e of edits) {
    if (!e) continue;
    for (const { name, value } of e.set) {
      if (PROTECTED.has(name)) continue;
      drop.add(name);
      append = append.filter((h) => h.name !== name);
      append.push({ name, value: clean(value) });
    }
    for (const { name, value } of e.add) {
      if (!PROTECTED.has(name)) append.push({ name, value: clean(value) });
    }
    for (const name of e.remove) {
      if (PROTECTED.has(name)) continue;
      drop.add(name);
      append = append.filter((h) => h.name !== name);
    }
  }
  return {
    drop: [...drop],
    append,
    appendText: append.map((h) => `${h.name}: ${h.value}\r\n`).join(""),
  };
}

/** True when the plan changes nothing. */
export function emptyPlan(plan: HeaderPlan): boolean {
  return plan.drop.length === 0 && plan.append.length === 0;
}

/** True when header line `i` of `head` is dropped by `plan`. */
export function dropsLine(plan: HeaderPlan, head: HeadLines, i: number): boolean {
  const drop = plan.drop;
  for (let k = 0; k < drop.length; k++) if (lineNamed(head, i, drop[k])) return true;
  return false;
}

/** Applies a plan to a header list (for local replies, mirrors and tests). */
export function applyHeaderPlan(plan: HeaderPlan, headers: readonly HeaderValue[]): HeaderValue[] {
  const kept = headers.filter((h) => !plan.drop.includes(h.name.toLowerCase()));
  return [...kept, ...plan.append];
}

/** Request and response plans of one (route, destination). */
export interface RoutePlans {
  readonly request: HeaderPlan | null;
  readonly response: HeaderPlan | null;
}

const NO_PLANS: RoutePlans = { request: null, response: null };
const byRoute = new WeakMap<RouteConfig, RoutePlans>();
const byDestination = new WeakMap<WeightedCluster, RoutePlans>();

function plansOf(policies: readonly (HeaderPolicy | undefined)[]): RoutePlans {
  const request = composeHeaderEdits(policies.map((p) => p?.request));
  const response = composeHeaderEdits(policies.map((p) => p?.response));
  return {
    request: emptyPlan(request) ? null : request,
    response: emptyPlan(response) ? null : response,
  };
}

/**
 * The header plans of a route and the destination picked for it (the route's edits, then the
 * destination's), cached by the snapshot's immutable objects.
 */
export function routeHeaderPlans(
  route: RouteConfig,
  destination: WeightedCluster | undefined,
): RoutePlans {
  if (destination?.headers) {
    let plans = byDestination.get(destination);
    if (!plans) {
      plans = plansOf([route.headers, destination.headers]);
      byDestination.set(destination, plans);
    }
    return plans;
  }
  if (!route.headers) return NO_PLANS;
  let plans = byRoute.get(route);
  if (!plans) {
    plans = plansOf([route.headers]);
    byRoute.set(route, plans);
  }
  return plans;
}
