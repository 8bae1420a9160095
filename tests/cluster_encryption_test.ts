/**
 * @module
 * Gossip encryption with real agents: nodes sharing a key form a cluster; a node with another
 * key is kept out and its packets are counted as dropped; a keyring file with the old and new
 * keys lets a node talk to both sides of a rotation; a malformed key is a one-line user error.
 */
import { assert, assertEquals, assertMatch, eventually } from "./support/assert.ts";
import { type AgentProcess, loopbackListenFlags, startAgent } from "./support/agent_process.ts";

function newKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
}

interface Members {
  members: { name: string; state: string }[];
}

async function alive(a: AgentProcess): Promise<string[]> {
  const m = await a.get<Members>("/v1/members");
  return m.members.filter((x) => x.state === "alive").map((x) => x.name).sort();
}

Deno.test("gossip encryption isolates a node with the wrong key; a keyring file holds keys for rotation", async () => {
  const root = await Deno.makeTempDir({ prefix: "weft-enc-" });
  const keyA = newKey();
  const keyB = newKey();
  const agents: AgentProcess[] = [];
  try {
    const args = ["--gossip-profile", "local"];
    const a1 = await startAgent({
      name: "a1",
      dataDir: `${root}/a1`,
      args: [...args, "--encrypt-key", keyA],
    });
    agents.push(a1);
    const a2 = await startAgent({
      name: "a2",
      dataDir: `${root}/a2`,
      join: [a1.gossip!],
      args: [...args, "--encrypt-key", keyA],
    });
    agents.push(a2);
    const intruder = await startAgent({
      name: "b1",
      dataDir: `${root}/b1`,
      join: [a1.gossip!],
      args: [...args, "--encrypt-key", keyB],
    });
    agents.push(intruder);
    await eventually("a1 and a2 see each other", async () => (await alive(a1)).join() === "a1,a2");
    await eventually(
      "the intruder logs that its join failed",
      () => intruder.logs.some((l) => String(l.msg).includes("join failed")),
      30_000,
    );
    assertEquals(await alive(a1), ["a1", "a2"]);
    assertEquals(await alive(intruder), ["b1"]);
    const metrics = await (await fetch(`http://${a1.admin}/metrics`)).text();
    const dropped = [...metrics.matchAll(/^weft_gossip_packets_dropped_total\{[^}]*\} (\d+)/gm)]
      .reduce((s, m) => s + Number(m[1]), 0);
    assert(dropped > 0, "wrong-key traffic is counted as dropped");

    // Rotation, step one: a node whose keyring holds the current key A (primary) and the
    // coming key B joins the A cluster; once every node has B, B can become primary.
    await Deno.writeTextFile(`${root}/keyring`, `# primary first\n${keyA}\n${keyB}\n`);
    const rotating = await startAgent({
      name: "a3",
      dataDir: `${root}/a3`,
      join: [a1.gossip!],
      args: [...args, "--keyring", `${root}/keyring`],
    });
    agents.push(rotating);
    await eventually(
      "a3 joins through the shared old key",
      async () => (await alive(rotating)).includes("a1"),
      30_000,
    );
  } finally {
    await Promise.all(agents.map((a) => a.kill()));
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("gossip keys rotate by reloading keyring files, without a restart", async () => {
  const root = await Deno.makeTempDir({ prefix: "weft-rotate-" });
  const oldKey = newKey();
  const newer = newKey();
  const agents: AgentProcess[] = [];
  const ring = (i: number) => `${root}/ring-${i}`;
  const writeRings = async (...keys: string[]) => {
    for (const i of [1, 2]) await Deno.writeTextFile(ring(i), keys.join("\n") + "\n");
  };
  const reloadAll = async () => {
    for (const a of agents) {
      const r = await fetch(`http://${a.admin}/v1/reload`, { method: "POST" });
      assertEquals(r.status, 200, await r.text());
    }
  };
  try {
    await writeRings(oldKey);
    const args = (i: number) => ["--gossip-profile", "local", "--keyring", ring(i)];
    const r1 = await startAgent({ name: "r1", dataDir: `${root}/r1`, args: args(1) });
    agents.push(r1);
    agents.push(
      await startAgent({ name: "r2", dataDir: `${root}/r2`, join: [r1.gossip!], args: args(2) }),
    );
    await eventually("r1 and r2 form a cluster", async () => (await alive(r1)).join() === "r1,r2");
    for (const step of [[oldKey, newer], [newer, oldKey], [newer]]) {
      await writeRings(...step);
      await reloadAll();
    }
    // Only the new key is left: a node that knows nothing else joins, and r1/r2 stay alive.
    const fresh = await startAgent({
      name: "r3",
      dataDir: `${root}/r3`,
      join: [r1.gossip!],
      args: ["--gossip-profile", "local", "--encrypt-key", newer],
    });
    agents.push(fresh);
    await eventually(
      "r3 joins with the new key",
      async () => (await alive(fresh)).join() === "r1,r2,r3",
      30_000,
    );
    assertEquals(await alive(r1), ["r1", "r2", "r3"]);
  } finally {
    await Promise.all(agents.map((a) => a.kill()));
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a malformed gossip key is a one-line user error", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      new URL("../main.ts", import.meta.url).pathname,
      "agent",
      "--encrypt-key",
      "c2hvcnQ=",
      "--data-dir",
      await Deno.makeTempDir(),
      ...loopbackListenFlags,
    ],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).output();
  assertEquals(out.code, 2);
  const text = new TextDecoder().decode(out.stderr).trim();
  assertMatch(text, /^weft: --encrypt-key: must decode to 32 bytes/);
});
