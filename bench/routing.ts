/**
 * @module
 * Routing micro-benchmarks (issue 5): picks per second for every balancer at 10, 100 and 1000
 * endpoints, and the cost of first-match route lookup over compiled VirtualService rules
 * (worst case: the last of N rules matches, or none does). Prints Markdown tables.
 *
 * Last: proxy throughput with a 20-rule VirtualService (the matching rule is the last one)
 * vs the same upstream without rules, in one proxy process and one run, with wrk against an
 * nginx upstream, alternating the two hosts over rounds (ratio of medians; goal >= 0.95).
 *
 * Run: `deno run --allow-all bench/routing.ts` (add `--quick` for a short run, `--no-proxy` to
 * skip the wrk part, `--proxy-only` for only it). Internal: `--serve-proxy UPSTREAM_PORT` runs the proxy child process.
 */
import { freePort, hasCommand, median, serveProxyChild, waitForPort } from "./support.ts";
import {
  agentV8FlagsArg,
  compileSnapshot,
  type LoadBalancerConfig,
  parseNodeConfig,
} from "../lib/mod.ts";
import { parseResources } from "../lib/resources/registry.ts";
import type { HttpMatchRequest } from "../lib/resources/virtual_service.ts";
import type { Balancer } from "../proxy/balancer/balancer.ts";
import { createBalancer } from "../proxy/balancer/factory.ts";
import { endpoint } from "../tests/support/balancer.ts";
import { compileRouteTable, type MatchRequest } from "../proxy/route_match.ts";

const quick = Deno.args.includes("--quick");
const budgetMs = quick ? 100 : 400;

const configs: LoadBalancerConfig[] = [
  { kind: "round_robin" },
  { kind: "random" },
  { kind: "least_request", choiceCount: 2 },
  { kind: "ring_hash", minimumRingSize: 1024 },
  { kind: "maglev", tableSize: 65537 },
  { kind: "peak_ewma", decayMs: 10_000 },
];
const sizes = [10, 100, 1000];
const keys = Array.from({ length: 4096 }, (_, i) => `user-${i}`);

/** Runs `body(n)` in growing batches until the time budget is spent; returns ops/second. */
function opsPerSecond(body: (iterations: number) => void): number {
  body(10_000); // warm up (JIT)
  let iterations = 10_000;
  let total = 0;
  let elapsed = 0;
  for (let round = 0; round < 60 && elapsed < budgetMs; round++) {
    const start = performance.now();
    body(iterations);
    const took = performance.now() - start;
    elapsed += took;
    total += iterations;
    if (took < 20) iterations *= 2;
  }
  return total / (elapsed / 1000);
}

function benchBalancer(config: LoadBalancerConfig, size: number, weighted: boolean): number {
  const balancer: Balancer = createBalancer(config);
  balancer.update(
    Array.from({ length: size }, (_, i) => endpoint(i, { weight: weighted ? 1 + (i % 4) : 1 })),
  );
  const context = { hashKey: "" as string | undefined };
  const outcome = { latencyMs: 2, ok: true };
  return opsPerSecond((n) => {
    for (let i = 0; i < n; i++) {
      context.hashKey = keys[i & 4095];
      const picked = balancer.pick(context)!;
      balancer.release(picked, outcome);
    }
  });
}

function buildTimeMs(config: LoadBalancerConfig, size: number): number {
  const set = Array.from({ length: size }, (_, i) => endpoint(i));
  const start = performance.now();
  const rounds = 5;
  for (let r = 0; r < rounds; r++) createBalancer(config).update(set);
  return (performance.now() - start) / rounds;
}

function format(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : `${(n / 1e3).toFixed(0)} k`;
}

function runMicroBenchmarks(): void {
  console.log(`# bench/routing (${new Date().toISOString()}, Deno ${Deno.version.deno})\n`);
  console.log("## Picks per second (pick + release; hash balancers get a key per pick)\n");
  console.log(
    `| balancer | ${sizes.map((s) => `${s} eps`).join(" | ")} | ${
      sizes.map((s) => `${s} eps weighted`).join(" | ")
    } | update() at 1000 eps |`,
  );
  console.log(
    `|---|${sizes.map(() => "---:").join("|")}|${sizes.map(() => "---:").join("|")}|---:|`,
  );
  for (const config of configs) {
    const plain = sizes.map((s) => format(benchBalancer(config, s, false)));
    const weighted = sizes.map((s) => format(benchBalancer(config, s, true)));
    const build = buildTimeMs(config, 1000);
    console.log(
      `| ${config.kind} | ${plain.join(" | ")} | ${weighted.join(" | ")} | ${
        build.toFixed(2)
      } ms |`,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Route matching

  /** Rules dispatching on header `service` (plus a uri prefix and a method): indexable. */
  function headerRules(count: number): { match: HttpMatchRequest[]; value: number }[] {
    return Array.from({ length: count }, (_, i) => ({
      match: [{
        headers: { service: { exact: `service-${i}` } },
        uri: { prefix: `/api/` },
        method: { exact: "GET" },
      }],
      value: i,
    }));
  }

  /** Rules on distinct uri prefixes of a few lengths: indexed by path (route_match.ts). */
  function pathRules(count: number): { match: HttpMatchRequest[]; value: number }[] {
    return Array.from({ length: count }, (_, i) => ({
      match: [{ uri: { prefix: `/api/service-${i}/` }, method: { exact: "GET" } }],
      value: i,
    }));
  }

  /**
   * Rules on uri prefixes of a different length each (`/api/service-0/`, `/api/service-00/`,
   * ...): a path index would cost a map lookup per rule, so these are scanned.
   */
  function scannedPathRules(count: number): { match: HttpMatchRequest[]; value: number }[] {
    return Array.from({ length: count }, (_, i) => ({
      match: [{ uri: { prefix: `/api/service-${"0".repeat(i + 1)}/` }, method: { exact: "GET" } }],
      value: i,
    }));
  }

  function requestFor(service: string): MatchRequest {
    return {
      method: "GET",
      path: `/api/${service}/items/42`,
      query: "a=1",
      authority: "orders",
      headers: new Headers({ service, "user-agent": "bench" }),
      sourceLabels: { app: "bench" },
    };
  }

  console.log("\n## Route lookup (first match wins over compiled rules)\n");
  console.log("| rules | shape | request | lookups/s | ns/lookup |");
  console.log("|---:|---|---|---:|---:|");
  for (const count of [1, 20, 1000]) {
    for (
      const [shape, build, serviceOf] of [
        ["header dispatch (indexed)", headerRules, (i: number) => `service-${i}`],
        ["uri prefixes (indexed)", pathRules, (i: number) => `service-${i}`],
        [
          "uri prefixes, one length each (scan)",
          scannedPathRules,
          (i: number) => `service-${"0".repeat(i + 1)}`,
        ],
      ] as const
    ) {
      // A thousand distinct prefix lengths means prefixes (and paths) a thousand bytes long.
      if (build === scannedPathRules && count > 20) continue;
      const table = compileRouteTable(build(count));
      const cases: [string, MatchRequest][] = [
        ["first rule matches", requestFor(serviceOf(0))],
        ["last rule matches", requestFor(serviceOf(count - 1))],
        ["no rule matches", requestFor("nobody")],
      ];
      for (const [label, req] of cases) {
        let sink = 0;
        const rate = opsPerSecond((n) => {
          for (let i = 0; i < n; i++) sink += table(req) ?? -1;
        });
        if (sink === 42.5) console.log(""); // keep the loop observable to the optimiser
        console.log(
          `| ${count} | ${shape} | ${label} | ${format(rate)} | ${(1e9 / rate).toFixed(0)} |`,
        );
      }
    }
  }

  const compileStart = performance.now();
  compileRouteTable(headerRules(1000));
  console.log(`\nCompiling a 1000-rule table: ${(performance.now() - compileStart).toFixed(1)} ms`);
}

// ---------------------------------------------------------------------------------------------
// Proxy throughput: 20-rule VirtualService vs no rules

/** 19 rules that do not match the benchmark's request, then one that does. */
function twentyRuleVirtualService(): string {
  const rules: string[] = [];
  for (let i = 0; i < 19; i++) {
    rules.push(
      i % 2 === 0
        ? `    - name: tenant-${i}
      match: [{ headers: { x-tenant: { exact: "t-${i}" } }, uri: { prefix: /api/ } }]
      route: [{ destination: { host: upstream } }]`
        : `    - name: path-${i}
      match: [{ uri: { prefix: /svc-${i}/ }, method: { exact: GET } }]
      route: [{ destination: { host: upstream } }]`,
    );
  }
  rules.push(`    - name: last
      match: [{ uri: { prefix: / } }]
      route: [{ destination: { host: upstream } }]`);
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ruled }
spec:
  hosts: [ruled]
  http:
${rules.join("\n")}
`;
}

/** Child mode: one proxy; host `upstream` has its default route, host `ruled` 20 rules. */
async function serveProxy(upstreamPort: number): Promise<void> {
  const tuning = parseNodeConfig({}).proxy;
  const snapshot = compileSnapshot({
    nodeName: "bench",
    localServices: [],
    catalog: [{
      service: "upstream",
      node: "upstream-node",
      nodeId: "upstream-node",
      hostname: "127.0.0.1",
      port: upstreamPort,
      protocol: "http",
      labels: {},
      healthy: true,
    }],
    tuning,
    virtualServices: parseResources(twentyRuleVirtualService()),
  }, 1);
  await serveProxyChild(snapshot);
}

async function wrkRps(port: number, host: string, seconds: number): Promise<number> {
  const args = ["-t1", "-c32", `-d${seconds}s`, "-H", `Host: ${host}`, `http://127.0.0.1:${port}/`];
  const out = await new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1];
  if (errors) console.error(`  warning: ${errors} non-2xx responses for host ${host}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
}

async function proxyThroughput(): Promise<void> {
  const nginx = (await hasCommand("nginx")) ? "nginx" : "/usr/sbin/nginx";
  if (!(await hasCommand("wrk")) || !(await hasCommand(nginx))) {
    console.log("\n(proxy throughput skipped: needs wrk and nginx; see bench/http_proxy.ts)");
    return;
  }
  const prefix = await Deno.makeTempDir({ prefix: "weft-routing-" });
  await Deno.mkdir(`${prefix}/tmp`);
  const children: Deno.ChildProcess[] = [];
  try {
    const upstreamPort = freePort();
    await Deno.writeTextFile(
      `${prefix}/up.conf`,
      `worker_processes 1; daemon off; pid ${prefix}/nginx.pid; error_log ${prefix}/error.log warn;
events { worker_connections 1024; }
http { default_type text/plain; keepalive_requests 1000000; client_body_temp_path ${prefix}/tmp;
  proxy_temp_path ${prefix}/tmp; fastcgi_temp_path ${prefix}/tmp; uwsgi_temp_path ${prefix}/tmp;
  scgi_temp_path ${prefix}/tmp;
  server { listen 127.0.0.1:${upstreamPort}; access_log off; location / { return 200 '${
        "x".repeat(100)
      }'; } } }`,
    );
    children.push(
      new Deno.Command(nginx, {
        args: ["-p", prefix, "-c", `${prefix}/up.conf`],
        stdout: "null",
        stderr: "inherit",
      }).spawn(),
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        agentV8FlagsArg,
        new URL(import.meta.url).pathname,
        "--serve-proxy",
        String(upstreamPort),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    children.push(child);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const first = await reader.read();
    reader.releaseLock();
    child.stdout.cancel().catch(() => {});
    const port = JSON.parse(first.value ?? "{}").port as number;
    await waitForPort(upstreamPort);
    await waitForPort(port);
    const seconds = quick ? 2 : 3;
    const rounds = quick ? 2 : 6;
    await wrkRps(port, "upstream", 1);
    await wrkRps(port, "ruled", 1);
    const plain: number[] = [];
    const ruled: number[] = [];
    // Alternate which host goes first, so drift in machine load does not favour one.
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        plain.push(await wrkRps(port, "upstream", seconds));
        ruled.push(await wrkRps(port, "ruled", seconds));
      } else {
        ruled.push(await wrkRps(port, "ruled", seconds));
        plain.push(await wrkRps(port, "upstream", seconds));
      }
    }
    const p = median(plain), v = median(ruled);
    console.log(`\n## Proxy throughput (wrk -t1 -c32 -d${seconds}s, ${rounds} rounds, medians)\n`);
    console.log("| host | routing | req/s |");
    console.log("|---|---|---:|");
    console.log(`| upstream | default route (no rules) | ${p.toFixed(0)} |`);
    console.log(`| ruled | 20-rule VirtualService, last rule matches | ${v.toFixed(0)} |`);
    console.log(`\n20 rules / no rules: ${(v / p).toFixed(3)} (goal >= 0.95)`);
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch {
        // Already exited.
      }
    }
    for (const c of children) await c.status;
    await Deno.remove(prefix, { recursive: true }).catch(() => {});
  }
}

const serveIndex = Deno.args.indexOf("--serve-proxy");
if (serveIndex >= 0) {
  await serveProxy(Number(Deno.args[serveIndex + 1]));
} else {
  if (!Deno.args.includes("--proxy-only")) runMicroBenchmarks();
  if (!Deno.args.includes("--no-proxy")) await proxyThroughput();
}
