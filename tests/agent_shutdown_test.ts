/**
 * @module
 * Stopping an agent as users run it: `deno task weft agent …` as a process group leader,
 * signalled through its group, the way a terminal or a supervisor does it. Stop signals that
 * arrive during the drain must not cut it short: the group leader exits 0 after
 * "node stopped".
 */
import { assert, assertEquals } from "./support/assert.ts";
import { loopbackListenFlags } from "./support/agent_process.ts";

const repoRoot = new URL("..", import.meta.url).pathname;

/** A `deno task weft` process group: stderr lines so far, and its exit. */
interface TaskGroup {
  /** Process id of the group leader, which is also the process group id. */
  pgid: number;
  lines: string[];
  status: Promise<Deno.CommandStatus>;
  drained: Promise<void>;
  signalGroup(signal: Deno.Signal): void;
}

function startWeftTaskGroup(args: string[]): TaskGroup {
  // setsid makes the task runner the leader of a new process group (it execs, keeping the pid,
  // since a freshly spawned child is not a group leader), so the group is exactly this agent.
  const child = new Deno.Command("setsid", {
    args: [Deno.execPath(), "task", "weft", ...args],
    cwd: repoRoot,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines: string[] = [];
  const drained = (async () => {
    let buf = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
    if (buf) lines.push(buf);
  })();
  return {
    pgid: child.pid,
    lines,
    status: child.status,
    drained,
    signalGroup: (signal) => Deno.kill(-child.pid, signal),
  };
}

/** Polls until some stderr line parses as JSON with `msg`; throws after the deadline. */
async function waitForLog(
  group: TaskGroup,
  msg: string,
  deadlineMs: number,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    for (const line of group.lines) {
      try {
        const j = JSON.parse(line);
        if (j.msg === msg) return j;
      } catch { /* the task runner's own line, or not JSON */ }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no "${msg}" log within ${deadlineMs} ms:\n${group.lines.join("\n")}`);
}

Deno.test("two SIGTERMs to a `deno task weft agent` group finish one drain and exit 0", async () => {
  const dir = await Deno.makeTempDir();
  // An upstream that holds its request until the test releases it keeps the proxy draining,
  // so the second SIGTERM certainly lands during the drain.
  const requestArrived = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async () => {
    requestArrived.resolve();
    await release.promise;
    return new Response("late");
  });
  await Deno.writeTextFile(`${dir}/weft.yaml`, "proxy:\n  drainTimeoutMs: 20000\n");
  const group = startWeftTaskGroup([
    "agent",
    "--config",
    `${dir}/weft.yaml`,
    "--name",
    "stop1",
    "--data-dir",
    `${dir}/data`,
    ...loopbackListenFlags,
    "--service",
    `slow=${upstream.addr.port}`,
  ]);
  let conn: Deno.TcpConn | undefined;
  let exited = false;
  try {
    const started = await waitForLog(group, "node started", 40_000);
    const [host, port] = String(started.outbound).split(":");
    conn = await Deno.connect({ hostname: host, port: Number(port) });
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: slow\r\n\r\n"));
    await requestArrived.promise;

    group.signalGroup("SIGTERM");
    await waitForLog(group, "stopping", 10_000);
    await new Promise((r) => setTimeout(r, 50)); // the gap between the two signals, by design
    group.signalGroup("SIGTERM");
    release.resolve(); // the request in flight completes, and with it the drain

    const status = await group.status;
    exited = true;
    await group.drained;
    const output = group.lines.join("\n");
    assertEquals(status.code, 0, `exit ${status.code} (signal ${status.signal}):\n${output}`);
    assert(output.includes('"msg":"node stopped"'), `no "node stopped" in:\n${output}`);
  } finally {
    if (!exited) {
      try {
        group.signalGroup("SIGKILL");
      } catch { /* already gone */ }
      await group.status;
      await group.drained;
    }
    try {
      conn?.close();
    } catch { /* closed by the agent */ }
    release.resolve();
    await upstream.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
