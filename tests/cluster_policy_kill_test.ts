/**
 * @module
 * Durability of the replicated policy store, with two real agents: `kill -9` right after
 * acknowledged writes loses none of them, nor a resource the node had received from its peer
 * before. Has its own cluster, so it runs in parallel with the other cluster_policy_* files.
 */
import { assertEquals, eventually } from "./support/assert.ts";
import { labelOf, post, serviceEntry, startPolicyCluster } from "./support/policy_agents.ts";

/** The entries' endpoint port: nothing is sent to it here, only the store is read. */
const unusedPort = 9;

Deno.test("writes acknowledged before a kill -9 survive the restart", async () => {
  const cluster = await startPolicyCluster(2, "policy-kill");
  const { agents } = cluster;
  try {
    // Earlier state that p1 holds by replication, written on p0.
    const second = await post(agents[0], serviceEntry("second", unusedPort, "two"));
    assertEquals(second.status, 200);
    await second.body?.cancel();
    await eventually("p1 has second", async () => (await labelOf(agents[1], "second")) === "two");

    // kill -9 right after acknowledged writes: they survive the restart.
    const names = ["k1", "k2", "k3", "k4", "k5"];
    for (const n of names) {
      const r = await post(agents[1], serviceEntry(n, unusedPort, n));
      assertEquals(r.status, 200);
      await r.body?.cancel();
    }
    await agents[1].kill();
    // Restarted alone (no --join), so what it has comes from its own disk, not from peers. p0
    // is stopped too, so nothing could reach the restarted node even if it tried.
    await agents[0].kill();
    await cluster.restart(1);
    for (const n of names) assertEquals(await labelOf(agents[1], n), n, `${n} survived kill -9`);
    assertEquals(await labelOf(agents[1], "second"), "two", "earlier state kept");
  } finally {
    await cluster.stop();
  }
});
