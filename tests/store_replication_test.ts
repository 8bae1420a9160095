/**
 * @module
 * Replication between in-process libp2p nodes: changes applied on one node reach all;
 * concurrent conflicting writes converge on one winner; deletes propagate; a late joiner
 * converges through the sync protocol; garbage on the topic and the sync protocol is
 * rejected and counted without harm.
 */
import assert from "node:assert/strict";
import { createLibp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { gossipsub } from "@libp2p/gossipsub";
import { multiaddr } from "@multiformats/multiaddr";
import { PolicyReplicator, policyTopic, syncProtocol } from "../gossip/pubsub.ts";
import { PolicyStore } from "../lib/store/store.ts";
import { serviceEntry, waitFor } from "./support/store.ts";

interface TestNode {
  store: PolicyStore;
  rep: PolicyReplicator;
}

async function startNode(id: string): Promise<TestNode> {
  const store = await PolicyStore.open({ nodeId: id });
  const rep = await PolicyReplicator.start({
    store,
    listenAddr: "127.0.0.1:0",
    syncIntervalMs: 60_000,
  });
  return { store, rep };
}

async function stopAll(nodes: TestNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.rep.stop()));
  await Promise.all(nodes.map((n) => n.store.close()));
}

/** Connects each node to every earlier one (what membership-driven dialing does). */
async function connectAll(nodes: TestNode[]): Promise<void> {
  for (let i = 1; i < nodes.length; i++) {
    for (let j = 0; j < i; j++) await nodes[i].rep.dial(nodes[j].rep.advertisedAddr());
  }
}

async function waitTopicMesh(nodes: TestNode[]): Promise<void> {
  // Subscriptions travel right after connect; until then a publish reaches nobody.
  await waitFor(
    "topic subscriptions",
    () => nodes.every((n) => n.rep.topicPeers().length >= nodes.length - 1),
  );
}

Deno.test("replication: apply on one node is visible on all, deletes propagate, conflicts converge", async () => {
  const nodes = await Promise.all(["n1", "n2", "n3", "n4"].map(startNode));
  try {
    await connectAll(nodes);
    await waitTopicMesh(nodes);
    await nodes[0].store.apply([serviceEntry("api")]);
    await waitFor(
      "api on all nodes",
      () => nodes.every((n) => n.store.get("ServiceEntry", "default", "api")),
    );
    // It travelled by pubsub (the sync on connect ran while the stores were empty).
    assert(nodes.slice(1).every((n) => n.rep.counters.received >= 1));

    // Concurrent conflicting writes on two nodes: all agree on one winner.
    await Promise.all([
      nodes[1].store.apply([serviceEntry("conflict", 1111)]),
      nodes[2].store.apply([serviceEntry("conflict", 2222)]),
    ]);
    await waitFor(
      "converged digests",
      () => new Set(nodes.map((n) => n.store.digest())).size === 1,
    );
    const winners = nodes.map((n) => n.store.get("ServiceEntry", "default", "conflict")!.origin);
    assert.equal(new Set(winners).size, 1);

    await nodes[3].store.delete("ServiceEntry", "default", "api");
    await waitFor(
      "delete on all nodes",
      () => nodes.every((n) => !n.store.get("ServiceEntry", "default", "api")),
    );
    assert(nodes[0].rep.counters.published >= 1);
  } finally {
    await stopAll(nodes);
  }
});

Deno.test("replication: a late joiner converges through the sync protocol", async () => {
  const nodes = await Promise.all(["a", "b"].map(startNode));
  let late: TestNode | undefined;
  try {
    await connectAll(nodes);
    await nodes[0].store.apply([serviceEntry("s1"), serviceEntry("s2")]);
    await nodes[1].store.apply([serviceEntry("s3")]);
    await nodes[1].store.delete("ServiceEntry", "default", "s3");
    await waitFor("a and b agree", () => nodes[0].store.digest() === nodes[1].store.digest());
    late = await startNode("late");
    // The late node has something of its own the others lack: sync goes both ways.
    await late.store.apply([serviceEntry("from-late")]);
    const result = await late.rep.syncWith(nodes[0].rep.advertisedAddr());
    assert(result.received >= 2);
    assert.equal(late.store.digest(), nodes[0].store.digest());
    assert(nodes[0].store.get("ServiceEntry", "default", "from-late"));
    assert.equal(late.store.stats().tombstones, 1);
    // A digest difference reported by membership triggers a sync as well.
    await nodes[1].store.apply([serviceEntry("after")]);
    late.rep.noteMemberDigest(nodes[1].rep.advertisedAddr(), nodes[1].store.digest());
    await waitFor(
      "late gets 'after'",
      () => Boolean(late!.store.get("ServiceEntry", "default", "after")),
    );
  } finally {
    await stopAll(late ? [...nodes, late] : nodes);
  }
});

Deno.test("replication: random bytes on the topic and the sync protocol are rejected and counted", async () => {
  const node = await startNode("victim");
  const attacker = await createLibp2p({
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({
        globalSignaturePolicy: "StrictSign",
        allowPublishToZeroTopicPeers: true,
      }),
    },
  });
  try {
    await node.store.apply([serviceEntry("keep")]);
    const digest = node.store.digest();
    attacker.services.pubsub.subscribe(policyTopic);
    const target = multiaddr(node.rep.advertisedAddr());
    await attacker.dial(target);
    await waitFor(
      "victim subscribed",
      () => attacker.services.pubsub.getSubscribers(policyTopic).length > 0,
    );
    for (let i = 0; i < 3; i++) {
      await attacker.services.pubsub.publish(
        policyTopic,
        crypto.getRandomValues(new Uint8Array(64 + i)),
      );
    }
    await waitFor("topic garbage counted", () => node.rep.counters.rejectedMessages >= 3);

    for (let i = 0; i < 2; i++) {
      const stream = await attacker.dialProtocol(target, syncProtocol);
      const junk = crypto.getRandomValues(new Uint8Array(200));
      new DataView(junk.buffer).setUint32(0, 150); // a plausible length, then garbage
      stream.send(junk);
      await stream.close().catch(() => {});
    }
    await waitFor("sync garbage counted", () => node.rep.counters.rejectedSync >= 2);
    assert.equal(node.store.digest(), digest);
    // Still healthy: a legitimate peer can sync afterwards.
    const peer = await startNode("friend");
    try {
      await peer.rep.syncWith(node.rep.advertisedAddr());
      assert(peer.store.get("ServiceEntry", "default", "keep"));
    } finally {
      await stopAll([peer]);
    }
  } finally {
    await attacker.stop();
    await stopAll([node]);
  }
});

Deno.test("replication: the libp2p key file keeps the peer id across restarts", async () => {
  const dir = await Deno.makeTempDir();
  const store = await PolicyStore.open({ nodeId: "k" });
  try {
    const keyFile = `${dir}/p2p.key`;
    const first = await PolicyReplicator.start({ store, listenAddr: "127.0.0.1:0", keyFile });
    const id = first.peerId;
    await first.stop();
    const second = await PolicyReplicator.start({ store, listenAddr: "127.0.0.1:0", keyFile });
    assert.equal(second.peerId, id);
    assert.match(
      second.advertisedAddr("127.0.0.9"),
      new RegExp(`^/ip4/127.0.0.9/tcp/\\d+/p2p/${id}$`),
    );
    await second.stop();
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
