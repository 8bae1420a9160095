/**
 * @module
 * Benchmark: how long a policy change takes to reach every node. Starts N in-process libp2p
 * replication nodes on loopback (each dials a few random earlier nodes, as membership-driven
 * dialing would, without a full mesh), applies 20 changes on random nodes and measures the
 * time from `apply()` until every node's store holds the change. Prints p50/p99 per N.
 *
 * Run: `deno run --allow-all bench/policy_propagation.ts [N...]` (default 5 20 50);
 * `DIALS=k` sets how many peers each node dials (default 6).
 */
import { PolicyReplicator } from "../gossip/pubsub.ts";
import type { Resource } from "../lib/resources/kind.ts";
import { PolicyStore } from "../lib/store/store.ts";

const applies = 20;
const dials = Number(Deno.env.get("DIALS") ?? "6");

function serviceEntry(name: string, port: number): Resource {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "ServiceEntry",
    metadata: { name, namespace: "default", labels: {} },
    spec: {
      hosts: [`${name}.example.com`],
      ports: [{ number: port, protocol: "HTTP", name: "http" }],
      resolution: "STATIC",
      endpoints: [{ address: "127.0.0.1" }],
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function runCluster(n: number): Promise<{ samples: number[]; startupMs: number }> {
  const t0 = performance.now();
  const nodes: { store: PolicyStore; rep: PolicyReplicator }[] = [];
  for (let i = 0; i < n; i++) {
    const store = await PolicyStore.open({ nodeId: `node-${String(i).padStart(3, "0")}` });
    const rep = await PolicyReplicator.start({ store, listenAddr: "127.0.0.1:0" });
    nodes.push({ store, rep });
  }
  for (let i = 1; i < n; i++) {
    const candidates = [...Array(i).keys()].sort(() => Math.random() - 0.5).slice(0, dials);
    await Promise.all(candidates.map(async (j) => {
      for (let attempt = 1; attempt <= 3; attempt++) {
        try {
          return await nodes[i].rep.dial(nodes[j].rep.advertisedAddr());
        } catch (err) {
          if (attempt === 3) console.error(`dial ${i}->${j} failed: ${err}`);
        }
      }
    }));
  }
  // Let gossipsub form its mesh (heartbeat 1 s) before measuring.
  await new Promise((r) => setTimeout(r, 2500));
  const startupMs = performance.now() - t0;
  const samples: number[] = [];
  try {
    for (let a = 0; a < applies; a++) {
      const name = `svc-${a}`;
      const key = `ServiceEntry/default/${name}`;
      const origin = nodes[Math.floor(Math.random() * n)];
      let remaining = n;
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      const offs = nodes.map((node) =>
        node.store.onChange((ev) => {
          if (ev.entry.key === key && --remaining === 0) resolve();
        })
      );
      const start = performance.now();
      await origin.store.apply([serviceEntry(name, 1000 + a)]);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<void>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`apply ${a} not everywhere after 10 s`)), 10_000);
      });
      try {
        await Promise.race([done, timeout]);
        samples.push(performance.now() - start);
      } catch (err) {
        console.error(String(err), `(${remaining} nodes missing)`);
        samples.push(Infinity);
      } finally {
        clearTimeout(timer);
        for (const off of offs) off();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await Promise.all(nodes.map((x) => x.rep.stop()));
    await Promise.all(nodes.map((x) => x.store.close()));
  }
  return { samples, startupMs };
}

const sizes = Deno.args.length > 0 ? Deno.args.map(Number) : [5, 20, 50];
const rows: string[][] = [];
for (const n of sizes) {
  const { samples, startupMs } = await runCluster(n);
  const sorted = [...samples].sort((a, b) => a - b);
  rows.push([
    String(n),
    String(dials),
    String(applies),
    percentile(sorted, 50).toFixed(1),
    percentile(sorted, 99).toFixed(1),
    sorted[sorted.length - 1].toFixed(1),
    (startupMs / 1000).toFixed(1),
  ]);
  console.error(`N=${n} done`);
}
const header = ["nodes", "dials/node", "applies", "p50 ms", "p99 ms", "max ms", "startup s"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i])).join("  ");
console.log(line(header));
for (const r of rows) console.log(line(r));
