/**
 * @module
 * The stop order of a node: background work first, then leave, replication, drain, store and
 * the admin API last; a failed `left` announcement does not stop the shutdown; absent parts
 * are skipped.
 */
import { assertEquals, assertRejects } from "../tests/support/assert.ts";
import { createLogger } from "./log.ts";
import { leaveTimeoutMs, stopNode, type StoppingNode } from "./node_stop.ts";

function recordingNode(leave: () => Promise<void> = () => Promise.resolve()) {
  const steps: string[] = [];
  const node: StoppingNode = {
    background: [() => steps.push("seed join"), () => steps.push("health")],
    membership: {
      leave: (ms) => {
        steps.push(`leave ${ms}`);
        return leave();
      },
      stop: () => Promise.resolve(void steps.push("membership")),
    },
    replication: { stop: () => Promise.resolve(void steps.push("replication")) },
    proxy: { stop: (ms) => Promise.resolve(void steps.push(`drain ${ms}`)) },
    store: { close: () => Promise.resolve(void steps.push("store")) },
    admin: { shutdown: () => Promise.resolve(void steps.push("admin")) },
  };
  return { steps, node };
}

function capturingLog() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger("test", "debug", (l) => lines.push(JSON.parse(l))) };
}

Deno.test("a node stops background work, leaves, drains, closes the store, then the admin API", async () => {
  const { steps, node } = recordingNode();
  await stopNode(node, { drainTimeoutMs: 5000, log: capturingLog().log });
  assertEquals(steps, [
    "seed join",
    "health",
    `leave ${leaveTimeoutMs}`,
    "membership",
    "replication",
    "drain 5000",
    "store",
    "admin",
  ]);
});

Deno.test("a leave that does not complete is logged and the shutdown goes on", async () => {
  const { steps, node } = recordingNode(() => Promise.reject(new Error("no ack")));
  const { lines, log } = capturingLog();
  await stopNode(node, { drainTimeoutMs: 0, log });
  assertEquals(steps.at(-1), "admin");
  assertEquals(lines.map((l) => [l.msg, l.reason]), [["leave did not complete", "no ack"]]);
});

Deno.test("parts that never started are skipped; other failures reject", async () => {
  const steps: string[] = [];
  await stopNode({
    background: [],
    admin: { shutdown: () => Promise.resolve(void steps.push("admin")) },
  }, {
    drainTimeoutMs: 0,
    log: capturingLog().log,
  });
  assertEquals(steps, ["admin"]);
  await assertRejects(
    () =>
      stopNode({ background: [], store: { close: () => Promise.reject(new Error("disk")) } }, {
        drainTimeoutMs: 0,
        log: capturingLog().log,
      }),
    Error,
    "disk",
  );
});
