/**
 * @module
 * Hosts boot in any order: an agent started before its seed logs one clear error, keeps
 * retrying with backoff, and joins once the seed comes up.
 */
import { assertEquals, eventually } from "./support/assert.ts";
import { type AgentProcess, startAgent } from "./support/agent_process.ts";
import { freePort } from "./support/sockets.ts";

Deno.test("an agent started before its seed joins when the seed comes up", async () => {
  const root = await Deno.makeTempDir({ prefix: "weft-join-" });
  const seedAddr = `127.0.0.1:${freePort()}`;
  const agents: AgentProcess[] = [];
  try {
    const early = await startAgent({
      name: "early",
      dataDir: `${root}/early`,
      join: [seedAddr],
      args: ["--gossip-profile", "local"],
    });
    agents.push(early);
    await eventually(
      "the failed join is logged once as an error",
      () => early.logs.some((l) => l.level === "error" && String(l.msg).includes("join failed")),
      10_000,
    );
    const seed = await startAgent({
      name: "seed",
      dataDir: `${root}/seed`,
      gossipAddr: seedAddr,
      args: ["--gossip-profile", "local"],
    });
    agents.push(seed);
    await eventually("early joins the seed", async () => {
      const m = await early.get<{ members: { name: string; state: string }[] }>("/v1/members");
      return m.members.filter((x) => x.state === "alive").length === 2;
    }, 30_000);
    assertEquals(early.logs.filter((l) => l.level === "error").length, 1);
  } finally {
    await Promise.all(agents.map((a) => a.kill()));
    await Deno.remove(root, { recursive: true });
  }
});
