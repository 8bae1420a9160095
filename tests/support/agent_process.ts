/**
 * @module
 * Runs real `weft agent` processes for multi-process tests and benchmarks: every port is 0,
 * and the bound addresses are read from the agent's "node started" log line. Each handle
 * stops its process (SIGTERM, or SIGKILL for crash tests) and its log reader.
 */

import { agentV8FlagsArg } from "../../lib/runtime_flags.ts";

const mainTs = new URL("../../main.ts", import.meta.url).pathname;

/** Every listener of an agent on a free loopback port, as command-line flags. */
export const loopbackListenFlags: readonly string[] = [
  "--admin-addr",
  "127.0.0.1:0",
  "--outbound-addr",
  "127.0.0.1:0",
  "--inbound-addr",
  "127.0.0.1:0",
  "--gossip-addr",
  "127.0.0.1:0",
  "--p2p-addr",
  "127.0.0.1:0",
];

export interface AgentOptions {
  name: string;
  dataDir: string;
  services?: string[];
  join?: string[];
  /** Extra flags, e.g. `["--log-level", "debug"]`. */
  args?: string[];
  /** Fixed addresses (default: 127.0.0.1:0 for each). */
  gossipAddr?: string;
  adminAddr?: string;
  env?: Record<string, string>;
  /** Collect stdout lines (access log) into `stdout`. */
  captureStdout?: boolean;
}

export interface AgentProcess {
  name: string;
  pid: number;
  admin: string;
  outbound: { hostname: string; port: number };
  inbound: { hostname: string; port: number };
  /** Gossip address to give others as `--join` (may be absent before gossip is wired). */
  gossip?: string;
  /** Every log line so far (JSON objects). */
  logs: Record<string, unknown>[];
  /** Stdout lines so far, when `captureStdout` was set. */
  stdout: string[];
  /** GET a JSON admin endpoint. */
  get<T = unknown>(path: string): Promise<T>;
  /** SIGTERM and wait; returns the exit code. */
  stop(): Promise<number>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
}

/** Starts an agent and resolves once it has logged its bound addresses (or rejects). */
export async function startAgent(o: AgentOptions, timeoutMs = 40_000): Promise<AgentProcess> {
  const args = [
    "run",
    agentV8FlagsArg,
    "--allow-all",
    mainTs,
    "agent",
    "--name",
    o.name,
    "--data-dir",
    o.dataDir,
    "--admin-addr",
    o.adminAddr ?? "127.0.0.1:0",
    "--outbound-addr",
    "127.0.0.1:0",
    "--inbound-addr",
    "127.0.0.1:0",
    "--gossip-addr",
    o.gossipAddr ?? "127.0.0.1:0",
    "--p2p-addr",
    "127.0.0.1:0",
    ...(o.services ?? []).flatMap((s) => ["--service", s]),
    ...(o.join ?? []).flatMap((j) => ["--join", j]),
    ...(o.args ?? []),
  ];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdout: o.captureStdout ? "piped" : "null",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1", ...o.env },
  }).spawn();
  const logs: Record<string, unknown>[] = [];
  const started = Promise.withResolvers<Record<string, unknown>>();
  const rawLines: string[] = [];
  const reader = (async () => {
    const dec = new TextDecoderStream();
    let buf = "";
    for await (const chunk of child.stderr.pipeThrough(dec)) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (rawLines.length < 200) rawLines.push(line);
        try {
          const j = JSON.parse(line);
          if (logs.length < 10_000) logs.push(j);
          if (j.msg === "node started") started.resolve(j);
        } catch {
          // not a log line (e.g. a one-line CLI error)
        }
      }
    }
  })();
  const stdoutLines: string[] = [];
  const stdoutReader = o.captureStdout
    ? (async () => {
      let buf = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          if (stdoutLines.length < 100_000) stdoutLines.push(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      }
    })()
    : Promise.resolve();
  const exited = child.status.then((s) => s.code);
  const timer = setTimeout(() => started.reject(new Error("timeout")), timeoutMs);
  let info: Record<string, unknown>;
  try {
    info = await Promise.race([
      started.promise,
      exited.then((code) => {
        throw new Error(`exited with ${code}`);
      }),
    ]);
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await exited;
    await reader.catch(() => {});
    await stdoutReader.catch(() => {});
    throw new Error(
      `agent ${o.name} did not start (${err instanceof Error ? err.message : err}):\n${
        rawLines.join("\n")
      }`,
    );
  } finally {
    clearTimeout(timer);
  }
  const hp = (s: string) => {
    const i = s.lastIndexOf(":");
    return { hostname: s.slice(0, i), port: Number(s.slice(i + 1)) };
  };
  const admin = String(info.admin);
  let done = false;
  const finish = async () => {
    await exited;
    await reader.catch(() => {});
    await stdoutReader.catch(() => {});
    done = true;
  };
  return {
    name: o.name,
    pid: child.pid,
    admin,
    outbound: hp(String(info.outbound)),
    inbound: hp(String(info.inbound)),
    gossip: info.gossip ? String(info.gossip) : undefined,
    logs,
    stdout: stdoutLines,
    async get<T>(path: string): Promise<T> {
      const r = await fetch(`http://${admin}${path}`);
      if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
      return await r.json() as T;
    },
    async stop() {
      if (!done) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
      const code = await exited;
      await finish();
      return code;
    },
    async kill() {
      if (!done) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await finish();
    },
  };
}
