/**
 * @module
 * The admin API of a running node, assembled from its live parts: {@linkcode nodeAdminDeps}
 * turns the node's identity, member list, current snapshot, policy store and metrics into the
 * {@linkcode AdminDeps} of lib/admin/app.ts, with the policy resource routes mounted.
 * Membership and the proxy come in as plain functions, because lib/ must not import gossip/
 * or proxy/; the composition root (cli/agent.ts) passes them.
 */
import type { Snapshot } from "../mod.ts";
import type { HostPort } from "../address.ts";
import type { PolicyStore } from "../store/store.ts";
import type { MemberInfo, ReloadResponse } from "./api_types.ts";
import { type AdminDeps, type AdminServer, createAdminApp, serveAdmin } from "./app.ts";
import { resourceRoutes } from "./resources.ts";
import { memberDigests, type MemberInput, routesView, servicesView, statusView } from "./views.ts";

/** The live parts of a node the admin API reads; each function is called per request. */
export interface NodeAdminSources<Member extends MemberInput> {
  /** Name and stable id; the name is read live, since the config may be reloaded. */
  identity(): { name: string; id: string };
  version: string;
  startedAt: string;
  /** Every known member, this node included. */
  members(): readonly Member[];
  /** The `GET /v1/members` shape of a member (membership owns that mapping). */
  memberInfo(member: Member): MemberInfo;
  /** The snapshot the proxy routes with now. */
  snapshot(): Snapshot;
  proxyNetwork(): string;
  store: PolicyStore;
  reload(): Promise<ReloadResponse>;
  /** Prometheus text of the node's metrics. */
  metrics(): string;
}

/** The admin API's dependencies for a node. */
export function nodeAdminDeps<Member extends MemberInput>(
  s: NodeAdminSources<Member>,
): AdminDeps {
  const node = () => ({ ...s.identity(), version: s.version });
  return {
    node: () => ({ ...node(), startedAt: s.startedAt }),
    members: () => s.members().map((m) => s.memberInfo(m)),
    services: () => servicesView(s.snapshot()),
    routes: () => routesView(s.snapshot()),
    status: () =>
      statusView({
        node: node(),
        snapshotVersion: s.snapshot().version,
        proxyNetwork: s.proxyNetwork(),
        members: s.members(),
        store: s.store.stats(),
      }),
    reload: () => s.reload(),
    metrics: () => s.metrics(),
    mount: (app) =>
      app.route(
        "/",
        resourceRoutes({
          store: s.store,
          nodeName: s.identity().name,
          memberDigests: () => memberDigests(s.identity().id, s.members()),
        }),
      ),
  };
}

/** Serves a node's admin API at `at`; resolves with the server and its bound address. */
export function serveNodeAdmin<Member extends MemberInput>(
  sources: NodeAdminSources<Member>,
  at: HostPort,
): Promise<AdminServer> {
  return serveAdmin(createAdminApp({ ...nodeAdminDeps(sources), adminHost: at.hostname }), at);
}
