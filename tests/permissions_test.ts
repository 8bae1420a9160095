/**
 * @module
 * The node runs with exactly the permissions (and V8 flags) `deno task weft` and `compile.sh`
 * grant (FFI for the epoll socket backend, no subprocesses, no prompts): a missing permission
 * would only show up for users, since the other tests run with --allow-all.
 */
import { agentV8FlagsArg } from "../lib/mod.ts";
import { createEpollNetwork } from "../proxy/mod.ts";
import { assertEquals, assertMatch } from "./support/assert.ts";
import { loopbackListenFlags } from "./support/agent_process.ts";

const root = new URL("..", import.meta.url).pathname;

function taskFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${root}deno.json`));
  const words = String(config.tasks.weft).split(/\s+/);
  return words.filter((w) => w.startsWith("--"));
}

Deno.test("compile.sh grants the same permissions as `deno task weft`", () => {
  const script = Deno.readTextFileSync(`${root}compile.sh`);
  for (const flag of taskFlags().filter((f) => f.startsWith("--allow-"))) {
    assertMatch(script, new RegExp(`${flag}\\b`), `compile.sh lacks ${flag}`);
  }
  const granted = [...script.matchAll(/--allow-[a-z]+/g)].map((m) => m[0]).sort();
  assertEquals(
    [...new Set(granted)],
    taskFlags().filter((f) => f.startsWith("--allow-")).sort(),
  );
});

Deno.test("`deno task weft` and compile.sh pass the agent's V8 flags (lib/runtime_flags.ts)", () => {
  const script = Deno.readTextFileSync(`${root}compile.sh`);
  assertEquals(taskFlags().filter((f) => f.startsWith("--v8-flags")), [agentV8FlagsArg]);
  assertEquals([...script.matchAll(/--v8-flags=\S+/g)].map((m) => m[0]), [agentV8FlagsArg]);
});

const epollLoads = Deno.build.os === "linux" && ["x86_64", "aarch64"].includes(Deno.build.arch);
/** This process has every permission, so the ring loads here exactly where the kernel allows it. */
const uringLoads = epollLoads && createEpollNetwork("uring") !== null;

for (const network of ["deno", "epoll", "uring"] as const) {
  Deno.test({
    name: `an agent on ${network} sockets starts, proxies and stops with the task's permissions`,
    ignore: (network === "epoll" && !epollLoads) || (network === "uring" && !uringLoads),
    fn: () => agentWithTaskPermissions(network, network),
  });
}

Deno.test("an agent's proxy runs on uring by default where the ring loads, else Deno's", () =>
  agentWithTaskPermissions(undefined, uringLoads ? "uring" : "deno"));

Deno.test("proxy.network auto runs the proxy on uring, else on Deno's sockets", () =>
  agentWithTaskPermissions("auto", uringLoads ? "uring" : "deno"));

async function agentWithTaskPermissions(
  setting: "auto" | "deno" | "epoll" | "uring" | undefined,
  network: "deno" | "epoll" | "uring",
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const configFile = `${dir}/weft.yaml`;
  await Deno.writeTextFile(configFile, setting ? `proxy:\n  network: ${setting}\n` : "{}\n");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...taskFlags(),
      `${root}main.ts`,
      "agent",
      "--config",
      configFile,
      "--name",
      "perm",
      "--data-dir",
      `${dir}/data`,
      ...loopbackListenFlags,
    ],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  let log = "";
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + 20_000;
  try {
    while (!log.includes('"node started"') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      log += value;
    }
    assertMatch(log, /"node started"/, `agent did not start:\n${log}`);
    const started = JSON.parse(log.split("\n").find((l) => l.includes('"node started"'))!);
    assertEquals(started.network, network, "the task grants what the backend needs");
    const admin = started.admin;
    const members = await (await fetch(`http://${admin}/v1/members`)).json();
    assertEquals(members.members[0].name, "perm");
    const status = await (await fetch(`http://${admin}/v1/status`)).json();
    assertEquals(status.proxyNetwork, network);
    // The outbound listener answers on this backend: an unknown service is a 404 local reply.
    const reply = await fetch(`http://${started.outbound}/`, { headers: { host: "nowhere" } });
    assertEquals(reply.status, 404);
    assertEquals(reply.headers.get("x-weft-flag"), "NR");
    await reply.body?.cancel();
  } finally {
    child.kill("SIGTERM");
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
    const status = await child.status;
    assertEquals(status.code, 0);
    await Deno.remove(dir, { recursive: true });
  }
}
