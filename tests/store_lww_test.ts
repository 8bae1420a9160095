/**
 * @module
 * The in-memory behaviour of the policy store: HLC ordering, LWW convergence regardless of
 * arrival order, tombstones and their collection, digests, apply outcomes.
 */
import assert from "node:assert/strict";
import { FakeClock } from "../lib/clock.ts";
import { compareHlc, HybridLogicalClock } from "../lib/store/hlc.ts";
import {
  decodeEntry,
  diffSummary,
  encodeEntry,
  PolicyStore,
  type ReplicatedEntry,
} from "../lib/store/store.ts";
import { serviceEntry } from "./support/store.ts";

Deno.test("HLC is strictly monotonic even when the wall clock stands still or goes back", () => {
  const clock = new FakeClock(1000);
  const hlc = new HybridLogicalClock(clock);
  const a = hlc.now();
  const b = hlc.now();
  assert(compareHlc(b, a) > 0);
  clock.advance(-500); // wall clock stepped back
  const c = hlc.now();
  assert(compareHlc(c, b) > 0);
  assert.deepEqual(c.wall, b.wall);
});

Deno.test("HLC orders local events after an observed remote timestamp from the future", () => {
  const clock = new FakeClock(0);
  const hlc = new HybridLogicalClock(clock);
  const remote = { wall: clock.wallNow() + 60_000, logical: 7 };
  hlc.observe(remote);
  const next = hlc.now();
  assert(compareHlc(next, remote) > 0);
  assert.deepEqual(next.wall, remote.wall);
});

Deno.test("concurrent writes converge to the same winner whatever the arrival order", async () => {
  const clockA = new FakeClock(0);
  const clockB = new FakeClock(0); // same wall time: the tie is broken by node id
  const a = await PolicyStore.open({ nodeId: "node-a", clock: clockA });
  const b = await PolicyStore.open({ nodeId: "node-b", clock: clockB });
  await a.apply([serviceEntry("api", 1111)]);
  await b.apply([serviceEntry("api", 2222)]);
  const fromA = a.allEntries();
  const fromB = b.allEntries();
  await a.merge(fromB);
  await b.merge(fromA);
  const winnerA = a.get("ServiceEntry", "default", "api")!;
  const winnerB = b.get("ServiceEntry", "default", "api")!;
  assert.deepEqual(winnerA.origin, "node-b");
  assert.deepEqual(winnerB.origin, "node-b");
  assert.deepEqual(a.digest(), b.digest());
  // A third node receiving them in the opposite order agrees too.
  const c = await PolicyStore.open({ nodeId: "node-c", clock: new FakeClock(0) });
  await c.merge(fromB);
  await c.merge(fromA);
  assert.deepEqual(c.digest(), a.digest());
});

Deno.test("later writes win over earlier ones from a node with a greater id", async () => {
  const clock = new FakeClock(0);
  const a = await PolicyStore.open({ nodeId: "a", clock });
  const z = await PolicyStore.open({ nodeId: "z", clock });
  await z.apply([serviceEntry("api", 1)]);
  clock.advance(10);
  await a.merge(z.allEntries());
  await a.apply([serviceEntry("api", 2)]);
  await z.merge(a.allEntries());
  assert.deepEqual(
    (z.get("ServiceEntry", "default", "api")!.resource!.spec as { ports: { number: number }[] })
      .ports[0].number,
    2,
  );
});

Deno.test("apply answers created, updated and unchanged; dry run changes nothing", async () => {
  const store = await PolicyStore.open({ nodeId: "n1", clock: new FakeClock(0) });
  const dry = await store.apply([serviceEntry("a")], { dryRun: true });
  assert.deepEqual(dry[0].result, "created");
  assert.deepEqual(store.stats().count, 0);
  assert.deepEqual((await store.apply([serviceEntry("a")]))[0].result, "created");
  const digest = store.digest();
  assert.deepEqual((await store.apply([serviceEntry("a")]))[0].result, "unchanged");
  assert.deepEqual(store.digest(), digest);
  assert.deepEqual((await store.apply([serviceEntry("a", 9)]))[0].result, "updated");
  assert.notDeepEqual(store.digest(), digest);
});

Deno.test("delete writes a tombstone that beats older writes and is collected after grace", async () => {
  const clock = new FakeClock(0);
  const a = await PolicyStore.open({ nodeId: "a", clock, tombstoneGraceMs: 1000 });
  const b = await PolicyStore.open({ nodeId: "b", clock, tombstoneGraceMs: 1000 });
  await a.apply([serviceEntry("x")]);
  const live = a.allEntries();
  await b.merge(live);
  clock.advance(5);
  assert(await a.delete("ServiceEntry", "default", "x"));
  assert.deepEqual(await a.delete("ServiceEntry", "default", "x"), false);
  await b.merge(a.allEntries());
  assert.deepEqual(b.get("ServiceEntry", "default", "x"), undefined);
  // The older live entry arriving late does not resurrect it.
  await b.merge(live);
  assert.deepEqual(b.get("ServiceEntry", "default", "x"), undefined);
  assert.deepEqual(b.stats().tombstones, 1);
  assert.deepEqual(a.digest(), b.digest());
  clock.advance(2000);
  assert.deepEqual(await b.collectTombstones(), 1);
  assert.deepEqual(b.stats().tombstones, 0);
  // An expired tombstone from a slow peer is not re-added.
  await b.merge(a.allEntries().filter((e) => e.resource === null));
  assert.deepEqual(b.stats().tombstones, 0);
});

Deno.test("summary diff finds what each side lacks", async () => {
  const clock = new FakeClock(0);
  const a = await PolicyStore.open({ nodeId: "a", clock });
  const b = await PolicyStore.open({ nodeId: "b", clock });
  await a.apply([serviceEntry("only-a"), serviceEntry("both")]);
  await b.merge(a.allEntries().filter((e) => e.key.endsWith("both")));
  clock.advance(1);
  await b.apply([serviceEntry("only-b"), serviceEntry("both", 7)]);
  const { toSend, toFetch } = diffSummary(a, b.summary());
  assert.deepEqual(toSend.map((e) => e.key), ["ServiceEntry/default/only-a"]);
  assert.deepEqual(toFetch.sort(), ["ServiceEntry/default/both", "ServiceEntry/default/only-b"]);
});

Deno.test("decodeEntry round-trips and rejects invalid resources and shapes", async () => {
  const store = await PolicyStore.open({ nodeId: "a", clock: new FakeClock(0) });
  await store.apply([serviceEntry("ok")]);
  const e = store.allEntries()[0];
  const back = decodeEntry(encodeEntry(e));
  assert.deepEqual(back.key, e.key);
  const bad: ReplicatedEntry = { ...e, resource: { ...e.resource!, spec: { hosts: [] } } };
  let threw = 0;
  for (const raw of [encodeEntry(bad), [1, 2, 3], "x", null, [e.key, -1, 0, "a", null]]) {
    try {
      decodeEntry(raw);
    } catch {
      threw++;
    }
  }
  assert.deepEqual(threw, 5);
});
