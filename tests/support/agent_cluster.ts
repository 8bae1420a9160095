/**
 * @module
 * A cluster of real `weft agent` processes on loopback for the multi-process scenarios: agent
 * `n0` is the seed, the others join through it, agent `ni` runs the demo service `svci`
 * (instance `svci-ni`), and {@linkcode startAgentCluster} returns once every agent sees every
 * other alive. Each scenario file starts its own cluster (ports 0), so the files run in
 * parallel; `stop` ends every agent and service it started.
 */
import { eventually } from "./assert.ts";
import { type AgentProcess, startAgent } from "./agent_process.ts";
import { serveDemoService } from "../../demo/upstream.ts";

/** The `/v1/members` view of an agent. */
export interface Members {
  members: { name: string; state: string; incarnation: number; services: { name: string }[] }[];
}

/** The state `observer` reports for member `name` (undefined when it does not list it). */
export async function stateOf(observer: AgentProcess, name: string): Promise<string | undefined> {
  const m = await observer.get<Members>("/v1/members");
  return m.members.find((x) => x.name === name)?.state;
}

export interface AgentCluster {
  /** Agents `n0` (the seed) to `n{size-1}`. */
  agents: AgentProcess[];
  /** Kills every agent still running, stops the services and removes the data directories. */
  stop(): Promise<void>;
}

/**
 * Starts `size` agents with the `local` gossip profile, `ni` serving `svci` (version `v1` on
 * the seed, `vi` elsewhere), and waits until each sees `size` alive members.
 */
export async function startAgentCluster(size: number, prefix: string): Promise<AgentCluster> {
  const root = await Deno.makeTempDir({ prefix: `weft-${prefix}-` });
  const services = Array.from(
    { length: size },
    (_, i) => serveDemoService(`svc${i}`, `svc${i}-n${i}`, "v1", 0),
  );
  const agents: AgentProcess[] = [];
  const stop = async () => {
    await Promise.all(agents.map((a) => a.kill()));
    await Promise.all(services.map((s) => s.shutdown()));
    await Deno.remove(root, { recursive: true });
  };
  try {
    const args = ["--gossip-profile", "local"];
    agents.push(
      await startAgent({
        name: "n0",
        dataDir: `${root}/n0`,
        services: [`svc0=${services[0].addr.port}`],
        args,
      }),
    );
    const seed = agents[0].gossip!;
    agents.push(
      ...await Promise.all(
        Array.from({ length: size - 1 }, (_, k) => k + 1).map((i) =>
          startAgent({
            name: `n${i}`,
            dataDir: `${root}/n${i}`,
            services: [`svc${i}=${services[i].addr.port},version=v${i}`],
            join: [seed],
            args,
          })
        ),
      ),
    );
    for (const a of agents) {
      await eventually(`${a.name} sees ${size} alive members`, async () => {
        const m = await a.get<Members>("/v1/members");
        return m.members.filter((x) => x.state === "alive").length === size;
      }, 30_000);
    }
    return { agents, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
