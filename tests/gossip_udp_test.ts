/**
 * @module
 * Three GossipNodes on real UDP/TCP sockets on 127.0.0.1 (port 0): join, crash detection within
 * the bound a fast config implies, graceful leave.
 */
import { assert, assertEquals, eventually } from "./support/assert.ts";
import { defaultLocalConfig, type GossipConfig, GossipNode } from "../gossip/mod.ts";
import { formatHostPort } from "../lib/address.ts";
import { silentLogger } from "../lib/log.ts";
import { Registry } from "../lib/metrics.ts";

const fast: GossipConfig = {
  ...defaultLocalConfig(),
  probeIntervalMs: 100,
  probeTimeoutMs: 40,
  suspicionMult: 3,
  gossipIntervalMs: 30,
  pushPullIntervalMs: 2000,
  rejoinIntervalMs: 2000,
  tcpTimeoutMs: 500,
};

async function startNode(name: string): Promise<GossipNode> {
  const node = await GossipNode.create({
    config: fast,
    name,
    nodeId: `id-${name}-${crypto.randomUUID()}`,
    bindAddr: { hostname: "127.0.0.1", port: 0 },
    metadata: {
      inboundAddr: "127.0.0.1:1",
      adminAddr: "127.0.0.1:2",
      services: [{ name: `svc-${name}`, port: 80, protocol: "http", labels: {}, healthy: true }],
    },
    logger: silentLogger,
    metrics: new Registry(),
  });
  node.start();
  return node;
}

function stateIn(node: GossipNode, name: string): string | undefined {
  return node.members().find((m) => m.name === name)?.state;
}

Deno.test("real UDP: join, crash detected as dead within the bound, leave seen as left", async () => {
  const nodes = [
    await startNode("a"),
    await startNode("b"),
    await startNode("c"),
    await startNode("d"),
  ];
  const stopped = new Set<GossipNode>();
  try {
    assert(nodes[0].localAddr().port > 0, "port 0 resolves to the bound port");
    const seed = formatHostPort(nodes[0].localAddr());
    for (const n of nodes.slice(1)) assertEquals(await n.join([seed]), 1);
    await eventually(
      "all see all",
      () => nodes.every((n) => n.members().filter((m) => m.state === "alive").length === 4),
      5000,
    );
    assertEquals(nodes[1].catalog().map((e) => e.service).sort(), [
      "svc-a",
      "svc-b",
      "svc-c",
      "svc-d",
    ]);

    // Crash d (stop without leaving). Bound: a probe round over 3 peers + one period + the
    // max suspicion timeout (6 * 3 * 100 ms), with slack for a loaded machine.
    const started = performance.now();
    await nodes[3].stop();
    stopped.add(nodes[3]);
    const bound = 4 * fast.probeIntervalMs +
      fast.suspicionMaxTimeoutMult * fast.suspicionMult * fast.probeIntervalMs;
    await eventually(
      "d dead everywhere",
      () => nodes.slice(0, 3).every((n) => stateIn(n, "d") === "dead"),
      bound + 2000,
    );
    const took = performance.now() - started;
    assert(took < bound + 2000, `detection took ${took.toFixed(0)} ms (bound ${bound} ms)`);

    await nodes[2].leave(1000);
    await nodes[2].stop();
    stopped.add(nodes[2]);
    await eventually(
      "c left",
      () => nodes.slice(0, 2).every((n) => stateIn(n, "c") === "left"),
      3000,
    );
  } finally {
    for (const n of nodes) if (!stopped.has(n)) await n.stop();
  }
});

Deno.test("real UDP: join fails with a clear error when no seed answers", async () => {
  const n = await startNode("lonely");
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  try {
    let msg = "";
    try {
      await n.join([`127.0.0.1:${deadPort}`]);
    } catch (err) {
      msg = (err as Error).message;
    }
    assert(msg.includes("no seed answered") && msg.includes(`127.0.0.1:${deadPort}`), msg);
  } finally {
    await n.stop();
  }
});
