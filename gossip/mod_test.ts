/**
 * @module
 * GossipNode.create: which address a node advertises, given the bound transport and the
 * advertise option.
 */
import { assertEquals, assertNotEquals } from "../tests/support/assert.ts";
import { silentLogger } from "../lib/log.ts";
import { Registry } from "../lib/metrics.ts";
import { defaultLocalConfig, GossipNode, type GossipNodeOptions } from "./mod.ts";

function options(advertise: GossipNodeOptions["advertise"]): GossipNodeOptions {
  return {
    config: defaultLocalConfig(),
    name: "n1",
    nodeId: crypto.randomUUID(),
    bindAddr: { hostname: "127.0.0.1", port: 0 },
    advertise,
    metadata: { inboundAddr: "", adminAddr: "", services: [] },
    logger: silentLogger,
    metrics: new Registry(),
  };
}

Deno.test("an advertised host with port 0 advertises the port the transport bound", async () => {
  const node = await GossipNode.create(options({ hostname: "127.0.0.2", port: 0 }));
  try {
    const bound = node.localAddr().port;
    assertNotEquals(bound, 0);
    assertEquals(node.advertiseAddr(), { hostname: "127.0.0.2", port: bound });
    assertEquals(node.self().address, `127.0.0.2:${bound}`);
    assertEquals(node.self().metadata.gossipAddr, `127.0.0.2:${bound}`);
  } finally {
    await node.stop();
  }
});

Deno.test("an advertised address with a port keeps that port", async () => {
  const node = await GossipNode.create(options({ hostname: "10.0.0.9", port: 7000 }));
  try {
    assertEquals(node.self().address, "10.0.0.9:7000");
  } finally {
    await node.stop();
  }
});
