/**
 * @module
 * Persistence of the policy store: restore after restart, compaction, and recovery from a
 * torn or corrupt log tail that keeps every record before it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createLogger, type Logger } from "../lib/log.ts";
import { PolicyLog } from "../lib/store/persist.ts";
import { PolicyStore } from "../lib/store/store.ts";
import { serviceEntry } from "./support/store.ts";

function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger("test", "debug", (l) => lines.push(l)), lines };
}

Deno.test("a reopened store has every acknowledged write, deletes included", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await PolicyStore.open({ nodeId: "a", dataDir: dir });
    await a.apply([serviceEntry("one"), serviceEntry("two")]);
    await a.apply([serviceEntry("two", 9)]);
    await a.delete("ServiceEntry", "default", "one");
    const digest = a.digest();
    await a.close();
    const b = await PolicyStore.open({ nodeId: "a", dataDir: dir });
    assert.equal(b.digest(), digest);
    assert.equal(b.get("ServiceEntry", "default", "one"), undefined);
    assert.equal(b.stats().tombstones, 1);
    assert.equal(b.list().length, 1);
    // New writes after a restart still order after the restored ones.
    await b.apply([serviceEntry("two", 10)]);
    assert(
      b.get("ServiceEntry", "default", "two")!.ts.wall >=
        a.entry("ServiceEntry/default/two")!.ts.wall,
    );
    await b.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compaction writes a snapshot, empties the log and restores the same content", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await PolicyStore.open({ nodeId: "a", dataDir: dir, compactAfterRecords: 5 });
    for (let i = 0; i < 12; i++) await a.apply([serviceEntry(`svc-${i}`)]);
    const logSize = (await Deno.stat(PolicyLog.logPath(join(dir, "policy")))).size;
    const snapSize = (await Deno.stat(PolicyLog.snapshotPath(join(dir, "policy")))).size;
    assert(snapSize > 0);
    assert(logSize < snapSize, `log ${logSize} should be smaller than snapshot ${snapSize}`);
    const digest = a.digest();
    await a.close();
    const b = await PolicyStore.open({ nodeId: "a", dataDir: dir });
    assert.equal(b.digest(), digest);
    assert.equal(b.stats().count, 12);
    await b.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (
  const [name, damage] of [
    [
      "a torn tail (half a record)",
      (bytes: Uint8Array, lastStart: number) =>
        bytes.slice(0, lastStart + Math.floor((bytes.length - lastStart) / 2)),
    ],
    ["a corrupt tail (flipped byte)", (bytes: Uint8Array, _lastStart: number) => {
      const out = bytes.slice();
      out[out.length - 3] ^= 0xff;
      return out;
    }],
    ["garbage appended", (bytes: Uint8Array, _lastStart: number) => {
      const out = new Uint8Array(bytes.length + 100);
      out.set(bytes);
      out.set(crypto.getRandomValues(new Uint8Array(100)), bytes.length);
      return out;
    }],
  ] as const
) {
  Deno.test(`${name} is truncated with a warning and earlier records survive`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const a = await PolicyStore.open({ nodeId: "a", dataDir: dir });
      await a.apply([serviceEntry("first")]);
      await a.apply([serviceEntry("second")]);
      const logPath = PolicyLog.logPath(join(dir, "policy"));
      const beforeLast = (await Deno.stat(logPath)).size;
      await a.apply([serviceEntry("third")]);
      await a.close();
      const bytes = await Deno.readFile(logPath);
      await Deno.writeFile(logPath, damage(bytes, beforeLast));
      const { log, lines } = capturingLogger();
      const b = await PolicyStore.open({ nodeId: "a", dataDir: dir, log });
      assert(b.get("ServiceEntry", "default", "first"));
      assert(b.get("ServiceEntry", "default", "second"));
      const garbageOnly = name === "garbage appended";
      assert.equal(Boolean(b.get("ServiceEntry", "default", "third")), garbageOnly);
      assert(lines.some((l) => l.includes("torn or corrupt tail")), lines.join("\n"));
      // The log was cut back, so new appends land after valid records and survive.
      await b.apply([serviceEntry("fourth")]);
      await b.close();
      const c = await PolicyStore.open({ nodeId: "a", dataDir: dir });
      assert(c.get("ServiceEntry", "default", "fourth"));
      assert(c.get("ServiceEntry", "default", "first"));
      await c.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("writes acknowledged before kill -9 survive, also across compactions", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("./support/store_kill_child.ts", import.meta.url).pathname,
        dir,
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const acked: string[] = [];
    const decoder = new TextDecoder();
    let text = "";
    const reader = child.stdout.getReader();
    const deadline = Date.now() + 20_000;
    while (acked.length < 25 && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      const lines = text.split("\n");
      text = lines.pop()!;
      acked.push(...lines.filter((l) => l));
    }
    child.kill("SIGKILL");
    await reader.cancel().catch(() => {});
    await child.status;
    assert(acked.length >= 25, `child acknowledged only ${acked.length} writes`);
    const store = await PolicyStore.open({ nodeId: "parent", dataDir: dir });
    const missing = acked.filter((name) => !store.get("ServiceEntry", "default", name));
    assert.deepEqual(missing, []);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
