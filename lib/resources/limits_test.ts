/**
 * @module
 * Each size limit of a resource: one at the limit validates, one past it is refused with the
 * limit, the field and the count given, and before its schema is parsed.
 */
import assert from "node:assert/strict";
import { RESOURCE_LIMITS, resourceLimitIssues, storeLimitIssue } from "./limits.ts";
import { parseResources, validateResource } from "./registry.ts";
import type { FieldIssue } from "../errors.ts";

const L = RESOURCE_LIMITS;

function envelope(kind: string, spec: unknown, labels: Record<string, string> = {}) {
  return {
    apiVersion: "networking.istio.io/v1",
    kind,
    metadata: { name: "big", namespace: "default", labels },
    spec,
  };
}

const hosts = (n: number) => Array.from({ length: n }, (_, i) => `h${i}.example.com`);

function serviceEntry(hostCount: number, endpointCount = 1) {
  return envelope("ServiceEntry", {
    hosts: hosts(hostCount),
    ports: [{ number: 80, protocol: "HTTP", name: "http" }],
    resolution: "STATIC",
    endpoints: Array.from({ length: endpointCount }, (_, i) => ({
      address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    })),
  });
}

const route = (matches: number) => ({
  ...(matches > 0
    ? { match: Array.from({ length: matches }, () => ({ uri: { prefix: "/" } })) }
    : {}),
  route: [{ destination: { host: "reviews" } }],
});

function virtualService(hostCount: number, routes: number, matches = 1) {
  return envelope("VirtualService", {
    hosts: hosts(hostCount),
    http: Array.from({ length: routes }, () => route(matches)),
  });
}

function destinationRule(subsets: number) {
  return envelope("DestinationRule", {
    host: "reviews",
    subsets: Array.from({ length: subsets }, (_, i) => ({ name: `s${i}`, labels: { v: `${i}` } })),
  });
}

function accepted(input: unknown): void {
  const r = validateResource(input);
  assert(!Array.isArray(r), `expected valid, got ${JSON.stringify(r)}`);
}

function refused(input: unknown, expected: FieldIssue): void {
  const r = validateResource(input);
  assert(Array.isArray(r), "the oversized resource was accepted");
  assert.deepEqual(r, [expected]);
}

Deno.test("limit: hosts per ServiceEntry and per VirtualService", () => {
  accepted(serviceEntry(L.hostsPerResource));
  refused(serviceEntry(200_000), {
    path: "spec.hosts",
    message: "at most 1000 hosts per resource, got 200000",
  });
  accepted(virtualService(L.hostsPerResource, 1));
  refused(virtualService(L.hostsPerResource + 1, 1), {
    path: "spec.hosts",
    message: "at most 1000 hosts per resource, got 1001",
  });
});

Deno.test("limit: endpoints per ServiceEntry", () => {
  accepted(serviceEntry(1, L.endpointsPerServiceEntry));
  refused(serviceEntry(1, L.endpointsPerServiceEntry + 1), {
    path: "spec.endpoints",
    message: "at most 1000 endpoints per ServiceEntry, got 1001",
  });
});

Deno.test("limit: ports per ServiceEntry", () => {
  const ports = (n: number) =>
    envelope("ServiceEntry", {
      hosts: ["a.example.com"],
      ports: Array.from({ length: n }, (_, i) => ({
        number: 1000 + i,
        protocol: "HTTP",
        name: `p${i}`,
      })),
    });
  accepted(ports(L.portsPerServiceEntry));
  refused(ports(L.portsPerServiceEntry + 1), {
    path: "spec.ports",
    message: "at most 100 ports per ServiceEntry, got 101",
  });
});

Deno.test("limit: http routes per VirtualService and matches per route", () => {
  accepted(virtualService(1, L.httpRoutesPerVirtualService));
  refused(virtualService(1, L.httpRoutesPerVirtualService + 1), {
    path: "spec.http",
    message: "at most 500 http routes per VirtualService, got 501",
  });
  accepted(virtualService(1, 2, L.matchesPerRoute));
  const vs = virtualService(1, 3, 1);
  (vs.spec as { http: unknown[] }).http[2] = route(L.matchesPerRoute + 1);
  refused(vs, { path: "spec.http[2].match", message: "at most 64 matches per route, got 65" });
});

Deno.test("limit: subsets per DestinationRule", () => {
  accepted(destinationRule(L.subsetsPerDestinationRule));
  refused(destinationRule(L.subsetsPerDestinationRule + 1), {
    path: "spec.subsets",
    message: "at most 256 subsets per DestinationRule, got 257",
  });
});

Deno.test("limit: bytes of one resource's JSON, counted in UTF-8", () => {
  const base = serviceEntry(1);
  const room = L.resourceJsonBytes -
    JSON.stringify(envelope("ServiceEntry", base.spec, { note: "" })).length;
  accepted(envelope("ServiceEntry", base.spec, { note: "x".repeat(room) }));
  refused(envelope("ServiceEntry", base.spec, { note: "x".repeat(room + 1) }), {
    path: "(document)",
    message: `at most 1048576 bytes of JSON per resource, got 1048577`,
  });
  // "é" is one UTF-16 unit but two UTF-8 bytes: half the characters already exceed it.
  const half = Math.ceil(room / 2) + 1;
  const r = validateResource(envelope("ServiceEntry", base.spec, { note: "é".repeat(half) }));
  assert(Array.isArray(r) && r[0].path === "(document)", JSON.stringify(r).slice(0, 200));
});

Deno.test("limit: an oversized resource is refused before its schema is parsed", () => {
  // Hosts that are not even strings: a schema parse would report 1001 type errors.
  const input = envelope("ServiceEntry", { hosts: Array(1001).fill(7) });
  assert.deepEqual(validateResource(input), [{
    path: "spec.hosts",
    message: "at most 1000 hosts per resource, got 1001",
  }]);
  // Through the input parser, the document is named too.
  assert.throws(
    () => parseResources(JSON.stringify(serviceEntry(200_000))),
    /^UserError: \[doc 1\] spec\.hosts: at most 1000 hosts per resource, got 200000$/,
  );
});

Deno.test("limit: smaller limits can be passed, and the store's count is one issue", () => {
  const small = { ...L, hostsPerResource: 2 };
  assert.equal(resourceLimitIssues(serviceEntry(2), small).length, 0);
  assert.equal(
    resourceLimitIssues(serviceEntry(3), small)[0].message,
    "at most 2 hosts per resource, got 3",
  );
  assert.equal(storeLimitIssue(L.storeResources), undefined);
  assert.deepEqual(storeLimitIssue(L.storeResources + 1), {
    path: "(store)",
    message: "at most 10000 resources in the store, got 10001",
  });
});
