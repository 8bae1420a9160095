/**
 * @module
 * A node's snapshot inputs: read live at each compile (a reloaded config, a new catalog),
 * numbered in order, with health verdicts of local services carried into the compile.
 */
import { assertEquals } from "../tests/support/assert.ts";
import { type CatalogEndpoint, type NodeConfig, parseNodeConfig } from "./mod.ts";
import { NodeSnapshots, type PolicyKind } from "./node_snapshot.ts";

function sources() {
  const state = {
    config: parseNodeConfig({
      name: "a",
      services: [{ name: "web", port: 9080 }],
    }) as NodeConfig,
    catalog: [] as CatalogEndpoint[],
    asked: [] as PolicyKind[],
  };
  const snapshots = new NodeSnapshots({
    config: () => state.config,
    catalog: () => state.catalog,
    resources: (kind) => {
      state.asked.push(kind);
      return [];
    },
  });
  return { state, snapshots };
}

Deno.test("each compile takes the next version", () => {
  const { snapshots } = sources();
  assertEquals([snapshots.next().version, snapshots.next().version], [1, 2]);
});

Deno.test("the config, catalog and store are read at every compile", () => {
  const { state, snapshots } = sources();
  assertEquals(snapshots.input().nodeName, "a");
  assertEquals(state.asked, ["ServiceEntry", "VirtualService", "DestinationRule"]);
  state.config = parseNodeConfig({ name: "b", services: [] });
  const remote: CatalogEndpoint = {
    service: "api",
    node: "c",
    nodeId: "id-c",
    hostname: "10.0.0.3",
    port: 15006,
    protocol: "http",
    labels: {},
    healthy: true,
  };
  state.catalog = [remote];
  const input = snapshots.input();
  assertEquals(input.nodeName, "b");
  assertEquals(input.localServices, []);
  assertEquals(input.catalog, [remote]);
  assertEquals(input.tuning, state.config.proxy);
});

Deno.test("a failing health check takes the local endpoint out of balancing until it passes", () => {
  const { snapshots } = sources();
  const localHealthy = () =>
    snapshots.next().clusters.get("outbound|web")?.endpoints.map((e) => e.healthy);
  assertEquals(localHealthy(), [true]);
  snapshots.noteHealth("web", false);
  assertEquals([...snapshots.unhealthyLocalServices], ["web"]);
  assertEquals(localHealthy(), [false]);
  snapshots.noteHealth("web", true);
  assertEquals([...snapshots.unhealthyLocalServices], []);
  assertEquals(localHealthy(), [true]);
});
