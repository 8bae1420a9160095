/**
 * @module
 * The agent's signal handling against a fake signal source: the first stop signal stops,
 * later ones are absorbed while the drain runs, SIGHUP reloads until a stop was asked for.
 */
import { assertEquals } from "../tests/support/assert.ts";
import { createLogger } from "../lib/mod.ts";
import { handleAgentSignals } from "./signals.ts";
import { FakeSignals } from "../tests/support/signals.ts";

function setup() {
  const signals = new FakeSignals();
  const lines: Record<string, unknown>[] = [];
  const log = createLogger("weft", "info", (l) => lines.push(JSON.parse(l)));
  let reloads = 0;
  const handled = handleAgentSignals({ onReload: () => reloads++, log, signals });
  return { signals, lines, handled, reloads: () => reloads };
}

Deno.test("the first SIGTERM asks to stop and later stop signals are caught, not fatal", async () => {
  const { signals, lines, handled } = setup();
  assertEquals(signals.send("SIGTERM"), true);
  assertEquals(await handled.stopRequested, "SIGTERM");
  // During the drain: each of these would kill the process if no listener caught it.
  assertEquals(signals.send("SIGTERM"), true);
  assertEquals(signals.send("SIGINT"), true);
  assertEquals(signals.send("SIGTERM"), true);
  assertEquals(lines.map((l) => [l.msg, l.signal]), [
    ["already stopping; the drain continues", "SIGTERM"],
    ["already stopping; the drain continues", "SIGINT"],
    ["already stopping; the drain continues", "SIGTERM"],
  ]);
});

Deno.test("SIGINT stops as SIGTERM does", async () => {
  const { signals, handled } = setup();
  signals.send("SIGINT");
  assertEquals(await handled.stopRequested, "SIGINT");
});

Deno.test("SIGHUP reloads until a stop signal arrives", () => {
  const { signals, handled, reloads } = setup();
  signals.send("SIGHUP");
  signals.send("SIGHUP");
  assertEquals(reloads(), 2);
  signals.send("SIGTERM");
  assertEquals(signals.send("SIGHUP"), true);
  assertEquals(reloads(), 2);
  handled.dispose();
});

Deno.test("dispose removes every handler", () => {
  const { signals, handled } = setup();
  handled.dispose();
  for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) assertEquals(signals.send(s), false);
});
