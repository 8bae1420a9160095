/**
 * @module
 * The agent's gossip options: the advertised host takes the gossip flag's port (0 included).
 */
import { assertEquals } from "../tests/support/assert.ts";
import { parseNodeConfig } from "../lib/config.ts";
import { silentLogger } from "../lib/log.ts";
import { Registry } from "../lib/metrics.ts";
import { gossipConfigFor } from "./config.ts";
import { gossipNodeOptionsFor } from "./node_options.ts";

const parts = (port: number) => ({
  nodeId: "id-a",
  bindAddr: { hostname: "0.0.0.0", port },
  logger: silentLogger,
  metrics: new Registry(),
});

Deno.test("without --advertise-addr membership derives the advertised address itself", () => {
  const c = parseNodeConfig({ name: "a" });
  const o = gossipNodeOptionsFor(c, parts(7946));
  assertEquals(o.advertise, undefined);
  assertEquals([o.name, o.nodeId, o.config], ["a", "id-a", gossipConfigFor(c.gossip)]);
  assertEquals(o.metadata, { inboundAddr: "", adminAddr: "", services: [] });
});

Deno.test("--advertise-addr takes the gossip flag's port, 0 standing for the bound one", () => {
  const c = parseNodeConfig({ name: "a", advertiseAddr: "10.0.0.5" });
  assertEquals(gossipNodeOptionsFor(c, parts(7946)).advertise, {
    hostname: "10.0.0.5",
    port: 7946,
  });
  assertEquals(gossipNodeOptionsFor(c, parts(0)).advertise, { hostname: "10.0.0.5", port: 0 });
});
