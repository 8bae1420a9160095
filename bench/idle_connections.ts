/**
 * @module
 * Memory per idle keep-alive connection of a real `weft agent` (issue 16): for each socket
 * backend (`proxy.network`: deno, epoll, uring, set in a config file) it starts an agent with
 * one `--service` pointing at a tiny upstream served by this script, opens N keep-alive
 * connections to the agent's outbound listener, sends one request on each and keeps them open,
 * and reads the agent's VmRSS (/proc/PID/status) before, with the connections open, and after
 * they close (polled for 5 s, since a GC cannot be forced from outside; the lowest value seen
 * is reported). It prints KiB per idle connection ((open - before) / N) and the RSS after close.
 * The agent is stopped by its own handle (SIGTERM to its PID), the upstream and every client
 * connection are closed before the next backend.
 *
 * Run: `deno run -A bench/idle_connections.ts [--connections N[,N…]] [--network B[,B…]]`;
 * defaults 1000,3000 and deno,epoll,uring. N is capped so that this process's N client sockets
 * fit under its file-descriptor soft limit (the agent inherits the same limit); a capped N is
 * said on stderr.
 */
import { startAgent } from "../tests/support/agent_process.ts";

const args = Deno.args;
function listFlag(name: string, fallback: string): string[] {
  const i = args.indexOf(name);
  return (i >= 0 ? args[i + 1] ?? "" : fallback).split(",").filter((s) => s !== "");
}

const sizes = listFlag("--connections", "1000,3000").map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--connections: expected positive integers separated by commas, got "${s}"`);
    Deno.exit(2);
  }
  return n;
});
const backends = listFlag("--network", "deno,epoll,uring");
for (const b of backends) {
  if (!["deno", "epoll", "uring"].includes(b)) {
    console.error(`--network: expected deno, epoll or uring, got "${b}"`);
    Deno.exit(2);
  }
}

/** The soft file-descriptor limit of this process (the agent inherits it). */
async function fdLimit(): Promise<number> {
  const text = await Deno.readTextFile("/proc/self/limits");
  const m = /Max open files\s+(\d+|unlimited)/.exec(text);
  return !m || m[1] === "unlimited" ? Infinity : Number(m[1]);
}

/** VmRSS of `pid` in KiB. */
async function rssKiB(pid: number): Promise<number> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = /VmRSS:\s+(\d+) kB/.exec(text);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

/** The lowest RSS of `pid` seen while polling for `ms` (memory given back shows as a drop). */
async function settledRss(pid: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let low = await rssKiB(pid);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    low = Math.min(low, await rssKiB(pid));
  }
  return low;
}

const request = new TextEncoder().encode("GET /idle HTTP/1.1\r\nHost: up\r\n\r\n");

/** Sends one GET on `conn` and reads its whole response (a Content-Length body). */
async function oneRequest(conn: Deno.Conn): Promise<void> {
  await conn.write(request);
  const buf = new Uint8Array(4096);
  let got = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(got));
    if (n === null) throw new Error("connection closed before the response");
    got += n;
    const text = new TextDecoder().decode(buf.subarray(0, got));
    const headEnd = text.indexOf("\r\n\r\n");
    if (headEnd < 0) continue;
    if (!text.startsWith("HTTP/1.1 200")) throw new Error(`unexpected response: ${text}`);
    const len = Number(/content-length:\s*(\d+)/i.exec(text)?.[1] ?? 0);
    if (got >= headEnd + 4 + len) return;
  }
}

/** Opens `n` connections to `port`, one request each, `batch` at a time. */
async function openIdle(port: number, n: number, batch = 100): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, async () => {
        const c = await Deno.connect({ hostname: "127.0.0.1", port });
        conns.push(c);
        await oneRequest(c);
      }),
    );
  }
  return conns;
}

interface Row {
  network: string;
  n: number;
  beforeKiB: number;
  openKiB: number;
  afterKiB: number;
}

async function measure(network: string, n: number): Promise<Row> {
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("ok"),
  );
  const dir = await Deno.makeTempDir({ prefix: "weft-idle-" });
  const config = `${dir}/config.json`;
  await Deno.writeTextFile(config, JSON.stringify({ proxy: { network } }));
  const agent = await startAgent({
    name: `idle-${network}`,
    dataDir: `${dir}/data`,
    services: [`up=${upstream.addr.port}`],
    args: ["--config", config],
  });
  let conns: Deno.Conn[] = [];
  try {
    // Warm the path (code, pools) with a few connections so "before" is the steady base.
    for (const c of await openIdle(agent.outbound.port, 8, 8)) c.close();
    const beforeKiB = await settledRss(agent.pid, 2000);
    conns = await openIdle(agent.outbound.port, n);
    const openKiB = await settledRss(agent.pid, 1000);
    for (const c of conns) c.close();
    conns = [];
    const afterKiB = await settledRss(agent.pid, 5000);
    return { network, n, beforeKiB, openKiB, afterKiB };
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await agent.stop();
    await upstream.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

const limit = await fdLimit();
const rows: Row[] = [];
for (const network of backends) {
  for (const wanted of sizes) {
    // This process holds the client sockets and the upstream's; the agent holds as many
    // downstream sockets plus its own. Leave room for both under the soft limit.
    const n = Math.min(wanted, Math.floor((limit - 200) / 2));
    if (n < wanted) console.error(`${wanted} connections capped at ${n} (open files ${limit})`);
    try {
      rows.push(await measure(network, n));
    } catch (err) {
      console.error(`${network} ${n}: ${err instanceof Error ? err.message : err}`);
    }
  }
}

const mib = (kib: number) => (kib / 1024).toFixed(1);
console.log("backend  connections  RSS before  RSS open  KiB/idle conn  RSS after close (5 s)");
for (const r of rows) {
  const per = (r.openKiB - r.beforeKiB) / r.n;
  console.log(
    `${r.network.padEnd(8)} ${String(r.n).padStart(11)}  ${mib(r.beforeKiB).padStart(7)} MiB` +
      `  ${mib(r.openKiB).padStart(5)} MiB  ${per.toFixed(1).padStart(13)}` +
      `  ${mib(r.afterKiB).padStart(7)} MiB (+${mib(r.afterKiB - r.beforeKiB)})`,
  );
}
Deno.exit(rows.length === backends.length * sizes.length ? 0 : 1);
