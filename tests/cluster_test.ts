/**
 * Real `weft agent` processes on loopback: five agents join through one seed, a `kill -9` is
 * seen as dead by every survivor within the bound the gossip config implies, a graceful stop
 * is seen as `left`, and a request sent to one node's outbound listener reaches a service
 * that only another node runs, through that node's inbound listener.
 */
import { assert, assertEquals, eventually } from "./support/assert.ts";
import { type AgentProcess, startAgent } from "./support/agent_process.ts";
import { rawRequest, serveDemoService } from "./support/demo.ts";
import { defaultLocalConfig } from "../gossip/mod.ts";
import { suspicionTimeoutMs } from "../gossip/suspicion.ts";

interface Members {
  members: { name: string; state: string; incarnation: number; services: { name: string }[] }[];
}

async function stateOf(a: AgentProcess, name: string): Promise<string | undefined> {
  const m = await a.get<Members>("/v1/members");
  return m.members.find((x) => x.name === name)?.state;
}

Deno.test("five agents: join by one seed, kill -9 detection, graceful leave, cross-node proxying", async () => {
  const root = await Deno.makeTempDir({ prefix: "weft-cluster-" });
  const services = [0, 1, 2, 3, 4].map((i) =>
    serveDemoService(`svc${i}`, `svc${i}-n${i}`, "v1", 0)
  );
  const agents: AgentProcess[] = [];
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
    const rest = await Promise.all([1, 2, 3, 4].map((i) =>
      startAgent({
        name: `n${i}`,
        dataDir: `${root}/n${i}`,
        services: [`svc${i}=${services[i].addr.port},version=v${i}`],
        join: [seed],
        args,
      })
    ));
    agents.push(...rest);

    // Everyone sees everyone alive, with their services.
    for (const a of agents) {
      await eventually(`${a.name} sees 5 alive members`, async () => {
        const m = await a.get<Members>("/v1/members");
        return m.members.filter((x) => x.state === "alive").length === 5;
      }, 30_000);
    }

    // The operating commands print the same view.
    const cli = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("../main.ts", import.meta.url).pathname,
        "members",
        "--admin",
        agents[2].admin,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(cli.code, 0, new TextDecoder().decode(cli.stderr));
    const table = new TextDecoder().decode(cli.stdout).trim().split("\n");
    assertEquals(table[0].split(/\s+/), ["NAME", "ADDRESS", "STATE", "INCARNATION", "SERVICES"]);
    assertEquals(table.slice(1).map((l) => l.split(/\s+/)[0]).sort(), [
      "n0",
      "n1",
      "n2",
      "n3",
      "n4",
    ]);
    assert(table.slice(1).every((l) => l.split(/\s+/)[2] === "alive"));

    // Cross-node: n0's outbound reaches svc3, which only n3 runs, through n3's inbound.
    await eventually("svc3 routable from n0", async () => {
      const r = await rawRequest(
        agents[0].outbound.hostname,
        agents[0].outbound.port,
        "GET",
        "/hello",
        {
          host: "svc3",
        },
      );
      return r.status === 200 && JSON.parse(r.body).instance === "svc3-n3";
    }, 10_000);
    const viaProxyForm = await rawRequest(
      agents[1].outbound.hostname,
      agents[1].outbound.port,
      "GET",
      "http://svc4/x",
      { host: "svc4" },
    );
    assertEquals(viaProxyForm.status, 200);
    assertEquals(JSON.parse(viaProxyForm.body).instance, "svc4-n4");
    const services1 = await agents[1].get<
      { services: { name: string; endpoints: { node: string }[] }[] }
    >(
      "/v1/services",
    );
    assertEquals(services1.services.find((s) => s.name === "svc4")?.endpoints.map((e) => e.node), [
      "n4",
    ]);

    // kill -9 of n4: every survivor marks it dead within the configured bound.
    const cfg = defaultLocalConfig();
    const n = 5;
    const minSuspicion = suspicionTimeoutMs(cfg.suspicionMult, n, cfg.probeIntervalMs);
    // Worst case: every survivor probes n4 last in its round (n periods), the suspicion runs
    // its full unconfirmed length, then one gossip round carries the verdict; plus slack for a
    // loaded 2-core machine.
    const boundMs = n * cfg.probeIntervalMs + cfg.suspicionMaxTimeoutMult * minSuspicion + 3000;
    const killedAt = performance.now();
    await agents[4].kill();
    const survivors = agents.slice(0, 4);
    await Promise.all(
      survivors.map((a) =>
        eventually(
          `${a.name} sees n4 dead`,
          async () => (await stateOf(a, "n4")) === "dead",
          boundMs,
          50,
        )
      ),
    );
    const detectedMs = performance.now() - killedAt;
    assert(detectedMs < boundMs, `detected after ${detectedMs} ms, bound ${boundMs} ms`);
    // A dead node's service leaves the catalog, so the proxy stops routing to it.
    await eventually("svc4 gone from n0", async () => {
      const r = await rawRequest(agents[0].outbound.hostname, agents[0].outbound.port, "GET", "/", {
        host: "svc4",
      });
      return r.status === 404 || r.status === 503;
    }, 5000);

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
    await Promise.all(agents.map((a) => a.kill()));
    await Promise.all(services.map((s) => s.shutdown()));
    await Deno.remove(root, { recursive: true });
  }
});
