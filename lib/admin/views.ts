/**
 * @module
 * The admin API's views: pure functions from a snapshot, a member list and store statistics
 * to the JSON shapes of lib/admin/api_types.ts. The composition root passes them live state;
 * they know nothing of gossip or the proxy beyond the plain fields they read.
 */
import { describeRouteDestinations, describeRouteMatch } from "../route_text.ts";
import type { Snapshot } from "../snapshot.ts";
import type {
  MemberCounts,
  MemberState,
  RoutesResponse,
  ServiceInfo,
  StatusResponse,
  StoreConvergence,
} from "./api_types.ts";
import type { MemberDigest } from "./resources.ts";

/** What the views read of a member (gossip's member view has these and more). */
export interface MemberInput {
  id: string;
  name: string;
  state: MemberState;
  metadata: { storeDigest?: string };
}

/** What the views read of the policy store's statistics. */
export interface StoreStatsInput {
  count: number;
  digest: string;
  lastChange: { key: string; at: string; ts: string } | null;
}

/** The `GET /v1/services` view of a snapshot: every outbound service and its endpoints. */
export function servicesView(snap: Snapshot): ServiceInfo[] {
  const out: ServiceInfo[] = [];
  for (const c of snap.clusters.values()) {
    // Subset clusters repeat their host's endpoints; `weft routes` shows them.
    if (!c.name.startsWith("outbound|") || c.subset !== undefined) continue;
    out.push({
      name: c.service,
      protocol: c.protocol,
      endpoints: c.endpoints.map((e) => ({
        node: e.node,
        address: `${e.hostname}:${e.port}`,
        healthy: e.healthy,
        labels: e.labels,
      })),
    });
  }
  return out;
}

/** The `GET /v1/routes` view of a snapshot. */
export function routesView(snap: Snapshot): RoutesResponse {
  return {
    version: snap.version,
    warnings: [...(snap.warnings ?? [])],
    outbound: [...snap.outbound.entries()].map(([host, vh]) => ({
      host,
      routes: vh.routes.map((r) => ({
        name: r.name,
        virtualService: r.virtualService,
        match: describeRouteMatch(r),
        destinations: describeRouteDestinations(r, snap.clusters),
        timeoutMs: r.timeoutMs,
      })),
    })),
    inbound: [...snap.inbound.entries()].map(([service, c]) => ({
      service,
      endpoints: c.endpoints.map((e) => e.key),
    })),
  };
}

/** Members by state. */
export function memberCounts(members: readonly Pick<MemberInput, "state">[]): MemberCounts {
  const counts: MemberCounts = { total: 0, alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of members) {
    counts.total++;
    counts[m.state]++;
  }
  return counts;
}

/** Which live members advertise the same store digest as this node (`self`). */
export function storeConvergence(
  stats: StoreStatsInput,
  self: { id: string; name: string },
  members: readonly MemberInput[],
): StoreConvergence {
  const converged: string[] = [self.name];
  const lagging: string[] = [];
  for (const m of members) {
    if (m.id === self.id || m.state !== "alive") continue;
    (m.metadata.storeDigest === stats.digest ? converged : lagging).push(m.name);
  }
  return {
    count: stats.count,
    digest: stats.digest,
    lastChange: stats.lastChange,
    converged,
    lagging,
  };
}

/** The digests the other members advertise, for the store routes (`weft apply --wait`). */
export function memberDigests(selfId: string, members: readonly MemberInput[]): MemberDigest[] {
  return members
    .filter((m) => m.id !== selfId)
    .map((m) => ({
      node: m.name,
      digest: m.metadata.storeDigest ?? "",
      alive: m.state === "alive",
    }));
}

/** What `GET /v1/status` is built from. */
export interface StatusInput {
  node: { name: string; id: string; version: string };
  snapshotVersion: number;
  proxyNetwork: string;
  members: readonly MemberInput[];
  store: StoreStatsInput;
}

/** The `GET /v1/status` view. */
export function statusView(s: StatusInput): StatusResponse {
  return {
    node: s.node,
    snapshotVersion: s.snapshotVersion,
    proxyNetwork: s.proxyNetwork,
    members: memberCounts(s.members),
    store: storeConvergence(s.store, s.node, s.members),
  };
}
