/**
 * @module
 * Issue 16, item 5 end to end: two real agents, each advertising one `web` instance that runs
 * as a process of its own, and a VirtualService retrying `connect-failure,reset,503`. Under
 * load through node `ra`'s outbound, one instance is killed with `kill -9` — `ra`'s own, or
 * `rb`'s, which `ra` reaches through `rb`'s inbound listener; no health check or gossip
 * removes it, so the catalog keeps listing the dead endpoint, and every request must still
 * succeed: a retry goes to the endpoint it has not tried yet, and a peer's own failure reply
 * counts as the failure it reports.
 */
import { assert, assertEquals, eventually } from "./support/assert.ts";
import { type AgentProcess, startAgent } from "./support/agent_process.ts";
import { type DemoProcess, rawRequest, startDemoProcess } from "./support/demo.ts";

const retryingWeb = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web-retries, namespace: default }
spec:
  hosts: [web]
  http:
    - retries: { attempts: 3, retryOn: "connect-failure,reset,503" }
      route: [{ destination: { host: web } }]
`;

/** Concurrent clients: the retries of one interleave with the others' first tries. */
const workers = 8;
/** Load kept up after the kill: the window in which the catalog still lists the dead instance. */
const afterKillMs = 2000;

interface Services {
  services: { name: string; endpoints: unknown[] }[];
}

/**
 * Two agents with a `web` instance each, load through `ra`, then a kill -9 of `ra`'s own
 * instance (`remote` false) or of `rb`'s (true, reached through `rb`'s inbound listener, which
 * answers 502 UF or UR for it): no request may fail.
 */
async function killUnderLoad(remote: boolean): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "weft-retrykill-" });
  const upstreams: DemoProcess[] = [];
  const agents: AgentProcess[] = [];
  try {
    upstreams.push(
      ...await Promise.all([startDemoProcess("web", "web-a"), startDemoProcess("web", "web-b")]),
    );
    const [webA, webB] = upstreams;
    const victim = remote ? webB : webA;
    const args = ["--gossip-profile", "local"];
    agents.push(
      await startAgent({
        name: "ra",
        dataDir: `${root}/ra`,
        services: [`web=${webA.port}`],
        args,
      }),
    );
    const a = agents[0];
    agents.push(
      await startAgent({
        name: "rb",
        dataDir: `${root}/rb`,
        services: [`web=${webB.port}`],
        join: [a.gossip!],
        args,
      }),
    );
    const webEndpoints = async () =>
      (await a.get<Services>("/v1/services")).services.find((s) => s.name === "web")?.endpoints
        .length;
    await eventually("ra lists both web instances", async () => await webEndpoints() === 2, 30_000);

    const applied = await fetch(`http://${a.admin}/v1/resources`, {
      method: "POST",
      headers: { "content-type": "application/yaml" },
      body: retryingWeb,
    });
    assertEquals(applied.status, 200, await applied.text());
    await eventually("ra routes web through the VirtualService", async () => {
      const r = await a.get<
        { outbound: { host: string; routes: { virtualService?: string }[] }[] }
      >("/v1/routes");
      return r.outbound.some((h) => h.host === "web" && h.routes[0]?.virtualService);
    }, 10_000);

    // Load: `workers` clients send sequential requests until `stopAt` (a hard cap bounds it).
    const hardStop = performance.now() + 15_000;
    let stopAt = hardStop;
    let killed = false;
    const before: Record<string, number> = {};
    const after: Record<string, number> = {};
    const failures: string[] = [];
    const worker = async () => {
      for (let i = 0; i < 100_000 && performance.now() < Math.min(stopAt, hardStop); i++) {
        const counts = killed ? after : before;
        try {
          const r = await rawRequest(
            a.outbound.hostname,
            a.outbound.port,
            "GET",
            "/",
            {
              host: "web",
            },
            "",
            5000,
          );
          if (r.status === 200) {
            const instance = JSON.parse(r.body).instance as string;
            counts[instance] = (counts[instance] ?? 0) + 1;
          } else if (failures.length < 1000) {
            failures.push(`${r.status} ${r.headers.get("x-weft-flag") ?? "-"}`);
          }
        } catch (err) {
          if (failures.length < 1000) failures.push(String(err));
        }
      }
    };
    const load = Promise.all(Array.from({ length: workers }, worker));
    try {
      await eventually(
        "both instances answer under load",
        () => (before["web-a"] ?? 0) >= 20 && (before["web-b"] ?? 0) >= 20,
        10_000,
        10,
      );
      killed = true;
      await victim.kill();
      stopAt = performance.now() + afterKillMs;
    } finally {
      if (!killed) stopAt = 0;
      await load;
    }

    const served = Object.values(after).reduce((s, n) => s + n, 0);
    assertEquals(failures.length, 0, `failed requests after the kill: ${failures.slice(0, 10)}`);
    assertEquals(after[victim.instance] ?? 0, 0, "no answer from the killed instance");
    assert(served >= 50, `load kept up after the kill: ${served} requests served`);
    // The dead instance was still a balancer endpoint all along: nothing removed it.
    assertEquals(await webEndpoints(), 2, "ra still lists the killed instance");
  } finally {
    await Promise.all(upstreams.map((u) => u.kill()));
    await Promise.all(agents.map((x) => x.kill()));
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("kill -9 of the caller node's web instance under load: retries reach the other, none fails", () =>
  killUnderLoad(false));

Deno.test("kill -9 of a peer node's web instance under load: the peer's 502 UF/UR is retried as the failure it stands for, none fails", () =>
  killUnderLoad(true));
