/**
 * @module
 * Traffic management across real agents: a DestinationRule with version subsets and a 90/10
 * VirtualService applied on one node split requests across two other nodes' instances, and
 * a second VirtualService for the same host is rejected naming both resources.
 */
import { assert, assertEquals, assertMatch, eventually } from "./support/assert.ts";
import { type AgentProcess, startAgent } from "./support/agent_process.ts";
import { rawRequest, serveDemoService } from "./support/demo.ts";

const canary = [
  {
    apiVersion: "networking.istio.io/v1",
    kind: "DestinationRule",
    metadata: { name: "reviews" },
    spec: {
      host: "reviews",
      subsets: [{ name: "v1", labels: { version: "v1" } }, {
        name: "v2",
        labels: { version: "v2" },
      }],
    },
  },
  {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: "reviews-canary" },
    spec: {
      hosts: ["reviews"],
      http: [{
        route: [
          { destination: { host: "reviews", subset: "v1" }, weight: 90 },
          { destination: { host: "reviews", subset: "v2" }, weight: 10 },
        ],
      }],
    },
  },
];

Deno.test("a 90/10 canary splits traffic across nodes by subset", async () => {
  const root = await Deno.makeTempDir({ prefix: "weft-canary-" });
  const v1 = serveDemoService("reviews", "reviews-v1", "v1", 0);
  const v2 = serveDemoService("reviews", "reviews-v2", "v2", 0);
  const agents: AgentProcess[] = [];
  try {
    const args = ["--gossip-profile", "local"];
    agents.push(await startAgent({ name: "c0", dataDir: `${root}/c0`, args }));
    const seed = agents[0].gossip!;
    agents.push(
      await startAgent({
        name: "c1",
        dataDir: `${root}/c1`,
        join: [seed],
        services: [`reviews=${v1.addr.port},version=v1`],
        args,
      }),
      await startAgent({
        name: "c2",
        dataDir: `${root}/c2`,
        join: [seed],
        services: [`reviews=${v2.addr.port},version=v2`],
        args,
      }),
    );
    const client = agents[0];
    await eventually("c0 knows both reviews instances", async () => {
      const s = await client.get<{ services: { name: string; endpoints: unknown[] }[] }>(
        "/v1/services",
      );
      return s.services.find((x) => x.name === "reviews")?.endpoints.length === 2;
    }, 30_000);

    const applied = await fetch(`http://${agents[1].admin}/v1/resources`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(canary),
    });
    assertEquals(applied.status, 200, await applied.text());
    await eventually("the canary routes reach c0", async () => {
      const r = await client.get<
        { outbound: { host: string; routes: { virtualService?: string }[] }[] }
      >(
        "/v1/routes",
      );
      return r.outbound.some((h) => h.host === "reviews" && h.routes[0]?.virtualService);
    }, 5000);

    // `weft routes --node c0`, asked through c2, shows the routing table c0 uses.
    const routes = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("../main.ts", import.meta.url).pathname,
        "routes",
        "--node",
        "c0",
        "--admin",
        agents[2].admin,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(routes.code, 0, new TextDecoder().decode(routes.stderr));
    assertMatch(
      new TextDecoder().decode(routes.stdout),
      /reviews\s.*outbound\|reviews\|v1 90%.*outbound\|reviews\|v2 10%/,
    );

    const n = 600;
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await rawRequest(client.outbound.hostname, client.outbound.port, "GET", "/r", {
        host: "reviews",
      });
      assertEquals(r.status, 200);
      const version = JSON.parse(r.body).version;
      counts[version] = (counts[version] ?? 0) + 1;
    }
    // Chi-square with one degree of freedom; 19.51 is the 0.00001 critical value, so a correct
    // split fails one run in 100,000 and a wrong one (e.g. 50/50) lands far above it.
    const expected = { v1: 0.9 * n, v2: 0.1 * n };
    const chi = ((counts.v1 ?? 0) - expected.v1) ** 2 / expected.v1 +
      ((counts.v2 ?? 0) - expected.v2) ** 2 / expected.v2;
    assert(
      chi < 19.51,
      `split ${JSON.stringify(counts)} is not 90/10 (chi-square ${chi.toFixed(2)})`,
    );

    // A second VirtualService for the same host is rejected, naming both.
    await eventually("c2 holds the canary", async () => {
      const r = await fetch(
        `http://${agents[2].admin}/v1/resources/VirtualService/default/reviews-canary`,
      );
      await r.body?.cancel();
      return r.status === 200;
    }, 5000);
    const clash = structuredClone(canary[1]);
    clash.metadata.name = "reviews-other";
    const rejected = await fetch(`http://${agents[2].admin}/v1/resources`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(clash),
    });
    assertEquals(rejected.status, 400);
    assertMatch(
      (await rejected.json()).error,
      /VirtualService default\/reviews-(canary|other) and default\/reviews-(canary|other) both route host "reviews"/,
    );
  } finally {
    await Promise.all(agents.map((a) => a.kill()));
    await v1.shutdown();
    await v2.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});
