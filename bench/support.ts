/**
 * @module
 * What the benchmark scripts share: free loopback ports, waiting for a port to open, finding
 * commands, medians, and numeric command-line flags.
 */
import { Registry, silentLogger, type Snapshot } from "../lib/mod.ts";
import { Proxy } from "../proxy/mod.ts";
import type { Network } from "../proxy/io/net.ts";

/** A loopback port that was free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/** Resolves once 127.0.0.1:`port` accepts connections; throws after `ms`. */
export async function waitForPort(port: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`port ${port} did not open within ${ms} ms`);
}

/** True when `cmd` is on PATH. */
export async function hasCommand(cmd: string): Promise<boolean> {
  const r = await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
    .output();
  return r.success;
}

/** The median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Installs the Debian packages that provide `commands` when any is missing (benchmarks run as
 * root on the project's machines); returns the commands still missing afterwards.
 */
export async function ensureCommands(packages: Record<string, string>): Promise<string[]> {
  const missing: string[] = [];
  for (const cmd of Object.keys(packages)) {
    if (!(await hasCommand(cmd)) && !(await hasCommand(`/usr/sbin/${cmd}`))) missing.push(cmd);
  }
  if (missing.length === 0) return [];
  console.error(`installing ${missing.map((c) => packages[c]).join(", ")} with apt-get`);
  for (
    const args of [["update", "-qq"], [
      "install",
      "-y",
      "-qq",
      ...missing.map((c) => packages[c]),
    ]]
  ) {
    const r = await new Deno.Command("apt-get", { args, stdout: "null", stderr: "null" }).output()
      .catch(() => undefined);
    if (!r?.success) break;
  }
  const still: string[] = [];
  for (const cmd of missing) {
    if (!(await hasCommand(cmd)) && !(await hasCommand(`/usr/sbin/${cmd}`))) still.push(cmd);
  }
  return still;
}

/**
 * Child-process mode of a benchmark: serves `snapshot` with a Weft proxy on a free loopback
 * port, prints `{"port": N}` on stdout for the parent, and exits on SIGTERM/SIGINT.
 */
export async function serveProxyChild(snapshot: Snapshot, network?: Network): Promise<void> {
  const proxy = new Proxy({ snapshot, logger: silentLogger, metrics: new Registry(), network });
  const bound = await proxy.start({
    outbound: { hostname: "127.0.0.1", port: 0 },
    inbound: { hostname: "127.0.0.1", port: 0 },
  });
  console.log(JSON.stringify({ port: bound.outbound.port }));
  const stop = async () => {
    await proxy.stop(100);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}

/**
 * The positive number after `name` in the script's arguments, or `fallback` when absent; a bad
 * value exits 2 with one line naming the flag. `integer`: only whole numbers are accepted.
 */
export function positiveFlag(name: string, fallback: number, integer = false): number {
  const args = Deno.args;
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    console.error(
      `${name}: expected a positive ${integer ? "integer" : "number"}, got "${args[i + 1]}"`,
    );
    Deno.exit(2);
  }
  return v;
}
