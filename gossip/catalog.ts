/**
 * @module
 * The service catalog: member metadata -> {@linkcode CatalogEndpoint}s for the snapshot. Each
 * endpoint points at the owning node's inbound listener (never the service's own port), so
 * traffic crosses nodes through the mesh. Alive members' services are listed with their own
 * health; suspect members' services stay listed but unhealthy (the proxy can still fall back to
 * them); dead and left members are removed.
 */
import { parseHostPort } from "../lib/address.ts";
import type { CatalogEndpoint } from "../lib/snapshot.ts";
import type { MemberState, MemberView } from "./membership.ts";
import type { ServiceMeta } from "./messages.ts";

/** Builds the catalog from a member list, sorted by service then node for stable diffs. */
export function catalogFromMembers(members: readonly MemberView[]): CatalogEndpoint[] {
  const out: CatalogEndpoint[] = [];
  for (const m of members) {
    if (m.state !== "alive" && m.state !== "suspect") continue;
    const inbound = parseHostPort(m.metadata.inboundAddr);
    if (typeof inbound === "string") continue; // a node without an inbound listener serves nothing
    for (const s of m.metadata.services) {
      out.push({
        service: s.name,
        node: m.name,
        nodeId: m.id,
        hostname: inbound.hostname,
        port: inbound.port,
        protocol: s.protocol,
        labels: { ...s.labels },
        healthy: m.state === "alive" && s.healthy,
      });
    }
  }
  return out.sort((a, b) =>
    a.service.localeCompare(b.service) || a.node.localeCompare(b.node) || a.port - b.port
  );
}

/** Service name -> endpoints, for `weft services` and `GET /v1/services`. */
export function servicesByName(
  catalog: readonly CatalogEndpoint[],
): Map<string, CatalogEndpoint[]> {
  const by = new Map<string, CatalogEndpoint[]>();
  for (const e of catalog) {
    const list = by.get(e.service);
    if (list) list.push(e);
    else by.set(e.service, [e]);
  }
  return by;
}

/** One member as served by `GET /v1/members` and printed by `weft members`. */
export interface MemberJson {
  name: string;
  id: string;
  address: string;
  state: MemberState;
  incarnation: number;
  services: ServiceMeta[];
  /** The member's admin API, so operators can ask it directly (`weft routes --node`). */
  admin: string;
}

/** The `GET /v1/members` shape of a member. */
export function memberJson(m: MemberView): MemberJson {
  return {
    name: m.name,
    id: m.id,
    address: m.address,
    state: m.state,
    incarnation: m.incarnation,
    services: m.metadata.services,
    admin: m.metadata.adminAddr,
  };
}
