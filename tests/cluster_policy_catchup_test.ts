/**
 * @module
 * The replicated policy store across a graceful restart, with three real agents: changes made
 * while one node is stopped (a create and a delete, on two different nodes) reach it after it
 * restarts and rejoins, and it kept what it had before. Has its own cluster, so it runs in
 * parallel with the other cluster_policy_* files.
 */
import { assertEquals } from "./support/assert.ts";
import {
  converged,
  labelOf,
  post,
  serviceEntry,
  startPolicyCluster,
} from "./support/policy_agents.ts";

/** The entries' endpoint port: nothing is sent to it here, only the store is compared. */
const unusedPort = 9;

Deno.test("a stopped agent catches up on creates and deletes after it restarts", async () => {
  const cluster = await startPolicyCluster(3, "policy-catchup");
  const { agents } = cluster;
  try {
    // State every node has before p2 stops: the delete below must reach p2 as a delete.
    const ext = await post(agents[0], serviceEntry("ext", unusedPort, "one"));
    assertEquals(ext.status, 200);
    await ext.body?.cancel();
    await converged(agents);
    assertEquals(await labelOf(agents[2], "ext"), "one");

    // p2 stops; changes happen meanwhile; it converges after restart and kept its state.
    assertEquals(await agents[2].stop(), 0);
    const second = await post(agents[0], serviceEntry("second", unusedPort, "two"));
    assertEquals(second.status, 200);
    await second.body?.cancel();
    const del = await fetch(`http://${agents[1].admin}/v1/resources/ServiceEntry/default/ext`, {
      method: "DELETE",
    });
    assertEquals(del.status, 200);
    await del.body?.cancel();
    await cluster.restart(2, cluster.seed);
    await converged(agents, 20_000);
    assertEquals(await labelOf(agents[2], "second"), "two");
    assertEquals(await labelOf(agents[2], "ext"), undefined, "delete propagated to the late node");
  } finally {
    await cluster.stop();
  }
});
