/**
 * @module
 * Failure detection with real `weft agent` processes: after a `kill -9` of one of five agents,
 * every survivor marks it dead within the bound the gossip config implies, and its service
 * leaves the catalog, so the proxy stops routing to it.
 */
import { assert, eventually } from "./support/assert.ts";
import { startAgentCluster, stateOf } from "./support/agent_cluster.ts";
import { rawRequest } from "./support/demo.ts";
import { defaultLocalConfig } from "../gossip/mod.ts";
import { suspicionTimeoutMs } from "../gossip/suspicion.ts";

Deno.test("five agents: a kill -9 is seen as dead by every survivor within the bound", async () => {
  const n = 5;
  const cluster = await startAgentCluster(n, "crash");
  const { agents } = cluster;
  try {
    const viaN0 = () =>
      rawRequest(agents[0].outbound.hostname, agents[0].outbound.port, "GET", "/", {
        host: "svc4",
      });
    await eventually("svc4 routable from n0", async () => (await viaN0()).status === 200, 10_000);

    // kill -9 of n4: every survivor marks it dead within the configured bound.
    const cfg = defaultLocalConfig();
    const minSuspicion = suspicionTimeoutMs(cfg.suspicionMult, n, cfg.probeIntervalMs);
    // Worst case: every survivor probes n4 last in its round (n periods), the suspicion runs
    // its full unconfirmed length, then one gossip round carries the verdict; plus slack for a
    // loaded 2-core machine. Real processes on real time: this bound is the contract itself.
    const boundMs = n * cfg.probeIntervalMs + cfg.suspicionMaxTimeoutMult * minSuspicion + 3000;
    const killedAt = performance.now();
    await agents[4].kill();
    const survivors = agents.slice(0, 4);
    await Promise.all(
      survivors.map((a) =>
        eventually(
          `${a.name} sees n4 dead`,
          async () => (await stateOf(a, "n4")) === "dead",
          boundMs,
          50,
        )
      ),
    );
    const detectedMs = performance.now() - killedAt;
    assert(detectedMs < boundMs, `detected after ${detectedMs} ms, bound ${boundMs} ms`);
    // A dead node's service leaves the catalog, so the proxy stops routing to it.
    await eventually("svc4 gone from n0", async () => {
      const r = await viaN0();
      return r.status === 404 || r.status === 503;
    }, 5000);
  } finally {
    await cluster.stop();
  }
});
