/**
 * The replicated policy store with real agents: apply on one node is visible on all, a
 * conflicting write on two nodes converges to one winner everywhere, deletes propagate, a
 * node that was down catches up after restart, `kill -9` right after acknowledged writes
 * loses none of them, bad input answers 400 and changes nothing, `apply --wait` returns once
 * every node has the change, and a ServiceEntry makes its host reachable through every node.
 */
import { assert, assertEquals, assertMatch, eventually } from "./support/assert.ts";
import { type AgentProcess, startAgent } from "./support/agent_process.ts";
import { rawRequest, serveDemoService } from "./support/demo.ts";

const mainTs = new URL("../main.ts", import.meta.url).pathname;

interface StoreView {
  digest: string;
  count: number;
}

function serviceEntry(name: string, port: number, version: string): string {
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

async function post(a: AgentProcess, body: string, type = "application/yaml"): Promise<Response> {
  return await fetch(`http://${a.admin}/v1/resources`, {
    method: "POST",
    body,
    headers: { "content-type": type },
  });
}

async function digest(a: AgentProcess): Promise<string> {
  return (await a.get<StoreView>("/v1/store")).digest;
}

async function converged(agents: AgentProcess[], timeoutMs = 20_000): Promise<string> {
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

async function labelOf(a: AgentProcess, name: string): Promise<string | undefined> {
  const r = await fetch(`http://${a.admin}/v1/resources/ServiceEntry/default/${name}`);
  if (r.status === 404) {
    await r.body?.cancel();
    return undefined;
  }
  const j = await r.json();
  return j.resource?.metadata?.labels?.v ?? j.metadata?.labels?.v;
}

Deno.test("policy replicates across five agents and survives restarts and kill -9", async () => {
  const root = await Deno.makeTempDir({ prefix: "weft-policy-" });
  const upstream = serveDemoService("ext", "ext-1", "v1", 0);
  const agents: AgentProcess[] = [];
  const args = ["--gossip-profile", "local"];
  const start = async (i: number, join?: string) =>
    await startAgent({ name: `p${i}`, dataDir: `${root}/p${i}`, join: join ? [join] : [], args });
  try {
    agents.push(await start(0));
    const seed = agents[0].gossip!;
    agents.push(...await Promise.all([1, 2, 3, 4].map((i) => start(i, seed))));
    for (const a of agents) {
      await eventually(
        `${a.name} sees 5 members`,
        async () =>
          (await a.get<{ members: { state: string }[] }>("/v1/members")).members
            .filter((m) => m.state === "alive").length === 5,
        30_000,
      );
    }

    // Apply on p0 with the CLI and --wait: returns once every live node has it.
    const file = `${root}/se.yaml`;
    await Deno.writeTextFile(file, serviceEntry("ext", upstream.addr.port, "one"));
    const applied = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        mainTs,
        "apply",
        "-f",
        file,
        "--wait",
        "--timeout",
        "20s",
        "--admin",
        agents[0].admin,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(applied.stdout);
    assertEquals(applied.code, 0, new TextDecoder().decode(applied.stderr));
    assertMatch(out, /serviceentry\S* ?\S*ext created/i);
    for (const a of agents) assertEquals(await labelOf(a, "ext"), "one", a.name);

    // The ServiceEntry host is reachable through every node's outbound listener.
    for (const a of agents) {
      await eventually(`ext.example routable via ${a.name}`, async () => {
        const r = await rawRequest(a.outbound.hostname, a.outbound.port, "GET", "/se", {
          host: "ext.example",
        });
        return r.status === 200 && JSON.parse(r.body).instance === "ext-1";
      }, 3000);
    }

    // Conflicting writes on two nodes at once: every node ends with the same winner.
    const [r1, r2] = await Promise.all([
      post(agents[1], serviceEntry("ext", upstream.addr.port, "from-p1")),
      post(agents[2], serviceEntry("ext", upstream.addr.port, "from-p2")),
    ]);
    assertEquals([r1.status, r2.status], [200, 200]);
    await r1.body?.cancel();
    await r2.body?.cancel();
    await converged(agents);
    const winners = await Promise.all(agents.map((a) => labelOf(a, "ext")));
    assert(winners[0] === "from-p1" || winners[0] === "from-p2", `winner ${winners[0]}`);
    assertEquals(new Set(winners).size, 1, `winners ${winners}`);

    // Invalid input answers 400 with paths and changes nothing.
    const before = await digest(agents[3]);
    const bad = await post(
      agents[3],
      serviceEntry("bad", 1, "x").replace("protocol: HTTP", "protocol: SMTP"),
    );
    assertEquals(bad.status, 400);
    const err = await bad.json();
    assertMatch(JSON.stringify(err.details), /spec\.ports\[0\]\.protocol/);
    const badJson = await post(agents[3], "{not json", "application/json");
    assertEquals(badJson.status, 400);
    await badJson.body?.cancel();
    assertEquals(await digest(agents[3]), before);

    // p4 stops; changes happen meanwhile; it converges after restart and kept its state.
    assertEquals(await agents[4].stop(), 0);
    const second = await post(agents[0], serviceEntry("second", upstream.addr.port, "two"));
    assertEquals(second.status, 200);
    await second.body?.cancel();
    const del = await fetch(`http://${agents[1].admin}/v1/resources/ServiceEntry/default/ext`, {
      method: "DELETE",
    });
    assertEquals(del.status, 200);
    await del.body?.cancel();
    agents[4] = await start(4, seed);
    const live = agents;
    await converged(live, 20_000);
    assertEquals(await labelOf(agents[4], "second"), "two");
    assertEquals(await labelOf(agents[4], "ext"), undefined, "delete propagated to the late node");

    // kill -9 right after acknowledged writes: they survive the restart.
    const names = ["k1", "k2", "k3", "k4", "k5"];
    for (const n of names) {
      const r = await post(agents[2], serviceEntry(n, upstream.addr.port, n));
      assertEquals(r.status, 200);
      await r.body?.cancel();
    }
    await agents[2].kill();
    // Restarted alone (no --join), so what it has comes from its own disk, not from peers.
    agents[2] = await start(2);
    for (const n of names) assertEquals(await labelOf(agents[2], n), n, `${n} survived kill -9`);
    assertEquals(await labelOf(agents[2], "second"), "two", "earlier state kept");
  } finally {
    await Promise.all(agents.map((a) => a.kill()));
    await upstream.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});
