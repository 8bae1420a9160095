/**
 * @module
 * Active health checks across real agents: two nodes run `web`, each checking its own
 * instance every 200 ms. When node B's instance fails its check, node A sees B's endpoint
 * unhealthy (through gossip) and sends every request to its own instance; when B's instance
 * recovers, it receives traffic again. A reload that drops a failing check restores the
 * instance.
 */
import { assert, assertEquals, eventually } from "./support/assert.ts";
import { type AgentProcess, startAgent } from "./support/agent_process.ts";
import { rawRequest } from "./support/demo.ts";

interface Services {
  services: { name: string; endpoints: { node: string; healthy: boolean }[] }[];
}

/** An upstream whose `/healthz` status the test sets; other paths answer its instance name. */
function flippableService(instance: string) {
  const state = { healthStatus: 200 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname === "/healthz") {
      return new Response("health", { status: state.healthStatus });
    }
    return Response.json({ instance });
  });
  return { state, server, port: server.addr.port };
}

async function webHealth(a: AgentProcess): Promise<Record<string, boolean>> {
  const s = await a.get<Services>("/v1/services");
  const web = s.services.find((x) => x.name === "web");
  return Object.fromEntries((web?.endpoints ?? []).map((e) => [e.node, e.healthy]));
}

async function callWeb(a: AgentProcess): Promise<string> {
  const r = await rawRequest(a.outbound.hostname, a.outbound.port, "GET", "/", { host: "web" });
  assertEquals(r.status, 200, r.body);
  return JSON.parse(r.body).instance;
}

Deno.test("health checks: a failing instance leaves the rotation cluster-wide and comes back", async () => {
  const root = await Deno.makeTempDir({ prefix: "weft-health-" });
  const upA = flippableService("web-a");
  const upB = flippableService("web-b");
  const agents: AgentProcess[] = [];
  try {
    const args = ["--gossip-profile", "local"];
    const spec = (port: number) => `web=${port},check=/healthz,check-interval-ms=200`;
    agents.push(
      await startAgent({ name: "a", dataDir: `${root}/a`, services: [spec(upA.port)], args }),
    );
    agents.push(
      await startAgent({
        name: "b",
        dataDir: `${root}/b`,
        services: [spec(upB.port)],
        join: [agents[0].gossip!],
        args,
      }),
    );
    const [a, b] = agents;

    await eventually("a sees both web endpoints healthy", async () => {
      const h = await webHealth(a);
      return h.a === true && h.b === true;
    }, 30_000);
    await eventually("a's outbound reaches b's instance", async () => {
      return (await callWeb(a)) === "web-b";
    }, 10_000);

    // B's instance fails its check: B advertises it unhealthy, A stops sending to it.
    upB.state.healthStatus = 503;
    await eventually("b marks its own endpoint unhealthy", async () => {
      return (await webHealth(b)).b === false;
    }, 10_000);
    await eventually("a sees b's endpoint unhealthy", async () => {
      const h = await webHealth(a);
      return h.a === true && h.b === false;
    }, 10_000);
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(await callWeb(a));
    assertEquals([...seen], ["web-a"]);

    const cli = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("../main.ts", import.meta.url).pathname,
        "services",
        "--admin",
        a.admin,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(cli.code, 0, new TextDecoder().decode(cli.stderr));
    const table = new TextDecoder().decode(cli.stdout);
    const rows = table.trim().split("\n").map((l) => l.trim().split(/\s+/));
    assertEquals(rows.find((r) => r[0] === "web" && r[1] === "b")?.[3], "unhealthy", table);
    assertEquals(rows.find((r) => r[0] === "web" && r[1] === "a")?.[3], "healthy", table);

    const metrics = await (await fetch(`http://${b.admin}/metrics`)).text();
    assert(metrics.includes('weft_health_check_status{service="web"} 0'), metrics);

    // Recovery: one passing check (healthyThreshold 1) puts B back in rotation.
    upB.state.healthStatus = 200;
    await eventually("a sees b's endpoint healthy again", async () => {
      return (await webHealth(a)).b === true;
    }, 10_000);
    await eventually("b's instance receives traffic again", async () => {
      return (await callWeb(a)) === "web-b";
    }, 10_000);
  } finally {
    await Promise.all(agents.map((x) => x.stop()));
    await upA.server.shutdown();
    await upB.server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("health checks: a reload that removes a failing check restores the instance", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-health-reload-" });
  const up = flippableService("web-1");
  up.state.healthStatus = 500;
  const configPath = `${dir}/weft.yaml`;
  const write = (check: string) =>
    Deno.writeTextFile(configPath, `services:\n  - { name: web, port: ${up.port}${check} }\n`);
  await write(", check: { path: /healthz, intervalMs: 100, unhealthyThreshold: 1 }");
  const agent = await startAgent({
    name: "r1",
    dataDir: `${dir}/data`,
    args: ["--config", configPath],
  });
  try {
    await eventually("the failing check marks web unhealthy", async () => {
      return (await webHealth(agent)).r1 === false;
    }, 10_000);
    await eventually("the unhealthy flag is advertised in the member metadata", async () => {
      const members = await agent.get<
        { members: { name: string; services: { name: string; healthy: boolean }[] }[] }
      >("/v1/members");
      const own = members.members.find((m) => m.name === "r1");
      return own?.services.find((s) => s.name === "web")?.healthy === false;
    }, 10_000);

    await write("");
    const ok = await fetch(`http://${agent.admin}/v1/reload`, { method: "POST" });
    assertEquals(ok.status, 200, await ok.text());
    await eventually("web is healthy without its check", async () => {
      return (await webHealth(agent)).r1 === true;
    }, 10_000);
  } finally {
    await agent.stop();
    await up.server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
