/**
 * @module
 * `deno task bench compile`: time to compile a snapshot from large policy, in process. Cases:
 * ServiceEntries with 10k, 50k and 200k hosts in total (1,000 hosts per resource, the limit),
 * and a VirtualService-heavy store (VirtualServices with routes to subsets of DestinationRules
 * over catalog services). Prints the median and the longest of a few runs per case: a compile
 * runs on the event loop, so the longest is how long it holds the node.
 */
import { compileSnapshot, type SnapshotInput } from "../lib/compile/mod.ts";
import { proxyTuningSchema } from "../lib/config.ts";
import type { Resource } from "../lib/resources/kind.ts";
import type { CatalogEndpoint } from "../lib/snapshot.ts";

const tuning = proxyTuningSchema.parse({});

function resource(kind: string, name: string, spec: unknown): Resource {
  return {
    apiVersion: "networking.istio.io/v1",
    kind,
    metadata: { name, namespace: "default", labels: {} },
    spec,
  };
}

/** `total` hosts over ServiceEntries of 1,000 hosts, two ports, DNS resolution. */
function serviceEntries(total: number): SnapshotInput {
  const perResource = 1000;
  const entries: Resource[] = [];
  for (let r = 0; r * perResource < total; r++) {
    const hosts: string[] = [];
    for (let i = 0; i < perResource && r * perResource + i < total; i++) {
      hosts.push(`h${r}-${i}.example.com`);
    }
    entries.push(resource("ServiceEntry", `se-${r}`, {
      hosts,
      ports: [{ number: 80, protocol: "HTTP", name: "http" }, {
        number: 443,
        protocol: "TLS",
        name: "tls",
      }],
      resolution: "DNS",
    }));
  }
  return { nodeName: "n0", localServices: [], catalog: [], tuning, serviceEntries: entries };
}

/**
 * `services` catalog services on 3 nodes each, one DestinationRule with 4 subsets and one
 * VirtualService with 10 routes (header matches, weighted split over subsets) per service.
 */
function virtualServices(services: number): SnapshotInput {
  const catalog: CatalogEndpoint[] = [];
  const vss: Resource[] = [];
  const drs: Resource[] = [];
  for (let s = 0; s < services; s++) {
    const service = `svc-${s}`;
    for (let n = 0; n < 3; n++) {
      catalog.push({
        service,
        node: `node-${n}`,
        nodeId: `id-${n}`,
        hostname: `10.1.${n}.${(s % 250) + 1}`,
        port: 8000 + (s % 1000),
        protocol: "http",
        labels: { version: `v${n}` },
        healthy: true,
      });
    }
    drs.push(resource("DestinationRule", `dr-${s}`, {
      host: service,
      trafficPolicy: { loadBalancer: { simple: "LEAST_REQUEST" } },
      subsets: [0, 1, 2, 3].map((v) => ({ name: `v${v}`, labels: { version: `v${v}` } })),
    }));
    vss.push(resource("VirtualService", `vs-${s}`, {
      hosts: [service, `${service}.default.svc.cluster.local`],
      http: Array.from({ length: 10 }, (_, i) => ({
        name: `r${i}`,
        match: [{ headers: { "x-user": { exact: `u${i}` } }, uri: { prefix: `/p${i}` } }],
        route: [
          { destination: { host: service, subset: `v${i % 3}` }, weight: 80 },
          { destination: { host: service, subset: "v3" }, weight: 20 },
        ],
        timeout: "2s",
        retries: { attempts: 2, perTryTimeout: "500ms", retryOn: "5xx,connect-failure" },
      })),
    }));
  }
  return {
    nodeName: "n0",
    localServices: [],
    catalog,
    tuning,
    virtualServices: vss,
    destinationRules: drs,
  };
}

function measure(name: string, input: SnapshotInput, runs: number): void {
  const times: number[] = [];
  let size = 0;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const snapshot = compileSnapshot(input, i + 1);
    times.push(performance.now() - start);
    size = snapshot.outbound.size;
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const longest = times[times.length - 1];
  console.log(
    `${name.padEnd(40)} ${String(size).padStart(7)} hosts  median ${
      median.toFixed(0).padStart(6)
    } ms  longest ${longest.toFixed(0).padStart(6)} ms`,
  );
}

const only = Deno.args[0];
const cases: [string, () => SnapshotInput, number][] = [
  ["ServiceEntry 10k hosts (10 x 1,000)", () => serviceEntries(10_000), 5],
  ["ServiceEntry 50k hosts (50 x 1,000)", () => serviceEntries(50_000), 3],
  ["ServiceEntry 200k hosts (200 x 1,000)", () => serviceEntries(200_000), 3],
  ["VirtualService 2,000 x 10 routes + DRs", () => virtualServices(2000), 3],
];
for (const [name, build, runs] of cases) {
  if (only && !name.includes(only)) continue;
  measure(name, build(), runs);
}
