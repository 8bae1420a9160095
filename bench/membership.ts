/**
 * @module
 * Membership benchmark (not run by tests). Prints tables.
 *
 * (a) 5 Weft agents (processes) versus 5 `serf` agents on loopback with LAN timings (serf's
 *     default `lan` profile = memberlist's DefaultLANConfig; Weft's `defaultLanConfig()` has
 *     the same values): time from `kill -9` of one member until every other member reports it
 *     failed/dead. Weft agents are polled on `GET /v1/members`, serf on `serf members`.
 * (b) In-process GossipNodes on real UDP (one process) at 10, 50, 100 nodes: time for a join
 *     and for a death to reach every member, RSS per node and idle CPU.
 *
 * Usage: deno run -A bench/membership.ts [--part a|b|all] [--sizes 10,50,100] [--runs 1]
 *        [--weft agent|standalone]
 *
 * `--weft standalone` runs each Weft member as this script in child mode (a GossipNode plus
 * a minimal `GET /v1/members`), to measure the membership layer as processes before or apart
 * from `main.ts agent`.
 */
import { defaultLanConfig, type GossipConfig, GossipNode, memberJson } from "../gossip/mod.ts";
import { formatHostPort } from "../lib/address.ts";
import { silentLogger } from "../lib/log.ts";
import { Registry } from "../lib/metrics.ts";
import { agentV8FlagsArg } from "../lib/runtime_flags.ts";
import { freePort } from "./support.ts";

const args = parseArgs(Deno.args);
const root = new URL("..", import.meta.url).pathname;

function parseArgs(
  argv: string[],
): { part: string; sizes: number[]; runs: number; weft: string; child?: string[] } {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    part: get("part") ?? "all",
    sizes: (get("sizes") ?? "10,50,100").split(",").map(Number),
    runs: Number(get("runs") ?? "1"),
    weft: get("weft") ?? "agent",
    child: argv[0] === "--child" ? argv.slice(1) : undefined,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  pollMs = 50,
): Promise<number> {
  const start = performance.now();
  while (!(await cond())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out: ${what}`);
    await sleep(pollMs);
  }
  return performance.now() - start;
}

function table(headers: string[], rows: (string | number)[][]): void {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  for (const [i, r] of cells.entries()) {
    console.log(r.map((c, j) => c.padEnd(widths[j])).join("  "));
    if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
}

// ------------------------------------------------------------------ part (a): processes

interface Agent {
  name: string;
  child: Deno.ChildProcess;
  /** Returns name -> state as this agent sees it, or undefined when it does not answer. */
  states(): Promise<Map<string, string> | undefined>;
  cleanup(): Promise<void>;
}

function spawnSerf(name: string, bind: number, rpc: number, join?: number): Promise<Agent> {
  const argv = [
    "agent",
    `-node=${name}`,
    `-bind=127.0.0.1:${bind}`,
    `-rpc-addr=127.0.0.1:${rpc}`,
    "-profile=lan",
    "-log-level=err",
  ];
  if (join) argv.push(`-join=127.0.0.1:${join}`);
  const child = new Deno.Command("serf", { args: argv, stdout: "null", stderr: "null" }).spawn();
  return Promise.resolve({
    name,
    child,
    async states() {
      const out = await new Deno.Command("serf", {
        args: ["members", `-rpc-addr=127.0.0.1:${rpc}`, "-format=json"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (!out.success) return undefined;
      try {
        const j = JSON.parse(new TextDecoder().decode(out.stdout)) as {
          members: { name: string; status: string }[];
        };
        return new Map(j.members.map((m) => [m.name, m.status]));
      } catch {
        return undefined;
      }
    },
    cleanup: () => Promise.resolve(),
  });
}

async function spawnWeft(
  name: string,
  gossip: number,
  admin: number,
  join?: number,
): Promise<Agent> {
  const dataDir = await Deno.makeTempDir({ prefix: "weft-bench-" });
  const argv = [
    "run",
    "-A",
    agentV8FlagsArg,
    `${root}main.ts`,
    "agent",
    "--name",
    name,
    "--data-dir",
    dataDir,
    "--gossip-addr",
    `127.0.0.1:${gossip}`,
    "--admin-addr",
    `127.0.0.1:${admin}`,
    "--outbound-addr",
    "127.0.0.1:0",
    "--inbound-addr",
    "127.0.0.1:0",
    "--p2p-addr",
    "127.0.0.1:0",
  ];
  if (join) argv.push("--join", `127.0.0.1:${join}`);
  const standalone = [
    "run",
    "-A",
    `${root}bench/membership.ts`,
    "--child",
    name,
    String(gossip),
    String(admin),
    String(join ?? 0),
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args: args.weft === "standalone" ? standalone : argv,
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    name,
    child,
    async states() {
      try {
        const res = await fetch(`http://127.0.0.1:${admin}/v1/members`, {
          signal: AbortSignal.timeout(1000),
        });
        if (!res.ok) {
          await res.body?.cancel();
          return undefined;
        }
        const j = await res.json() as { members: { name: string; state: string }[] };
        return new Map(j.members.map((m) => [m.name, m.state]));
      } catch {
        return undefined;
      }
    },
    async cleanup() {
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

async function killAll(agents: Agent[]): Promise<void> {
  for (const a of agents) {
    try {
      a.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await a.child.status.catch(() => {});
    await a.cleanup();
  }
}

/** Forms a 5-member cluster, kill -9s one, returns ms until all others report it dead. */
async function killDetection(
  kind: "serf" | "weft",
  spawn: (name: string, p: number, q: number, join?: number) => Promise<Agent>,
): Promise<{ detectMs: number; formMs: number }> {
  const agents: Agent[] = [];
  try {
    const formStart = performance.now();
    const seedPort = freePort();
    agents.push(await spawn(`${kind}0`, seedPort, freePort()));
    // Let the seed bind before the others join it.
    await waitFor(`${kind}0 up`, async () => (await agents[0].states()) !== undefined, 30_000, 100);
    for (let i = 1; i < 5; i++) {
      agents.push(await spawn(`${kind}${i}`, freePort(), freePort(), seedPort));
    }
    await waitFor(
      `${kind} cluster formed`,
      async () => {
        for (const a of agents) {
          const s = await a.states();
          if (!s || [...s.values()].filter((v) => v === "alive").length !== 5) return false;
        }
        return true;
      },
      60_000,
      100,
    );
    const formMs = performance.now() - formStart;
    const victim = agents[4];
    const killedAt = performance.now();
    victim.child.kill("SIGKILL");
    const rest = agents.slice(0, 4);
    await waitFor(
      `${kind} death seen by all`,
      async () => {
        for (const a of rest) {
          const st = (await a.states())?.get(victim.name);
          if (st !== "failed" && st !== "dead") return false;
        }
        return true;
      },
      120_000,
      50,
    );
    return { detectMs: performance.now() - killedAt, formMs };
  } finally {
    await killAll(agents);
  }
}

async function partA(): Promise<void> {
  console.log(
    "\n(a) kill -9 of 1 of 5 agents on loopback, LAN timings: ms until all 4 others report it dead",
  );
  const rows: (string | number)[][] = [];
  const serf: number[] = [];
  const weft: number[] = [];
  for (let run = 0; run < args.runs; run++) {
    try {
      const s = await killDetection("serf", spawnSerf);
      serf.push(s.detectMs);
      rows.push([run + 1, "serf", s.formMs.toFixed(0), s.detectMs.toFixed(0)]);
    } catch (err) {
      rows.push([run + 1, "serf", "-", `error: ${(err as Error).message}`]);
    }
    try {
      const w = await killDetection("weft", spawnWeft);
      weft.push(w.detectMs);
      rows.push([run + 1, "weft", w.formMs.toFixed(0), w.detectMs.toFixed(0)]);
    } catch (err) {
      rows.push([run + 1, "weft", "-", `error: ${(err as Error).message}`]);
    }
  }
  table(["run", "impl", "form ms", "detect ms"], rows);
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  if (serf.length && weft.length) {
    console.log(
      `median detect: weft ${median(weft).toFixed(0)} ms, serf ${median(serf).toFixed(0)} ms, ` +
        `ratio weft/serf ${(median(weft) / median(serf)).toFixed(2)}`,
    );
  }
}

// ------------------------------------------------------------------ part (b): in-process

function cpuSeconds(): number {
  // utime + stime of this process, in clock ticks (100/s on Linux).
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function startNode(cfg: GossipConfig, name: string): Promise<GossipNode> {
  const n = await GossipNode.create({
    config: cfg,
    name,
    nodeId: crypto.randomUUID(),
    bindAddr: { hostname: "127.0.0.1", port: 0 },
    metadata: {
      inboundAddr: "127.0.0.1:15001",
      adminAddr: "127.0.0.1:15000",
      services: [{
        name: "svc",
        port: 8080,
        protocol: "http",
        labels: { version: "v1" },
        healthy: true,
      }],
    },
    logger: silentLogger,
    metrics: new Registry(),
  });
  n.start();
  return n;
}

function aliveCount(n: GossipNode): number {
  let c = 0;
  for (const m of n.members()) if (m.state === "alive") c++;
  return c;
}

async function partB(): Promise<void> {
  console.log("\n(b) in-process GossipNodes on real UDP (one process), LAN config");
  const cfg = defaultLanConfig();
  const rows: (string | number)[][] = [];
  for (const size of args.sizes) {
    const nodes: GossipNode[] = [];
    const rssBefore = Deno.memoryUsage().rss;
    try {
      for (let i = 0; i < size - 1; i++) nodes.push(await startNode(cfg, `b${i}`));
      const seed = formatHostPort(nodes[0].localAddr());
      for (const n of nodes.slice(1)) await n.join([seed]);
      await waitFor(
        `${size - 1} converged`,
        () => nodes.every((n) => aliveCount(n) === size - 1),
        120_000,
        200,
      );
      // Join: one more node, until every member sees it alive.
      const joinStart = performance.now();
      const late = await startNode(cfg, "late");
      nodes.push(late);
      await late.join([seed]);
      await waitFor(
        "join seen by all",
        () => nodes.every((n) => n.members().some((m) => m.name === "late" && m.state === "alive")),
        120_000,
        20,
      );
      // From process-level start of the node (bind + join + dissemination) to the last member.
      const joinTotal = performance.now() - joinStart;
      // Idle: 10 s with a stable cluster.
      await sleep(2000);
      const cpu0 = cpuSeconds();
      const t0 = performance.now();
      await sleep(10_000);
      const idleCpu = (cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000);
      const rssPerNode = (Deno.memoryUsage().rss - rssBefore) / size;
      // Death: stop one node without leaving, until every other member sees it dead.
      const victim = nodes.pop()!;
      await victim.stop();
      const deathMs = await waitFor(
        "death seen by all",
        () => nodes.every((n) => n.members().find((m) => m.name === "late")?.state === "dead"),
        180_000,
        50,
      );
      rows.push([
        size,
        joinTotal.toFixed(0),
        deathMs.toFixed(0),
        (rssPerNode / 1024 / 1024).toFixed(2),
        `${(idleCpu * 100).toFixed(1)}%`,
        `${((idleCpu * 100) / size).toFixed(2)}%`,
      ]);
    } catch (err) {
      rows.push([size, "-", "-", "-", "-", `error: ${(err as Error).message}`]);
    } finally {
      for (const n of nodes) await n.stop();
    }
    await sleep(500);
  }
  table(
    ["nodes", "join->all ms", "death->all ms", "RSS MiB/node", "idle CPU (proc)", "idle CPU/node"],
    rows,
  );
}

/** Child mode: one GossipNode with LAN timings and a minimal members endpoint. */
async function runChild([name, gossip, admin, join]: string[]): Promise<void> {
  const node = await GossipNode.create({
    config: defaultLanConfig(),
    name,
    nodeId: crypto.randomUUID(),
    bindAddr: { hostname: "127.0.0.1", port: Number(gossip) },
    metadata: { inboundAddr: "127.0.0.1:15001", adminAddr: `127.0.0.1:${admin}`, services: [] },
    logger: silentLogger,
    metrics: new Registry(),
  });
  node.start();
  Deno.serve(
    { hostname: "127.0.0.1", port: Number(admin), onListen: () => {} },
    () =>
      Response.json({
        members: node.members().map(memberJson),
      }),
  );
  if (join !== "0") await node.join([`127.0.0.1:${join}`]);
}

if (args.child) {
  await runChild(args.child);
} else {
  if (args.part === "b" || args.part === "all") await partB();
  if (args.part === "a" || args.part === "all") await partA();
}
