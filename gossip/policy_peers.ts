/**
 * @module
 * Membership feeds policy replication its peers: when a member joins, comes back alive or
 * updates its metadata, this node dials the libp2p address it advertises and tells the
 * replicator the store digest it advertises, so a lagging store syncs without waiting for a
 * publish. Other events (suspect, dead, left) need nothing: libp2p notices closed connections.
 */
import { errorMessage } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { MemberEvent, MemberView } from "./membership.ts";

/** What this module needs of the replicator (gossip/pubsub.ts's PolicyReplicator). */
export interface PolicyPeerDialer {
  dial(p2pAddr: string): Promise<void>;
  noteMemberDigest(p2pAddr: string, digest: string): void;
}

/** Connects policy replication to the members membership reports. */
export class PolicyPeers {
  constructor(
    private readonly replicator: PolicyPeerDialer,
    /** This node's id: it never dials itself. */
    private readonly selfId: string,
    private readonly log: Logger,
  ) {}

  /** A membership event; a member that became reachable or changed is connected. */
  memberChanged(ev: MemberEvent): void {
    if (ev.kind === "join" || ev.kind === "update" || ev.kind === "alive") this.connect(ev.member);
  }

  /** Dials a member's libp2p address and notes its store digest. */
  connect(member: MemberView): void {
    const p2p = member.metadata.p2pAddr;
    if (!p2p || member.id === this.selfId) return;
    this.replicator.dial(p2p).catch((err) =>
      this.log.debug("policy peer dial failed", { peer: member.name, reason: errorMessage(err) })
    );
    if (member.metadata.storeDigest) {
      this.replicator.noteMemberDigest(p2p, member.metadata.storeDigest);
    }
  }
}
