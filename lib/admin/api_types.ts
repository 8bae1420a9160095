/**
 * @module
 * The JSON the admin API answers with, as plain types: the server's views are built to them
 * (lib/admin/views.ts) and the operating commands read them (cli/ops.ts), so a field renamed
 * on one side is a type error on the other. No runtime code, no hono.
 */

/** `{"error", "details"}`: every error answer, as the CLI contract says. */
export interface ErrorResponse {
  error: string;
  details: { path: string; message: string }[];
}

/** `GET /v1/node`. */
export interface NodeInfo {
  name: string;
  id: string;
  version: string;
  startedAt: string;
}

/** Lifecycle state of a member as the answering node sees it. */
export type MemberState = "alive" | "suspect" | "dead" | "left";

/** A service as a member advertises it. */
export interface AdvertisedService {
  name: string;
  port: number;
  protocol: string;
  labels: Record<string, string>;
  healthy: boolean;
}

/** One member in `GET /v1/members`. */
export interface MemberInfo {
  name: string;
  id: string;
  /** Gossip address `HOST:PORT`. */
  address: string;
  state: MemberState;
  incarnation: number;
  services: AdvertisedService[];
  /** The member's admin API, so operators can ask it directly (`weft routes --node`). */
  admin: string;
}

/** `GET /v1/members`. */
export interface MembersResponse {
  members: MemberInfo[];
}

/** One endpoint of a service in `GET /v1/services`. */
export interface ServiceEndpointInfo {
  node: string;
  /** `HOST:PORT` traffic for the service is sent to (the node's inbound listener). */
  address: string;
  healthy: boolean;
  labels: Record<string, string>;
}

/** One service in `GET /v1/services`. */
export interface ServiceInfo {
  name: string;
  protocol: string;
  endpoints: ServiceEndpointInfo[];
}

/** `GET /v1/services`. */
export interface ServicesResponse {
  services: ServiceInfo[];
}

/** One route of an outbound host in `GET /v1/routes`. */
export interface RouteInfo {
  name: string;
  virtualService?: string;
  /** The match, in words (`prefix /`, `path /x and header …`). */
  match: string;
  /** Weighted destinations, in words. */
  destinations: string;
  timeoutMs: number;
}

/** `GET /v1/routes`: the compiled routing table of the answering node. */
export interface RoutesResponse {
  /** Snapshot version. */
  version: number;
  warnings: string[];
  outbound: { host: string; routes: RouteInfo[] }[];
  inbound: { service: string; endpoints: string[] }[];
}

/** Members by state, and their total. */
export interface MemberCounts {
  total: number;
  alive: number;
  suspect: number;
  dead: number;
  left: number;
}

/** The policy store of the answering node, and which live members hold the same digest. */
export interface StoreConvergence {
  count: number;
  digest: string;
  lastChange: { key: string; at: string; ts: string } | null;
  /** Members (this node first) that advertise this node's digest. */
  converged: string[];
  /** Live members that advertise another digest. */
  lagging: string[];
}

/** `GET /v1/status`. */
export interface StatusResponse {
  node: { name: string; id: string; version: string };
  snapshotVersion: number;
  /** The proxy's socket backend (`deno`, `epoll`, `uring`). */
  proxyNetwork: string;
  members: MemberCounts;
  store: StoreConvergence;
}

/** `POST /v1/reload`. */
export interface ReloadResponse {
  snapshotVersion: number;
}
