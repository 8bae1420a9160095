/**
 * @module
 * The size limits where resources enter a node: the admin API (400 naming the limit), the
 * store's apply (per resource and for the whole store), replication (decode and merge), and a
 * restart on a data dir that holds an entry over a limit or otherwise invalid: it is
 * quarantined with a log line naming it, and the node starts with the rest.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { resourceRoutes } from "../lib/admin/resources.ts";
import { DecodeError } from "../lib/codec.ts";
import { compileSnapshot } from "../lib/compile/mod.ts";
import { proxyTuningSchema } from "../lib/config.ts";
import { UserError } from "../lib/errors.ts";
import { createLogger, type Logger } from "../lib/log.ts";
import type { Resource } from "../lib/resources/kind.ts";
import { RESOURCE_LIMITS } from "../lib/resources/limits.ts";
import { PolicyLog } from "../lib/store/persist.ts";
import {
  decodeEntry,
  decodeRawEntry,
  encodeEntry,
  PolicyStore,
  type RawEntry,
  type ReplicatedEntry,
} from "../lib/store/store.ts";
import { serviceEntry } from "./support/store.ts";
import { decodeSyncEntries } from "../gossip/pubsub.ts";

function capturingLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger("test", "debug", (l) => lines.push(l)), lines };
}

/** A STATIC ServiceEntry with `n` hosts `NAME-i.example.com`. */
function manyHosts(name: string, n: number): Resource {
  const se = serviceEntry(name);
  const spec = se.spec;
  return {
    ...se,
    spec: { ...spec, hosts: Array.from({ length: n }, (_, i) => `${name}-${i}.ex`) },
  };
}

function remote(r: Resource, wall = Date.now()): ReplicatedEntry {
  const key = `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
  return { key, ts: { wall, logical: 0 }, origin: "peer", resource: r };
}

Deno.test("admin: a ServiceEntry with 200,000 hosts answers 400 naming the limit", async () => {
  const store = await PolicyStore.open({ nodeId: "n1" });
  const app = resourceRoutes({ store, nodeName: "n1" });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  try {
    const body = JSON.stringify(manyHosts("huge", 200_000));
    assert(body.length < 4 * 1024 * 1024, "under the admin body limit");
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/v1/resources`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    const json = await res.json();
    assert.equal(res.status, 400, JSON.stringify(json).slice(0, 300));
    assert.equal(json.error, "[doc 1] spec.hosts: at most 1000 hosts per resource, got 200000");
    assert.deepEqual(json.details, [{
      path: "[doc 1] spec.hosts",
      message: "at most 1000 hosts per resource, got 200000",
    }]);
    assert.equal(store.stats().count, 0);
  } finally {
    await server.shutdown();
    await store.close();
  }
});

Deno.test("store: apply refuses a resource over a limit and a store past its size", async () => {
  const limits = { ...RESOURCE_LIMITS, storeResources: 2 };
  const store = await PolicyStore.open({ nodeId: "n1", limits });
  try {
    // Resources that skipped the parser are still held to the limits.
    await assert.rejects(
      store.apply([serviceEntry("ok"), manyHosts("big", 1001)]),
      (err) =>
        err instanceof UserError &&
        err.message === "[doc 2] spec.hosts: at most 1000 hosts per resource, got 1001",
    );
    assert.equal(store.stats().count, 0, "nothing of the refused batch applied");
    await store.apply([serviceEntry("a"), serviceEntry("b")]);
    await assert.rejects(
      store.apply([serviceEntry("c")], { dryRun: true }),
      (err) =>
        err instanceof UserError &&
        err.message === "(store): at most 2 resources in the store, got 3",
    );
    await assert.rejects(store.apply([serviceEntry("c")]), UserError);
    // Updating what is there does not grow the store; after a delete there is room again.
    assert.equal((await store.apply([serviceEntry("a", 9)]))[0].result, "updated");
    await store.delete("ServiceEntry", "default", "b");
    assert.equal((await store.apply([serviceEntry("c")]))[0].result, "created");
  } finally {
    await store.close();
  }
});

Deno.test("replication: oversized entries are refused by decode and by merge", async () => {
  const big = remote(manyHosts("big", 1001));
  assert.throws(
    () => decodeEntry(encodeEntry(big)),
    (err) =>
      err instanceof DecodeError &&
      err.message.includes("spec.hosts: at most 1000 hosts per resource, got 1001"),
  );
  const { log, lines } = capturingLogger();
  const limits = { ...RESOURCE_LIMITS, storeResources: 2 };
  const store = await PolicyStore.open({ nodeId: "n1", limits, log });
  try {
    // merge holds entries handed to it directly to the limits too; the rest of the batch merges.
    const won = await store.merge([
      big,
      remote(serviceEntry("a")),
      remote(serviceEntry("b")),
      remote(serviceEntry("c")),
    ]);
    assert.deepEqual(won.map((e) => e.key), ["ServiceEntry/default/a", "ServiceEntry/default/b"]);
    assert.equal(store.get("ServiceEntry", "default", "big"), undefined);
    assert(
      lines.some((l) =>
        l.includes("replicated policy entry refused") && l.includes("ServiceEntry/default/big") &&
        l.includes("at most 1000 hosts per resource, got 1001")
      ),
      lines.join("\n"),
    );
    assert(
      lines.some((l) =>
        l.includes("ServiceEntry/default/c") && l.includes("at most 2 resources in the store")
      ),
      lines.join("\n"),
    );
  } finally {
    await store.close();
  }
});

Deno.test("restart: an invalid stored entry is quarantined and the node starts with the rest", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Written as an older version without limits would have: with the persist module's writer.
    const policyDir = join(dir, "policy");
    const { store: writer } = await PolicyLog.open<RawEntry>(
      policyDir,
      { encode: encodeEntry, decode: decodeRawEntry },
      createLogger("test", "error", () => {}),
    );
    const t = Date.now();
    const unknownField = serviceEntry("odd");
    (unknownField.spec as Record<string, unknown>).workloadSelector = { labels: { a: "b" } };
    await writer.append([remote(serviceEntry("before"), t)]);
    await writer.append([remote(manyHosts("huge", 200_000), t + 1), remote(unknownField, t + 2)]);
    await writer.append([remote(serviceEntry("after"), t + 3)]);
    writer.close();

    const { log, lines } = capturingLogger();
    const started = performance.now();
    const store = await PolicyStore.open({ nodeId: "n1", dataDir: dir, log });
    try {
      const ms = performance.now() - started;
      assert(ms < 5000, `store took ${ms} ms to open`);
      assert.deepEqual(store.list().map((e) => e.key), [
        "ServiceEntry/default/after",
        "ServiceEntry/default/before",
      ]);
      assert.deepEqual(store.quarantined().map((q) => q.key), [
        "ServiceEntry/default/huge",
        "ServiceEntry/default/odd",
      ]);
      const quarantineLine = (key: string) =>
        lines.find((l) => l.includes("policy store entry quarantined") && l.includes(key));
      assert.match(
        quarantineLine("ServiceEntry/default/huge") ?? lines.join("\n"),
        /spec\.hosts: at most 1000 hosts per resource, got 200000/,
      );
      assert.match(
        quarantineLine("ServiceEntry/default/odd") ?? lines.join("\n"),
        /spec\.workloadSelector: unknown field/,
      );
      const kept = await Deno.readTextFile(join(policyDir, "quarantine.jsonl"));
      assert.equal(kept.trim().split("\n").length, 2);

      // Not routable: the snapshot compiled from the store has the good entries only.
      const snapshot = compileSnapshot({
        nodeName: "n1",
        localServices: [],
        catalog: [],
        tuning: proxyTuningSchema.parse({}),
        serviceEntries: store.resources("ServiceEntry"),
      }, 1);
      assert(snapshot.outbound.has("before.example.com"));
      assert(snapshot.outbound.has("after.example.com"));
      assert(!snapshot.outbound.has("huge-0.ex"));
      assert(!snapshot.outbound.has("odd.example.com"));
      // And the store takes writes as usual.
      assert.equal((await store.apply([serviceEntry("later")]))[0].result, "created");
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replication: a sync batch merges its valid entries when one is refused", () => {
  const batch = [
    encodeEntry(remote(serviceEntry("a"))),
    encodeEntry(remote(manyHosts("big", 1001))),
    encodeEntry(remote(serviceEntry("b"))),
  ];
  const { entries, refused } = decodeSyncEntries(batch);
  assert.deepEqual(entries.map((e) => e.key), ["ServiceEntry/default/a", "ServiceEntry/default/b"]);
  assert.equal(refused.length, 1);
  assert(refused[0].includes("spec.hosts: at most 1000 hosts per resource, got 1001"), refused[0]);
  assert.throws(() => decodeSyncEntries({ not: "a list" }), DecodeError);
});
