/**
 * @module
 * Routing micro-benchmarks (issue 5): picks per second for every balancer at 10, 100 and 1000
 * endpoints, and the cost of first-match route lookup over compiled VirtualService rules
 * (worst case: the last of N rules matches, or none does). Prints Markdown tables.
 *
 * Run: `deno run --allow-all bench/routing.ts` (add `--quick` for a short run). The proxy
 * throughput comparison (20-rule VirtualService vs none) needs the proxy core and is not here.
 */
import type { LoadBalancerConfig } from "../lib/mod.ts";
import type { HttpMatchRequest } from "../lib/resources/virtual_service.ts";
import type { Balancer } from "../proxy/balancer/balancer.ts";
import { createBalancer } from "../proxy/balancer/factory.ts";
import { endpoint } from "../proxy/balancer/testing.ts";
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

console.log(`# bench/routing (${new Date().toISOString()}, Deno ${Deno.version.deno})\n`);
console.log("## Picks per second (pick + release; hash balancers get a key per pick)\n");
console.log(
  `| balancer | ${sizes.map((s) => `${s} eps`).join(" | ")} | ${
    sizes.map((s) => `${s} eps weighted`).join(" | ")
  } | update() at 1000 eps |`,
);
console.log(`|---|${sizes.map(() => "---:").join("|")}|${sizes.map(() => "---:").join("|")}|---:|`);
for (const config of configs) {
  const plain = sizes.map((s) => format(benchBalancer(config, s, false)));
  const weighted = sizes.map((s) => format(benchBalancer(config, s, true)));
  const build = buildTimeMs(config, 1000);
  console.log(
    `| ${config.kind} | ${plain.join(" | ")} | ${weighted.join(" | ")} | ${build.toFixed(2)} ms |`,
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

/** Rules on distinct uri prefixes: no common header, so every lookup is a linear scan. */
function pathRules(count: number): { match: HttpMatchRequest[]; value: number }[] {
  return Array.from({ length: count }, (_, i) => ({
    match: [{ uri: { prefix: `/api/service-${i}/` }, method: { exact: "GET" } }],
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
    const [shape, build] of [
      ["header dispatch (indexed)", headerRules],
      ["uri prefixes (linear scan)", pathRules],
    ] as const
  ) {
    const table = compileRouteTable(build(count));
    const cases: [string, MatchRequest][] = [
      ["first rule matches", requestFor("service-0")],
      ["last rule matches", requestFor(`service-${count - 1}`)],
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
