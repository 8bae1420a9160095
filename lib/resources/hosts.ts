/**
 * @module
 * What the host names of policy resources mean, and the apply-time check built on it: two
 * VirtualServices may not route one host. Shared by validation (`lib/admin`, on apply) and
 * the compiler (`lib/compile/routes.ts`, which resolves conflicts that still arrive), so both
 * read a host the same way.
 */
import type { Resource } from "./kind.ts";
import type { VirtualServiceSpec } from "./virtual_service.ts";

/** `namespace/name` of a resource, as warnings and conflicts name it. */
export function resourceId(r: Resource): string {
  return `${r.metadata.namespace}/${r.metadata.name}`;
}

/** Orders resources by `namespace/name`, so every node takes them in the same order. */
export function byResourceId(a: Resource, b: Resource): number {
  const ka = resourceId(a);
  const kb = resourceId(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

const K8S_SERVICE_NAME =
  /^([a-z0-9]([a-z0-9-]*[a-z0-9])?)\.[a-z0-9]([a-z0-9-]*[a-z0-9])?\.svc(\..+)?$/;

/**
 * The Weft service a host name means: lower-cased, and `NAME.NAMESPACE.svc[.DOMAIN]` reduced
 * to `NAME` (Weft has no namespaces for services). Other names, wildcards included, are kept.
 */
export function canonicalHost(host: string): string {
  const lower = host.toLowerCase();
  const m = K8S_SERVICE_NAME.exec(lower);
  return m ? m[1] : lower;
}

/** One VirtualService claiming a host key, with where it says so. */
export interface HostClaim {
  id: string;
  host: string;
  index: number;
}

/**
 * The host keys a VirtualService claims ({@linkcode canonicalHost} of each of its hosts),
 * each with the first host written for it.
 */
export function hostClaims(r: Resource): Map<string, HostClaim> {
  const claims = new Map<string, HostClaim>();
  const spec = r.spec as VirtualServiceSpec;
  spec.hosts.forEach((host, index) => {
    const key = canonicalHost(host);
    if (!claims.has(key)) claims.set(key, { id: resourceId(r), host, index });
  });
  return claims;
}

/**
 * Problems an apply of `incoming` would cause: a host (after {@linkcode canonicalHost}, so
 * `reviews` and `reviews.default.svc.cluster.local` are one host) routed by two
 * VirtualServices. `existing` is the store's current content (any kinds); an incoming
 * resource replaces an existing one with the same namespace and name. Only conflicts that
 * involve an incoming resource are reported, with the path of its host
 * (`[doc N] spec.hosts[i]`, N counting `incoming` from 1) and a message naming both:
 * `VirtualService default/a and default/b both route host "reviews"`.
 */
export function virtualServiceConflicts(
  existing: readonly Resource[],
  incoming: readonly Resource[],
): { path: string; message: string }[] {
  const incomingIds = new Set(
    incoming.filter((r) => r.kind === "VirtualService").map(resourceId),
  );
  const owners = new Map<string, string>();
  for (const r of [...existing].filter((x) => x.kind === "VirtualService").sort(byResourceId)) {
    const id = resourceId(r);
    if (incomingIds.has(id)) continue; // replaced by the incoming version
    for (const key of hostClaims(r).keys()) if (!owners.has(key)) owners.set(key, id);
  }
  const issues: { path: string; message: string }[] = [];
  incoming.forEach((r, doc) => {
    if (r.kind !== "VirtualService") return;
    for (const [key, claim] of hostClaims(r)) {
      const owner = owners.get(key);
      if (owner !== undefined && owner !== claim.id) {
        const [a, b] = [owner, claim.id].sort();
        issues.push({
          path: `[doc ${doc + 1}] spec.hosts[${claim.index}]`,
          message: `VirtualService ${a} and ${b} both route host "${key}"`,
        });
      } else owners.set(key, claim.id);
    }
  });
  return issues;
}
