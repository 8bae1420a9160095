/**
 * @module
 * Host names of policy resources: two VirtualServices routing one host (in any spelling of
 * it) are a conflict reported on apply, naming both.
 */
import { assertEquals } from "../../tests/support/assert.ts";
import { virtualServiceConflicts } from "./hosts.ts";
import type { Resource } from "./kind.ts";
import { parseResources } from "./registry.ts";

/** Validated resources from JSON documents, as `weft apply` would store them. */
function resources(...docs: object[]): Resource[] {
  return parseResources(JSON.stringify(docs), "json");
}

function vs(name: string, spec: object): object {
  return { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name }, spec };
}

const reviewsSubsets = {
  apiVersion: "networking.istio.io/v1",
  kind: "DestinationRule",
  metadata: { name: "reviews" },
  spec: { host: "reviews", subsets: [{ name: "v1", labels: { version: "v1" } }] },
};

Deno.test("conflicting VirtualServices are reported naming both resources", () => {
  const existing = resources(
    vs("a", { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews" } }] }] }),
    reviewsSubsets,
  );
  const incoming = resources(
    vs("b", {
      hosts: ["ratings", "reviews.default.svc.cluster.local"],
      http: [{ route: [{ destination: { host: "reviews" } }] }],
    }),
  );
  assertEquals(virtualServiceConflicts(existing, incoming), [{
    path: "[doc 1] spec.hosts[1]",
    message: 'VirtualService default/a and default/b both route host "reviews"',
  }]);
  // Re-applying (or changing) the owner itself is not a conflict.
  const update = resources(
    vs("a", { hosts: ["reviews", "x"], http: [{ route: [{ destination: { host: "reviews" } }] }] }),
  );
  assertEquals(virtualServiceConflicts(existing, update), []);
  // Two incoming documents conflicting with each other.
  const both = resources(
    reviewsSubsets,
    vs("c", { hosts: ["*"], http: [{ route: [{ destination: { host: "reviews" } }] }] }),
    vs("d", { hosts: ["*"], http: [{ route: [{ destination: { host: "reviews" } }] }] }),
  );
  assertEquals(virtualServiceConflicts([], both), [{
    path: "[doc 3] spec.hosts[0]",
    message: 'VirtualService default/c and default/d both route host "*"',
  }]);
});
