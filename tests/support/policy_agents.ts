/**
 * @module
 * Shared setup of the replicated-policy scenarios (tests/cluster_policy_*_test.ts): a small
 * cluster of real `weft agent` processes named `p0`..`p{n-1}` (ports 0, `p0` the seed, no
 * services of their own), a ServiceEntry manifest to write, and the admin calls the scenarios
 * make on the policy store. Each scenario file starts its own cluster, so the files run in
 * parallel; `stop` ends every agent the cluster started, restarted ones included.
 */
import { eventually } from "./assert.ts";
import { type AgentProcess, startAgent } from "./agent_process.ts";

/** The `/v1/store` view of an agent: a digest of every resource, and how many there are. */
interface StoreView {
  digest: string;
  count: number;
}

/** A ServiceEntry `name` for host `name.example` on 127.0.0.1:`port`, labelled `v: version`. */
export function serviceEntry(name: string, port: number, version: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}
  namespace: default
  labels: { v: "${version}" }
spec:
  hosts: [${name}.example]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 127.0.0.1, ports: { http: ${port} } }]
`;
}

/** POSTs `body` to the agent's resource API; the caller reads or cancels the body. */
export async function post(
  a: AgentProcess,
  body: string,
  type = "application/yaml",
): Promise<Response> {
  return await fetch(`http://${a.admin}/v1/resources`, {
    method: "POST",
    body,
    headers: { "content-type": type },
  });
}

/** The digest of the agent's whole policy store. */
export async function digest(a: AgentProcess): Promise<string> {
  return (await a.get<StoreView>("/v1/store")).digest;
}

/** Polls until every agent's store has the same digest; returns it. */
export async function converged(agents: AgentProcess[], timeoutMs = 20_000): Promise<string> {
  return await eventually(
    "all stores converge",
    async () => {
      const ds = await Promise.all(agents.map(digest));
      return ds.every((d) => d === ds[0]) ? ds[0] : undefined;
    },
    timeoutMs,
    50,
  );
}

/** The `v` label of ServiceEntry `name` on the agent, or undefined when it has none. */
export async function labelOf(a: AgentProcess, name: string): Promise<string | undefined> {
  const r = await fetch(`http://${a.admin}/v1/resources/ServiceEntry/default/${name}`);
  if (r.status === 404) {
    await r.body?.cancel();
    return undefined;
  }
  const j = await r.json();
  return j.resource?.metadata?.labels?.v ?? j.metadata?.labels?.v;
}

/** A running policy cluster; `agents[i]` is always the current process of `p{i}`. */
export interface PolicyCluster {
  agents: AgentProcess[];
  /** Gossip address of `p0`, to `--join` through. */
  seed: string;
  /**
   * (Re)starts `p{i}` on its own data directory, joining `join` when given; replaces
   * `agents[i]` so `stop` ends it too.
   */
  restart(i: number, join?: string): Promise<AgentProcess>;
  /** Kills every agent still running and removes the data directories. */
  stop(): Promise<void>;
}

/**
 * Starts `size` agents with the `local` gossip profile, `p1`.. joining through `p0`, and waits
 * until each sees `size` alive members.
 */
export async function startPolicyCluster(size: number, prefix: string): Promise<PolicyCluster> {
  const root = await Deno.makeTempDir({ prefix: `weft-${prefix}-` });
  const agents: AgentProcess[] = [];
  const args = ["--gossip-profile", "local"];
  const launch = (i: number, join?: string) =>
    startAgent({ name: `p${i}`, dataDir: `${root}/p${i}`, join: join ? [join] : [], args });
  const stop = async () => {
    await Promise.all(agents.map((a) => a.kill()));
    await Deno.remove(root, { recursive: true });
  };
  try {
    agents.push(await launch(0));
    const seed = agents[0].gossip!;
    agents.push(
      ...await Promise.all(Array.from({ length: size - 1 }, (_, k) => launch(k + 1, seed))),
    );
    for (const a of agents) {
      await eventually(
        `${a.name} sees ${size} members`,
        async () =>
          (await a.get<{ members: { state: string }[] }>("/v1/members")).members
            .filter((m) => m.state === "alive").length === size,
        30_000,
      );
    }
    const restart = async (i: number, join?: string) => {
      // The old process must be gone first: the new one opens the same data directory.
      await agents[i].kill();
      agents[i] = await launch(i, join);
      return agents[i];
    };
    return { agents, seed, restart, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
