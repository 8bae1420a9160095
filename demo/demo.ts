/**
 * @module
 * `deno task demo`: starts demo services and a local Weft mesh of three nodes that join
 * through the first one, sends requests through the mesh, prints who answered, then keeps
 * running with addresses to try until Ctrl-C. Every process it starts is stopped on exit.
 */
import { serveDemoService } from "./upstream.ts";
import { rawRequest } from "./raw_http.ts";
import { agentV8FlagsArg } from "../lib/runtime_flags.ts";

interface DemoNode {
  name: string;
  admin: number;
  outbound: number;
  inbound: number;
  gossip: number;
  p2p: number;
  services: { name: string; instance: string; version: string }[];
}

const nodes: DemoNode[] = [
  {
    name: "node-1",
    admin: 15000,
    outbound: 15001,
    inbound: 15006,
    gossip: 7946,
    p2p: 7947,
    services: [{ name: "productpage", instance: "productpage-1", version: "v1" }, {
      name: "reviews",
      instance: "reviews-v1",
      version: "v1",
    }],
  },
  {
    name: "node-2",
    admin: 15100,
    outbound: 15101,
    inbound: 15106,
    gossip: 7956,
    p2p: 7957,
    services: [{ name: "reviews", instance: "reviews-v2", version: "v2" }],
  },
  {
    name: "node-3",
    admin: 15200,
    outbound: 15201,
    inbound: 15206,
    gossip: 7966,
    p2p: 7967,
    services: [{ name: "ratings", instance: "ratings-1", version: "v1" }],
  },
];

const mainTs = new URL("../main.ts", import.meta.url).pathname;
const children: Deno.ChildProcess[] = [];
const servers: Deno.HttpServer[] = [];
const dataRoot = await Deno.makeTempDir({ prefix: "weft-demo-" });

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = "";
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${lastErr}` : ""}`);
}

async function shutdown(code: number): Promise<never> {
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch { /* already gone */ }
  }
  await Promise.allSettled(children.map((c) => c.status));
  await Promise.allSettled(servers.map((s) => s.shutdown()));
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  Deno.exit(code);
}

async function main() {
  console.log("Weft demo: 3 nodes, demo services, requests through the mesh\n");
  for (const n of nodes) {
    const specs: string[] = [];
    for (const s of n.services) {
      const server = serveDemoService(s.name, s.instance, s.version, 0);
      servers.push(server);
      specs.push(`${s.name}=${server.addr.port},version=${s.version}`);
    }
    const args = [
      "run",
      agentV8FlagsArg,
      "--allow-all",
      mainTs,
      "agent",
      "--name",
      n.name,
      "--data-dir",
      `${dataRoot}/${n.name}`,
      "--admin-addr",
      `127.0.0.1:${n.admin}`,
      "--outbound-addr",
      `127.0.0.1:${n.outbound}`,
      "--inbound-addr",
      `127.0.0.1:${n.inbound}`,
      "--gossip-addr",
      `127.0.0.1:${n.gossip}`,
      "--p2p-addr",
      `127.0.0.1:${n.p2p}`,
      "--log-level",
      "warn",
      ...specs.flatMap((s) => ["--service", s]),
      ...(n === nodes[0] ? [] : ["--join", `127.0.0.1:${nodes[0].gossip}`]),
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args,
      stdout: "inherit",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    children.push(child);
    console.log(
      `started ${n.name} (pid ${child.pid}) running ${
        n.services.map((s) => `${s.name} ${s.version}`).join(", ")
      }`,
    );
  }
  for (const n of nodes) {
    await waitFor(`${n.name} admin API`, async () => {
      const r = await fetch(`http://127.0.0.1:${n.admin}/healthz`);
      await r.body?.cancel();
      return r.ok ? true : undefined;
    });
  }
  // Wait until node-1 knows every service (gossip) before sending traffic.
  const want = new Set(nodes.flatMap((n) => n.services.map((s) => s.name)));
  await waitFor("services to be discovered by node-1", async () => {
    const r = await (await fetch(`http://127.0.0.1:${nodes[0].admin}/v1/services`)).json() as {
      services: { name: string; endpoints: unknown[] }[];
    };
    const have = new Set(r.services.filter((s) => s.endpoints.length > 0).map((s) => s.name));
    return [...want].every((s) => have.has(s)) ? true : undefined;
  }).catch((err) => console.log(`note: ${err.message}; continuing with what is known`));

  console.log("\nRequests sent to node-1's outbound listener (127.0.0.1:15001):");
  const tries: [string, string, Record<string, string>][] = [
    ["reviews", "/reviews/1", {}],
    ["reviews", "/reviews/2", {}],
    ["reviews", "/reviews/3", {}],
    ["reviews", "/reviews/4", {}],
    ["ratings", "/ratings/1", {}],
    ["productpage", "/", {}],
    ["nosuchservice", "/", {}],
  ];
  for (const [i, [service, path, headers]] of tries.entries()) {
    // Alternate the two accepted forms: proxy request with an absolute URL, and Host header.
    const target = i % 2 === 0 ? `http://${service}${path}` : path;
    try {
      const r = await rawRequest("127.0.0.1", nodes[0].outbound, "GET", target, {
        host: service,
        ...headers,
      });
      let who = r.body;
      try {
        const j = JSON.parse(r.body);
        who = j.instance ? `${j.instance} (${j.version})` : `${j.error} [${j.flag}]`;
      } catch { /* not JSON */ }
      console.log(`  GET ${service}${path}  ->  ${r.status}  ${who}`);
    } catch (err) {
      console.log(
        `  GET ${service}${path}  ->  failed: ${err instanceof Error ? err.message : err}`,
      );
    }
  }
  // Policy: a ServiceEntry applied on node-2 becomes routable through node-1.
  const legacy = serveDemoService("legacy-billing", "billing-vm-1", "v1", 0);
  servers.push(legacy);
  const entry = {
    apiVersion: "networking.istio.io/v1",
    kind: "ServiceEntry",
    metadata: { name: "billing" },
    spec: {
      hosts: ["billing.legacy"],
      ports: [{ number: 80, name: "http", protocol: "HTTP" }],
      resolution: "STATIC",
      endpoints: [{ address: "127.0.0.1", ports: { http: legacy.addr.port } }],
    },
  };
  const appliedAt = performance.now();
  const applied = await fetch(`http://127.0.0.1:${nodes[1].admin}/v1/resources`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(entry),
  });
  console.log(
    `\nApplied ServiceEntry billing (host billing.legacy) on node-2: ${applied.status} ${await applied
      .text()}`,
  );
  const r = await waitFor("billing.legacy through node-1", async () => {
    const res = await rawRequest("127.0.0.1", nodes[0].outbound, "GET", "/invoices", {
      host: "billing.legacy",
    });
    return res.status === 200 ? res : undefined;
  }, 10_000).catch(() => undefined);
  console.log(
    r
      ? `  GET billing.legacy/invoices via node-1  ->  ${r.status}  ${
        JSON.parse(r.body).instance
      }  (replicated and routable after ${Math.round(performance.now() - appliedAt)} ms)`
      : "  billing.legacy did not become routable through node-1 within 10 s",
  );

  await trafficDemo();

  const members = await (await fetch(`http://127.0.0.1:${nodes[0].admin}/v1/members`)).json() as {
    members: { name: string; state: string }[];
  };
  console.log(
    `\nMembers seen by node-1: ${members.members.map((m) => `${m.name} (${m.state})`).join(", ")}`,
  );

  console.log(`
The mesh keeps running. Try:
  curl -x http://127.0.0.1:15001 http://reviews/hello
  curl -H 'Host: ratings' http://127.0.0.1:15001/
  curl -H 'Host: billing.legacy' http://127.0.0.1:15201/      (node-3's outbound)
  curl -H 'service: stockservice' http://127.0.0.1:15001/     (route-by-header)
  deno task weft routes
  deno task weft members --admin 127.0.0.1:15000
  deno task weft services
  deno task weft get serviceentries --admin 127.0.0.1:15200
  deno task weft status
  open http://127.0.0.1:15000/ for the dashboard, http://127.0.0.1:15000/metrics for metrics
(without a local deno, run the weft commands as: npx -y deno@2.9.6 task weft …)
Press Ctrl-C to stop.`);
  if (Deno.env.get("WEFT_DEMO_EXIT") === "1") await shutdown(0);
  const { promise, resolve } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", () => resolve());
  Deno.addSignalListener("SIGTERM", () => resolve());
  await promise;
  console.log("\nstopping the demo mesh");
  await shutdown(0);
}

/** Applies resources (JSON) on one node through its admin API; returns the response text. */
async function applyOn(node: DemoNode, resources: unknown[]): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${node.admin}/v1/resources`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(resources),
  });
  const body = await res.json() as { results?: { name: string; result: string }[]; error?: string };
  return res.ok
    ? body.results!.map((r) => `${r.name} ${r.result}`).join(", ")
    : `HTTP ${res.status}: ${body.error}`;
}

/** A weighted canary with subsets, and the seed's route-by-header example. */
async function trafficDemo(): Promise<void> {
  console.log(
    "\nWeighted canary: DestinationRule subsets v1/v2 and a 90/10 VirtualService, applied on node-3",
  );
  console.log(
    "  " +
      await applyOn(nodes[2], [
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
      ]),
  );
  await waitFor("the canary to reach node-1", async () => {
    const r = await (await fetch(`http://127.0.0.1:${nodes[0].admin}/v1/routes`)).json() as {
      outbound: { host: string; routes: { virtualService?: string }[] }[];
    };
    return r.outbound.some((h) => h.host === "reviews" && h.routes[0]?.virtualService)
      ? true
      : undefined;
  }, 10_000).catch(() => {});
  const counts = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const r = await rawRequest("127.0.0.1", nodes[0].outbound, "GET", "/reviews", {
      host: "reviews",
    });
    const who = r.status === 200 ? JSON.parse(r.body).version : `HTTP ${r.status}`;
    counts.set(who, (counts.get(who) ?? 0) + 1);
  }
  console.log(
    `  200 requests to reviews via node-1: ${[...counts].map(([k, v]) => `${k}: ${v}`).join(", ")}`,
  );

  console.log("\nRoute by header (the seed example): ServiceEntries order/stock/payment and a");
  console.log('VirtualService "route-by-header" with hosts ["*"], applied on node-2');
  const names = ["orderservice", "stockservice", "paymentservice"];
  const entries = names.map((name) => {
    const server = serveDemoService(name, `${name}-1`, "v1", 0);
    servers.push(server);
    return {
      apiVersion: "networking.istio.io/v1",
      kind: "ServiceEntry",
      metadata: { name },
      spec: {
        hosts: [name],
        ports: [{ number: 80, name: "http", protocol: "HTTP" }],
        resolution: "STATIC",
        endpoints: [{ address: "127.0.0.1", ports: { http: server.addr.port } }],
      },
    };
  });
  const routeByHeader = {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: "route-by-header" },
    spec: {
      hosts: ["*"],
      http: names.map((name) => ({
        name,
        match: [{ headers: { service: { exact: name } } }],
        route: [{ destination: { host: name } }],
      })),
    },
  };
  console.log("  " + await applyOn(nodes[1], [...entries, routeByHeader]));
  for (const name of names) {
    const r = await waitFor(`route-by-header for ${name}`, async () => {
      const res = await rawRequest("127.0.0.1", nodes[0].outbound, "GET", "/api", {
        host: "api.local",
        service: name,
      });
      return res.status === 200 ? res : undefined;
    }, 10_000).catch(() => undefined);
    console.log(
      `  GET api.local/api with "service: ${name}" via node-1  ->  ${
        r ? `${r.status}  ${JSON.parse(r.body).instance}` : "not routed within 10 s"
      }`,
    );
  }
}

try {
  await main();
} catch (err) {
  console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
  await shutdown(1);
}
