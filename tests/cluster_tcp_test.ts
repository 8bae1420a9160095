/**
 * @module
 * Real `weft agent` processes: node B runs a raw TCP service (`--service echo=PORT,
 * protocol=tcp`), node A offers it as a local port (`--upstream echo=0`); a connection to that
 * port reaches B's service through B's inbound listener, with half-close.
 */
import { assert, assertEquals, eventually } from "./support/assert.ts";
import { type AgentProcess, startAgent } from "./support/agent_process.ts";
import { readAll, roundTrip, startEcho } from "./support/tcp_echo.ts";

Deno.test("two agents carry a raw TCP service across nodes", async () => {
  const root = await Deno.makeTempDir({ prefix: "weft-tcp-" });
  const echo = startEcho();
  const agents: AgentProcess[] = [];
  try {
    const args = ["--gossip-profile", "local"];
    const b = await startAgent({
      name: "b",
      dataDir: `${root}/b`,
      services: [`echo=${echo.port},protocol=tcp`],
      args,
    });
    agents.push(b);
    const a = await startAgent({
      name: "a",
      dataDir: `${root}/a`,
      join: [b.gossip!],
      args: [...args, "--upstream", "echo=0"],
    });
    agents.push(a);

    const started = a.logs.find((l) => l.msg === "node started") as
      | { tcpUpstreams?: { service: string; address: string }[] }
      | undefined;
    const upstreams = started?.tcpUpstreams ?? [];
    assertEquals(upstreams.map((u) => u.service), ["echo"]);
    const port = Number(upstreams[0].address.split(":").pop());
    assert(port > 0, `bound port in "node started": ${upstreams[0].address}`);

    // Until A learns of B's service, connections are closed at once (no endpoint).
    const ping = new TextEncoder().encode("ping");
    await eventually(
      "echo reachable through A's tcp upstream",
      async () => {
        const got = await roundTrip(port, ping);
        return new TextDecoder().decode(got) === "ping";
      },
      30_000,
      50,
    );

    // Half-close across the two proxies: the client stops writing, then reads the rest.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const payload = new Uint8Array(256 * 1024).fill(0x61);
      const reading = readAll(conn);
      let off = 0;
      while (off < payload.length) off += await conn.write(payload.subarray(off));
      await conn.closeWrite();
      const back = await reading;
      assertEquals(back.length, payload.length, "all bytes back after half-close");
    } finally {
      conn.close();
    }
  } finally {
    for (const a of agents.reverse()) await a.stop();
    await echo.close();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});
