/**
 * @module
 * Real `weft agent` processes on loopback: five agents join through one seed, the `members`
 * command prints the same view, and a request sent to one node's outbound listener reaches a
 * service that only another node runs, through that node's inbound listener. Failure
 * detection and a graceful leave are their own files (cluster_crash_test.ts,
 * cluster_leave_test.ts) so the three clusters start and run in parallel.
 */
import { assert, assertEquals, eventually } from "./support/assert.ts";
import { startAgentCluster } from "./support/agent_cluster.ts";
import { rawRequest } from "./support/demo.ts";

Deno.test("five agents: join by one seed, the members table, cross-node proxying", async () => {
  const cluster = await startAgentCluster(5, "cluster");
  const { agents } = cluster;
  try {
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
  } finally {
    await cluster.stop();
  }
});
