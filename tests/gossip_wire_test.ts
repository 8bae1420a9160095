/**
 * @module
 * Wire robustness of the membership layer: encryption isolation, and thousands of random and
 * mutated packets and streams that must be dropped and counted without crashing the node.
 */
import { assert, assertEquals, assertRejects } from "./support/assert.ts";
import { SimCluster } from "./support/gossip.ts";
import { Keyring, parseKey } from "../gossip/keyring.ts";
import { seededRandom } from "../gossip/mock_transport.ts";
import { encodeEnvelope, encodeValue } from "../lib/codec.ts";
import { decodePacket, encodeCompound, encodeMessage, MessageType } from "../gossip/messages.ts";
import type { Registry } from "../lib/metrics.ts";

function dropped(metrics: Registry, reason?: string): number {
  const text = metrics.render();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith("weft_gossip_packets_dropped_total")) continue;
    if (reason && !line.includes(`reason="${reason}"`)) continue;
    sum += Number(line.split(" ").pop());
  }
  return sum;
}

function key(fill: number): Uint8Array {
  return new Uint8Array(32).fill(fill);
}

Deno.test("keyring: rotation keeps old traffic readable, wrong key reads nothing", async () => {
  const a = await Keyring.create([key(1)]);
  const b = await Keyring.create([key(2), key(1)]);
  const sealed = await a.encrypt(new Uint8Array([1, 2, 3]));
  assertEquals(await b.decrypt(sealed), new Uint8Array([1, 2, 3]));
  const c = await Keyring.create([key(3)]);
  assertEquals(await c.decrypt(sealed), undefined);
  b.usePrimary(key(1));
  b.removeKey(key(2));
  assertEquals(b.size, 1);
  assertEquals(typeof parseKey("bm90IDMyIGJ5dGVz"), "string");
  assertEquals((parseKey(btoa(String.fromCharCode(...key(9)))) as Uint8Array).length, 32);
});

Deno.test("a node with the wrong key is isolated and its packets are counted", async () => {
  const c = new SimCluster();
  try {
    const good = await Keyring.create([key(1)]);
    const n0 = await c.add("n0", { keyring: good });
    const n1 = await c.add("n1", { keyring: await Keyring.create([key(1)]) });
    await c.settle(n1.node.join([n0.addr]));
    await c.until(() => c.converged(["n0", "n1"]), 10_000);
    const bad = await c.add("bad", { keyring: await Keyring.create([key(2)]) });
    await assertRejects(() => c.settle(bad.node.join([n0.addr])), Error, "no seed answered");
    // Even gossip sent straight at members is rejected.
    await c.run(3000);
    assertEquals(c.stateOf("n0", "bad"), undefined);
    assertEquals(c.stateOf("n1", "bad"), undefined);
    assertEquals(bad.node.members().length, 1);
    assert(dropped(n0.metrics, "key") > 0, "drops are counted");
    // A plaintext node is isolated as well.
    const plain = await c.add("plain");
    await assertRejects(() => c.settle(plain.node.join([n0.addr])), Error, "no seed answered");
  } finally {
    await c.stopAll();
  }
});

Deno.test("random and mutated packets are dropped and counted without a crash", async () => {
  const c = new SimCluster();
  try {
    const n0 = await c.add("n0");
    const n1 = await c.add("n1");
    await c.settle(n1.node.join([n0.addr]));
    await c.until(() => c.converged(), 10_000);
    const attacker = c.net.bind("10.6.6.6:7946");
    const rand = seededRandom(42);
    const valid = [
      encodeMessage({
        type: MessageType.Ping,
        body: { seq: 1, target: "n0", from: "x", fromAddr: "10.6.6.6:7946" },
      }),
      encodeMessage({
        type: MessageType.Suspect,
        body: { name: "n1", id: "id-n1", inc: 0, from: "x" },
      }),
      encodeCompound([
        encodeMessage({ type: MessageType.Ack, body: { seq: 9 } }),
        encodeMessage({ type: MessageType.Nack, body: { seq: 9 } }),
      ]),
    ];
    const junkBodies: unknown[] = [
      null,
      1,
      "x",
      [],
      {},
      { seq: -1 },
      { name: 5 },
      [1, 2, 3],
      new Uint8Array(3),
    ];
    for (let i = 0; i < 3000; i++) {
      let pkt: Uint8Array;
      const kind = i % 4;
      if (kind === 0) {
        pkt = crypto.getRandomValues(new Uint8Array(1 + Math.floor(rand() * 1500)));
      } else if (kind === 1) {
        pkt = valid[i % valid.length].slice();
        const flips = 1 + Math.floor(rand() * 4);
        for (let f = 0; f < flips; f++) {
          pkt[Math.floor(rand() * pkt.length)] ^= 1 << Math.floor(rand() * 8);
        }
        if (rand() < 0.3) pkt = pkt.slice(0, Math.floor(rand() * pkt.length));
      } else if (kind === 2) {
        const type = Math.floor(rand() * 12) - 1;
        const version = rand() < 0.2 ? 2 : 1;
        pkt = encodeEnvelope(version, type, junkBodies[i % junkBodies.length]);
      } else {
        pkt = encodeValue(junkBodies.concat([valid])[i % (junkBodies.length + 1)]);
      }
      attacker.sendPacket(n0.addr, pkt);
      if (i % 200 === 0) {
        // Reliable streams get the same treatment.
        attacker.request(n0.addr, pkt, 1000).catch(() => {});
        await c.run(20);
      }
    }
    attacker.sendPacket(n0.addr, new Uint8Array(70_000));
    await c.run(2000);
    assert(dropped(n0.metrics) > 1500, `dropped ${dropped(n0.metrics)}`);
    assert(dropped(n0.metrics, "oversized") >= 1);
    assert(dropped(n0.metrics, "version") >= 1);
    assert(dropped(n0.metrics, "unknown") >= 1);
    // Still healthy and serving: a fresh node can join through it.
    const n2 = await c.add("n2");
    await c.settle(n2.node.join([n0.addr]));
    await c.until(() => c.converged(), 20_000);
    await attacker.close();
  } finally {
    await c.stopAll();
  }
});

Deno.test("decodePacket refuses nested compounds and oversized packets", () => {
  const inner = encodeCompound([
    encodeMessage({ type: MessageType.Ack, body: { seq: 1 } }),
    encodeMessage({ type: MessageType.Ack, body: { seq: 2 } }),
  ]);
  const nested = encodeEnvelope(1, MessageType.Compound, [inner, inner]);
  let threw = false;
  try {
    decodePacket(nested, 1400);
  } catch {
    threw = true;
  }
  assert(threw);
  assertEquals(decodePacket(inner, 1400).length, 2);
  threw = false;
  try {
    decodePacket(new Uint8Array(2000), 1400);
  } catch {
    threw = true;
  }
  assert(threw);
});
