/**
 * @module
 * An agent's process lifetime against a fake node and fake signals: stop signal -> drain ->
 * exit 0, a listener that cannot open -> one line and exit 1, SIGHUP -> reload, a rejected
 * reload keeps running.
 */
import { assertEquals, assertRejects } from "../tests/support/assert.ts";
import { createLogger, ListenError } from "../lib/mod.ts";
import { type RunnableAgent, runUntilStopSignal } from "./agent_run.ts";
import { FakeSignals } from "../tests/support/signals.ts";

function fakeAgent(o: { start?: () => Promise<void>; reload?: () => Promise<void> } = {}) {
  const calls: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const started = Promise.withResolvers<void>();
  const agent: RunnableAgent = {
    log: createLogger("weft", "info", (l) => lines.push(JSON.parse(l))),
    start: async () => {
      calls.push("start");
      await (o.start ?? (() => Promise.resolve()))();
      started.resolve();
    },
    reload: () => {
      calls.push("reload");
      return (o.reload ?? (() => Promise.resolve()))();
    },
    stop: () => Promise.resolve(void calls.push("stop")),
  };
  return { agent, calls, lines, started: started.promise };
}

Deno.test("a stop signal drains the node and the run exits 0", async () => {
  const signals = new FakeSignals();
  const { agent, calls, lines, started } = fakeAgent();
  const run = runUntilStopSignal(agent, { signals });
  await started;
  signals.send("SIGHUP");
  signals.send("SIGTERM");
  assertEquals(await run, 0);
  assertEquals(calls, ["start", "reload", "stop"]);
  assertEquals(lines.at(-1)?.msg, "stopping");
  assertEquals(lines.at(-1)?.signal, "SIGTERM");
});

Deno.test("a stop signal during the start stops the node once it is up", async () => {
  const signals = new FakeSignals();
  const gate = Promise.withResolvers<void>();
  const { agent, calls } = fakeAgent({ start: () => gate.promise });
  const run = runUntilStopSignal(agent, { signals });
  signals.send("SIGINT");
  gate.resolve();
  assertEquals(await run, 0);
  assertEquals(calls, ["start", "stop"]);
});

Deno.test("a listener that cannot open prints one line and exits 1; other errors propagate", async () => {
  const printed: string[] = [];
  const busy = new ListenError("admin API, --admin-addr", "127.0.0.1:1", "address already in use");
  const failing = fakeAgent({ start: () => Promise.reject(busy) });
  const code = await runUntilStopSignal(failing.agent, {
    signals: new FakeSignals(),
    printError: (l) => printed.push(l),
  });
  assertEquals(code, 1);
  assertEquals(printed, [`weft: ${busy.message}`]);
  const broken = fakeAgent({ start: () => Promise.reject(new Error("bug")) });
  await assertRejects(
    () => runUntilStopSignal(broken.agent, { signals: new FakeSignals() }),
    Error,
    "bug",
  );
});

Deno.test("a rejected reload is logged and the node keeps running", async () => {
  const signals = new FakeSignals();
  const { agent, calls, lines, started } = fakeAgent({
    reload: () => Promise.reject(new Error("services[0].port: bad")),
  });
  const run = runUntilStopSignal(agent, { signals });
  await started;
  signals.send("SIGHUP");
  await Promise.resolve();
  await Promise.resolve();
  signals.send("SIGTERM");
  assertEquals(await run, 0);
  assertEquals(calls, ["start", "reload", "stop"]);
  const rejected = lines.find((l) => l.msg === "reload rejected; keeping the running config");
  assertEquals(rejected?.reason, "services[0].port: bad");
});
