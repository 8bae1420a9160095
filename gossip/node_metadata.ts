/**
 * @module
 * What a node advertises about itself in its membership metadata: where other nodes reach
 * its inbound listener, admin API and libp2p address, its store digest, and its services with
 * their health. Listeners bound to an unspecified address (0.0.0.0, ::) are advertised at the
 * node's advertised gossip host, since nobody else can dial 0.0.0.0.
 */
import { formatHostPort, type HostPort } from "../lib/address.ts";
import type { LocalService } from "../lib/config.ts";
import type { MemberMeta } from "./messages.ts";

/** What {@linkcode advertisedMetadata} builds the metadata from. */
export interface AdvertisedMetadataInput {
  /** The host other members reach this node at (its advertised gossip host). */
  advertiseHost: string;
  inbound: HostPort;
  admin: HostPort;
  /** The libp2p address to dial, when policy replication runs. */
  p2pAddr?: string;
  storeDigest: string;
  services: readonly LocalService[];
  /** Local services whose active health check fails. */
  unhealthy: ReadonlySet<string>;
}

/** The metadata fields a node sets (membership fills in its id, name and gossip address). */
export function advertisedMetadata(
  i: AdvertisedMetadataInput,
): Omit<MemberMeta, "nodeId" | "name" | "gossipAddr"> {
  const reachable = (a: HostPort) =>
    formatHostPort({
      hostname: isUnspecified(a.hostname) ? i.advertiseHost : a.hostname,
      port: a.port,
    });
  return {
    inboundAddr: reachable(i.inbound),
    adminAddr: reachable(i.admin),
    p2pAddr: i.p2pAddr,
    storeDigest: i.storeDigest,
    services: i.services.map((s) => ({
      name: s.name,
      port: s.port,
      protocol: s.protocol,
      labels: { ...s.labels },
      healthy: !i.unhealthy.has(s.name),
    })),
  };
}

function isUnspecified(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}
