/**
 * @module
 * A graceful stop with real `weft agent` processes: the stopped agent exits 0 and the others
 * see it as `left` quickly, with no failure detection involved.
 */
import { assertEquals, eventually } from "./support/assert.ts";
import { startAgentCluster, stateOf } from "./support/agent_cluster.ts";

Deno.test("a gracefully stopped agent is seen as left by the others", async () => {
  const cluster = await startAgentCluster(4, "leave");
  const { agents } = cluster;
  try {
    // Graceful stop of n3: others see "left" quickly (no failure detection needed).
    assertEquals(await agents[3].stop(), 0);
    await Promise.all(
      agents.slice(0, 3).map((a) =>
        eventually(
          `${a.name} sees n3 left`,
          async () => (await stateOf(a, "n3")) === "left",
          10_000,
          50,
        )
      ),
    );
  } finally {
    await cluster.stop();
  }
});
