/**
 * @module
 * Undoing a failed start: started parts stop newest first, each once, despite failures.
 */
import { assertEquals } from "../tests/support/assert.ts";
import { createLogger } from "./log.ts";
import { StartedParts } from "./start_rollback.ts";

Deno.test("started parts stop newest first", async () => {
  const stopped: string[] = [];
  const parts = new StartedParts(createLogger("test", "error", () => {}));
  parts.add(() => void stopped.push("store"));
  parts.add(() => Promise.resolve(void stopped.push("proxy")));
  parts.add(() => void stopped.push("admin"));
  await parts.stopAll();
  assertEquals(stopped, ["admin", "proxy", "store"]);
  await parts.stopAll();
  assertEquals(stopped.length, 3);
});

Deno.test("a part that fails to stop is logged and the older ones still stop", async () => {
  const stopped: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const parts = new StartedParts(createLogger("test", "debug", (l) => lines.push(JSON.parse(l))));
  parts.add(() => void stopped.push("store"));
  parts.add(() => Promise.reject(new Error("busy")));
  await parts.stopAll();
  assertEquals(stopped, ["store"]);
  assertEquals(lines.map((l) => [l.msg, l.reason]), [["stopping a started part failed", "busy"]]);
});
