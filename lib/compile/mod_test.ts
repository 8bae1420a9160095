/**
 * @module
 * The snapshot compiler's own part: local instances and the gossip catalog become clusters
 * and default routes, deterministically; the result is read-only and the inputs untouched.
 */
import { assert, assertEquals } from "../../tests/support/assert.ts";
import { parseNodeConfig } from "../config.ts";
import type { CatalogEndpoint } from "../snapshot.ts";
import { compileSnapshot, type SnapshotInput } from "./mod.ts";

const tuning = parseNodeConfig({}).proxy;

function input(over: Partial<SnapshotInput> = {}): SnapshotInput {
  return {
    nodeName: "a",
    localServices: [{ name: "web", port: 9080, host: "127.0.0.1", protocol: "http", labels: {} }],
    catalog: [],
    tuning,
    ...over,
  };
}

const remote: CatalogEndpoint = {
  service: "web",
  node: "b",
  nodeId: "id-b",
  hostname: "10.0.0.2",
  port: 15006,
  protocol: "http",
  labels: { version: "v2" },
  healthy: true,
};

Deno.test("local instances are direct, remote ones go through the owner's inbound listener", () => {
  const snap = compileSnapshot(input({ catalog: [remote, { ...remote, node: "a" }] }), 3);
  assertEquals(snap.version, 3);
  const eps = snap.clusters.get("outbound|web")!.endpoints;
  assertEquals(eps.map((e) => [e.key, e.node, e.viaInbound]), [
    ["10.0.0.2:15006", "b", true],
    ["127.0.0.1:9080", "a", false],
  ]);
  assertEquals(snap.inbound.get("web")!.endpoints.map((e) => e.key), ["127.0.0.1:9080"]);
  assert(Object.isFrozen(snap.clusters.get("outbound|web")));
});

Deno.test("a local service failing its health check is an unhealthy endpoint", () => {
  const snap = compileSnapshot(
    input({ catalog: [remote], unhealthyLocalServices: new Set(["web"]) }),
    1,
  );
  const byNode = Object.fromEntries(
    snap.clusters.get("outbound|web")!.endpoints.map((e) => [e.node, e.healthy]),
  );
  assertEquals(byNode, { a: false, b: true });
});

Deno.test("compiling is deterministic: same input, same routing table", () => {
  const a = compileSnapshot(input({ catalog: [remote] }), 1);
  const b = compileSnapshot(input({ catalog: [remote] }), 1);
  assertEquals([...a.clusters.keys()], [...b.clusters.keys()]);
  assertEquals([...a.outbound.keys()], [...b.outbound.keys()]);
  assertEquals(a.clusters.get("outbound|web"), b.clusters.get("outbound|web"));
});
