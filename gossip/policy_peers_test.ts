/**
 * @module
 * Membership events to policy replication peers: reachable members are dialed and their
 * digest noted; this node, members without a libp2p address and departures are left alone.
 */
import { assertEquals } from "../tests/support/assert.ts";
import { createLogger } from "../lib/log.ts";
import type { MemberEventKind, MemberView } from "./membership.ts";
import { PolicyPeers } from "./policy_peers.ts";

function member(id: string, meta: { p2pAddr?: string; storeDigest?: string }): MemberView {
  return {
    name: `n-${id}`,
    id,
    address: "10.0.0.1:7946",
    state: "alive",
    incarnation: 1,
    metadata: {
      nodeId: id,
      name: `n-${id}`,
      gossipAddr: "10.0.0.1:7946",
      inboundAddr: "",
      adminAddr: "",
      services: [],
      ...meta,
    },
  };
}

function setup(dial: () => Promise<void> = () => Promise.resolve()) {
  const calls: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const peers = new PolicyPeers(
    {
      dial: (addr) => {
        calls.push(`dial ${addr}`);
        return dial();
      },
      noteMemberDigest: (addr, digest) => void calls.push(`digest ${addr} ${digest}`),
    },
    "self",
    createLogger("test", "debug", (l) => lines.push(JSON.parse(l))),
  );
  return { calls, lines, peers };
}

Deno.test("joined, updated and revived members are dialed and their digest noted", () => {
  const { calls, peers } = setup();
  const kinds: MemberEventKind[] = ["join", "update", "alive", "suspect", "dead", "left", "reaped"];
  for (const kind of kinds) {
    peers.memberChanged({
      kind,
      member: member(kind, { p2pAddr: `/p2p/${kind}`, storeDigest: "d" }),
    });
  }
  assertEquals(calls, [
    "dial /p2p/join",
    "digest /p2p/join d",
    "dial /p2p/update",
    "digest /p2p/update d",
    "dial /p2p/alive",
    "digest /p2p/alive d",
  ]);
});

Deno.test("this node and members without a libp2p address are not dialed", () => {
  const { calls, peers } = setup();
  peers.connect(member("self", { p2pAddr: "/p2p/self", storeDigest: "d" }));
  peers.connect(member("b", { storeDigest: "d" }));
  peers.connect(member("c", { p2pAddr: "/p2p/c" }));
  assertEquals(calls, ["dial /p2p/c"]);
});

Deno.test("a failed dial is logged at debug, not thrown", async () => {
  const { lines, peers } = setup(() => Promise.reject(new Error("refused")));
  peers.connect(member("b", { p2pAddr: "/p2p/b" }));
  await Promise.resolve();
  await Promise.resolve();
  assertEquals(lines.map((l) => [l.level, l.msg, l.peer, l.reason]), [
    ["debug", "policy peer dial failed", "n-b", "refused"],
  ]);
});
