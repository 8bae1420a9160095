/**
 * @module
 * Whole-cluster behaviour of the SWIM/Lifeguard membership layer on a simulated network under
 * a fake clock: join, failure detection, refutation, loss tolerance, partitions, metadata,
 * replacement of a restarted node, graceful leave.
 */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { SimCluster } from "./support/gossip.ts";
import { defaultLanConfig } from "../gossip/config.ts";
import type { MemberEvent } from "../gossip/membership.ts";

async function joinedCluster(n: number, cluster = new SimCluster()): Promise<SimCluster> {
  const first = await cluster.add("n0");
  for (let i = 1; i < n; i++) {
    const s = await cluster.add(`n${i}`);
    await cluster.settle(s.node.join([first.addr]));
  }
  await cluster.until(() => cluster.converged(), 30_000);
  return cluster;
}

/** Records every event every node sees, as `observer:kind:subject`. */
function recordEvents(c: SimCluster): string[] {
  const log: string[] = [];
  for (const n of c.nodes.values()) {
    n.node.onChange((e: MemberEvent) => log.push(`${n.name}:${e.kind}:${e.member.name}`));
  }
  return log;
}

Deno.test("nodes join through one seed and converge", async () => {
  const c = await joinedCluster(5);
  try {
    for (const n of c.nodes.values()) assertEquals(n.node.members().length, 5);
  } finally {
    await c.stopAll();
  }
});

Deno.test("join rejects with every seed named when none answers", async () => {
  const c = new SimCluster();
  try {
    const a = await c.add("a");
    const err = await assertRejects(
      () => c.settle(a.node.join(["10.9.9.9:7946", "10.9.9.8:7946"])),
      Error,
      "no seed answered",
    );
    assert(err.message.includes("10.9.9.9:7946") && err.message.includes("10.9.9.8:7946"));
    await assertRejects(() => a.node.join(["nonsense"]), Error, "--join");
  } finally {
    await c.stopAll();
  }
});

Deno.test("indirect probes keep a node alive when only the direct link is cut", async () => {
  const c = await joinedCluster(5);
  try {
    const events = recordEvents(c);
    c.net.partition([c.nodes.get("n0")!.addr], [c.nodes.get("n1")!.addr]);
    await c.run(40_000);
    const bad = events.filter((e) => /:(suspect|dead):n[01]$/.test(e));
    assertEquals(bad, []);
    assert(c.converged());
  } finally {
    await c.stopAll();
  }
});

Deno.test("a crashed node is suspected then declared dead by all within the bound", async () => {
  const cfg = defaultLanConfig();
  const c = await joinedCluster(5);
  try {
    const events = recordEvents(c);
    await c.crash("n4");
    // Bound: one full probe round (n-1 periods) + one period + the max suspicion timeout.
    const n = 5;
    const bound = (n + 1) * cfg.probeIntervalMs +
      cfg.suspicionMaxTimeoutMult * cfg.suspicionMult * cfg.probeIntervalMs;
    const took = await c.until(
      () => [...c.nodes.keys()].every((o) => c.stateOf(o, "n4") === "dead"),
      bound,
    );
    assert(took <= bound, `detection took ${took} ms`);
    assert(events.some((e) => e.endsWith(":suspect:n4")), "suspect precedes dead");
    // Reaped after the reclaim time.
    await c.run(cfg.deadReclaimMs + 1000, 50);
    assertEquals(c.stateOf("n0", "n4"), undefined);
  } finally {
    await c.stopAll();
  }
});

Deno.test("a suspected node refutes with a higher incarnation and is never declared dead", async () => {
  const c = await joinedCluster(5);
  try {
    const events = recordEvents(c);
    const victim = c.nodes.get("n2")!;
    const others = [...c.nodes.values()].filter((n) => n !== victim).map((n) => n.addr);
    c.net.partition([victim.addr], others);
    await c.until(() => events.some((e) => e.endsWith(":suspect:n2")), 20_000);
    c.net.heal();
    await c.until(() => c.converged(), 20_000);
    assertEquals(events.filter((e) => e.endsWith(":dead:n2")), []);
    const inc = c.nodes.get("n0")!.node.members().find((m) => m.name === "n2")!.incarnation;
    assert(inc >= 1, `incarnation ${inc} was raised by the refutation`);
  } finally {
    await c.stopAll();
  }
});

Deno.test("no live node is declared dead under 30% packet loss", async () => {
  const c = await joinedCluster(8, new SimCluster(undefined, 11));
  try {
    const events = recordEvents(c);
    c.net.loss = 0.3;
    // A few failed TCP fallback probes too, so suspicions really happen and must be refuted.
    c.net.streamLoss = 0.05;
    await c.run(120_000, 20);
    assert(events.some((e) => /:suspect:/.test(e)), "the loss caused suspicions");
    assertEquals(events.filter((e) => /:dead:/.test(e)), []);
    c.net.streamLoss = 0;
    c.net.loss = 0;
    await c.until(() => c.converged(), 30_000);
  } finally {
    await c.stopAll();
  }
});

Deno.test("a partition heals through background seed re-join alone", async () => {
  // The partition lasts until each side has forgotten the other (reaped), so neither gossip
  // nor push-pull (which only pick known members) can reconnect them: only the re-join of
  // seeds that are not alive in a node's view can.
  const cfg = { ...defaultLanConfig(), rejoinIntervalMs: 10_000 };
  const c = await joinedCluster(6, new SimCluster(cfg));
  try {
    const left = ["n0", "n1", "n2"].map((n) => c.nodes.get(n)!.addr);
    const right = ["n3", "n4", "n5"].map((n) => c.nodes.get(n)!.addr);
    c.net.partition(left, right);
    await c.until(
      () => c.stateOf("n0", "n5") === "dead" && c.stateOf("n5", "n0") === "dead",
      60_000,
    );
    // Long enough that the dead entries are reaped: gossip alone could never heal this.
    await c.run(cfg.deadReclaimMs + 5000, 50);
    assertEquals(c.stateOf("n0", "n5"), undefined);
    c.net.heal();
    await c.until(() => c.converged(), 60_000);
  } finally {
    await c.stopAll();
  }
});

Deno.test("metadata changes propagate with an incarnation bump", async () => {
  const c = await joinedCluster(5);
  try {
    const n3 = c.nodes.get("n3")!;
    const before = n3.node.self().incarnation;
    n3.node.setMetadata({
      inboundAddr: "10.0.0.4:15001",
      adminAddr: "10.0.0.4:15000",
      services: [{
        name: "reviews",
        port: 9080,
        protocol: "http",
        labels: { version: "v2" },
        healthy: true,
      }],
    });
    await c.until(
      () =>
        [...c.nodes.values()].every((n) => n.node.catalog().some((e) => e.service === "reviews")),
      10_000,
    );
    const ep = c.nodes.get("n0")!.node.catalog().find((e) => e.service === "reviews")!;
    assertEquals([ep.node, ep.hostname, ep.port, ep.labels.version, ep.healthy], [
      "n3",
      "10.0.0.4",
      15001,
      "v2",
      true,
    ]);
    assertEquals(n3.node.self().incarnation, before + 1);
    // Dead nodes leave the catalog.
    await c.crash("n3");
    await c.until(
      () => !c.nodes.get("n0")!.node.catalog().some((e) => e.service === "reviews"),
      60_000,
    );
  } finally {
    await c.stopAll();
  }
});

Deno.test("graceful leave is seen as left, not dead", async () => {
  const c = await joinedCluster(4);
  try {
    const events = recordEvents(c);
    const n1 = c.nodes.get("n1")!;
    await c.settle(n1.node.leave(5000));
    await c.crash("n1");
    await c.until(() => ["n0", "n2", "n3"].every((o) => c.stateOf(o, "n1") === "left"), 5000);
    assertEquals(events.filter((e) => e.endsWith(":dead:n1")), []);
  } finally {
    await c.stopAll();
  }
});

Deno.test("a restarted node replaces its old entry by id, or refutes with the same id", async () => {
  const c = await joinedCluster(4);
  try {
    await c.crash("n3");
    await c.run(500);
    // Same name, new id, new address, before the old one was detected dead.
    const fresh = await c.add("n3", { id: "id-n3-b" });
    await c.settle(fresh.node.join([c.nodes.get("n0")!.addr]));
    await c.until(
      () =>
        ["n0", "n1", "n2"].every((o) =>
          c.nodes.get(o)!.node.members().some((m) =>
            m.name === "n3" && m.id === "id-n3-b" && m.state === "alive"
          )
        ),
      10_000,
    );
    // Same id restart: the old incarnation is refuted by a higher one.
    const incBefore = c.nodes.get("n0")!.node.members().find((m) => m.name === "n2")!.incarnation;
    await c.crash("n2");
    const again = await c.add("n2");
    await c.settle(again.node.join([c.nodes.get("n0")!.addr]));
    await c.until(() => c.converged(), 20_000);
    assertEquals(c.stateOf("n1", "n2"), "alive");
    assert(again.node.self().incarnation >= incBefore);
  } finally {
    await c.stopAll();
  }
});

Deno.test("an overloaded node raises its own health score instead of killing healthy members", async () => {
  const c = await joinedCluster(5);
  try {
    const events = recordEvents(c);
    const slow = c.nodes.get("n4")!;
    // n4 handles everything 1.5 s late: longer than a whole 1 s probe period, so every ack
    // it waits for looks missing to it, and its own pings are answered too late for others.
    c.net.processingDelayMs.set(slow.addr, 1500);
    let peakScore = 0;
    for (let t = 0; t < 60_000; t += 500) {
      await c.run(500);
      peakScore = Math.max(peakScore, slow.node.healthScore);
    }
    assert(peakScore > 0, "Lifeguard's local health score rose on the slow node");
    const deaths = events.filter((e) => e.includes(":dead:"));
    assertEquals(deaths, [], "no member was declared dead");
    // Healthy members never lost each other.
    for (const observer of ["n0", "n1", "n2", "n3"]) {
      for (const subject of ["n0", "n1", "n2", "n3"]) {
        assertEquals(c.stateOf(observer, subject), "alive", `${observer} sees ${subject}`);
      }
    }
    // Once the node recovers, its score decays back to healthy.
    c.net.processingDelayMs.delete(slow.addr);
    await c.until(() => slow.node.healthScore === 0, 120_000);
  } finally {
    await c.stopAll();
  }
});
