/**
 * @module
 * How much one policy resource and the whole store may hold. A resource over a limit is
 * refused at validation (the admin API answers 400, replication drops it, a restart
 * quarantines it) with the limit, the field and the value given, e.g.
 * `spec.hosts: at most 1000 hosts per resource, got 200000`. The checks read the raw,
 * not yet parsed input and count before anything else looks at it, so an oversized object
 * costs one pass over its top-level arrays and one serialisation, never a schema parse.
 * The defaults and the reason for each are in docs/policy.md ("Limits").
 */
import type { FieldIssue } from "../errors.ts";

/** The limits; every node must use the same ones, so they are constants, not config. */
export const RESOURCE_LIMITS = {
  /**
   * `spec.hosts` of a ServiceEntry or VirtualService. A resource names one service's
   * aliases; a thousand is far past hand-written policy and keeps one resource's compile in
   * the low milliseconds.
   */
  hostsPerResource: 1000,
  /**
   * `spec.ports` of a ServiceEntry. Each host gets a cluster per port, so hosts x ports is
   * what a resource compiles to; Kubernetes Services rarely declare more than a few.
   */
  portsPerServiceEntry: 100,
  /** `spec.endpoints` of a ServiceEntry: Kubernetes' cap for one EndpointSlice. */
  endpointsPerServiceEntry: 1000,
  /**
   * `spec.http` of a VirtualService. The router tries routes in order on every request, so
   * a long list is paid per request, not only per compile.
   */
  httpRoutesPerVirtualService: 500,
  /** `spec.http[i].match` of a VirtualService (alternatives, also tried per request). */
  matchesPerRoute: 64,
  /** `spec.subsets` of a DestinationRule; each subset is a cluster per port of the host. */
  subsetsPerDestinationRule: 256,
  /**
   * The resource as JSON (UTF-8 bytes). Kubernetes keeps objects under etcd's 1.5 MiB
   * request limit; 1 MiB leaves room and bounds what every node stores and replicates.
   */
  resourceJsonBytes: 1024 * 1024,
  /**
   * Live resources in the store (tombstones not counted). Large Istio meshes run a few
   * thousand ServiceEntries; 10,000 leaves headroom while bounding a node's start and
   * a full sync.
   */
  storeResources: 10_000,
} as const;

/** The limits' shape, so tests and the store can pass smaller ones. */
export type ResourceLimits = { readonly [K in keyof typeof RESOURCE_LIMITS]: number };

type Counted = { path: string; limit: keyof ResourceLimits; what: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function countIssue(
  value: unknown,
  c: Counted,
  limits: ResourceLimits,
  issues: FieldIssue[],
): void {
  if (!Array.isArray(value)) return;
  const max = limits[c.limit];
  if (value.length > max) {
    issues.push({ path: c.path, message: `at most ${max} ${c.what}, got ${value.length}` });
  }
}

const utf8 = new TextEncoder();

/**
 * UTF-8 bytes of `value` as JSON, which the limit `resourceJsonBytes` counts; `undefined`
 * when it is surely at most `max` (each UTF-16 unit is 1 to 3 UTF-8 bytes, so short text
 * needs no encoding).
 */
function jsonBytesOver(value: unknown, max: number): number | undefined {
  const text = JSON.stringify(value) ?? "";
  if (text.length * 3 <= max) return undefined;
  const bytes = utf8.encode(text).length;
  return bytes > max ? bytes : undefined;
}

/**
 * The limits a raw resource object (`{apiVersion, kind, metadata, spec}`, not yet validated)
 * exceeds; empty when within them. Paths are from the document (`spec.hosts`).
 */
export function resourceLimitIssues(
  input: unknown,
  limits: ResourceLimits = RESOURCE_LIMITS,
): FieldIssue[] {
  const issues: FieldIssue[] = [];
  if (!isRecord(input)) return issues;
  const spec = input.spec;
  if (isRecord(spec)) {
    const kind = input.kind;
    if (kind === "ServiceEntry" || kind === "VirtualService") {
      countIssue(
        spec.hosts,
        {
          path: "spec.hosts",
          limit: "hostsPerResource",
          what: "hosts per resource",
        },
        limits,
        issues,
      );
    }
    if (kind === "ServiceEntry") {
      countIssue(
        spec.ports,
        {
          path: "spec.ports",
          limit: "portsPerServiceEntry",
          what: "ports per ServiceEntry",
        },
        limits,
        issues,
      );
      countIssue(
        spec.endpoints,
        {
          path: "spec.endpoints",
          limit: "endpointsPerServiceEntry",
          what: "endpoints per ServiceEntry",
        },
        limits,
        issues,
      );
    }
    if (kind === "VirtualService") {
      countIssue(
        spec.http,
        {
          path: "spec.http",
          limit: "httpRoutesPerVirtualService",
          what: "http routes per VirtualService",
        },
        limits,
        issues,
      );
      if (Array.isArray(spec.http) && spec.http.length <= limits.httpRoutesPerVirtualService) {
        spec.http.forEach((route, i) => {
          if (!isRecord(route)) return;
          countIssue(
            route.match,
            {
              path: `spec.http[${i}].match`,
              limit: "matchesPerRoute",
              what: "matches per route",
            },
            limits,
            issues,
          );
        });
      }
    }
    if (kind === "DestinationRule") {
      countIssue(
        spec.subsets,
        {
          path: "spec.subsets",
          limit: "subsetsPerDestinationRule",
          what: "subsets per DestinationRule",
        },
        limits,
        issues,
      );
    }
  }
  if (issues.length === 0) {
    const max = limits.resourceJsonBytes;
    const bytes = jsonBytesOver(input, max);
    if (bytes !== undefined) {
      issues.push({
        path: "(document)",
        message: `at most ${max} bytes of JSON per resource, got ${bytes}`,
      });
    }
  }
  return issues;
}

/** The issue of a store that would hold more than `storeResources` live resources. */
export function storeLimitIssue(
  count: number,
  limits: ResourceLimits = RESOURCE_LIMITS,
): FieldIssue | undefined {
  const max = limits.storeResources;
  return count > max
    ? { path: "(store)", message: `at most ${max} resources in the store, got ${count}` }
    : undefined;
}
