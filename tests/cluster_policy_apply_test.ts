/**
 * @module
 * The replicated policy store with four real agents, writes and reads only: `apply --wait`
 * returns once every node has the change, a ServiceEntry makes its host reachable through
 * every node, a conflicting write on two nodes converges to one winner everywhere, and bad
 * input answers 400 and changes nothing. Restart catch-up and `kill -9` durability are in
 * cluster_policy_catchup_test.ts and cluster_policy_kill_test.ts, each with its own cluster.
 */
import { assert, assertEquals, assertMatch, eventually } from "./support/assert.ts";
import {
  converged,
  digest,
  labelOf,
  type PolicyCluster,
  post,
  serviceEntry,
  startPolicyCluster,
} from "./support/policy_agents.ts";
import { rawRequest, serveDemoService } from "./support/demo.ts";

const mainTs = new URL("../main.ts", import.meta.url).pathname;

Deno.test("policy applied on one of four agents reaches all; conflicts converge; bad input is refused", async () => {
  const upstream = serveDemoService("ext", "ext-1", "v1", 0);
  const root = await Deno.makeTempDir({ prefix: "weft-policy-apply-manifest-" });
  let cluster: PolicyCluster | undefined;
  try {
    cluster = await startPolicyCluster(4, "policy-apply");
    const { agents } = cluster;
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
  } finally {
    await cluster?.stop();
    await upstream.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});
