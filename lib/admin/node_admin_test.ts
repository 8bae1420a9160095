/**
 * @module
 * The node admin factory: every endpoint reads the live parts it is given (identity, members,
 * snapshot, store), through hono's in-process `request`, without sockets.
 */
import { assertEquals } from "../../tests/support/assert.ts";
import { compileSnapshot, parseNodeConfig, type Snapshot } from "../mod.ts";
import { PolicyStore } from "../store/store.ts";
import { createAdminApp } from "./app.ts";
import { nodeAdminDeps, type NodeAdminSources } from "./node_admin.ts";
import type { MemberInput } from "./views.ts";

type FakeMember = MemberInput & { address: string };

function snapshotVersion(version: number): Snapshot {
  const tuning = parseNodeConfig({}).proxy;
  return compileSnapshot({ nodeName: "a", localServices: [], catalog: [], tuning }, version);
}

async function fixture() {
  const store = await PolicyStore.open({ nodeId: "id-a" });
  const state = {
    name: "a",
    snapshot: snapshotVersion(1),
    members: [
      { id: "id-a", name: "a", state: "alive", address: "10.0.0.1:7946", metadata: {} },
      {
        id: "id-b",
        name: "b",
        state: "alive",
        address: "10.0.0.2:7946",
        metadata: { storeDigest: "other" },
      },
    ] as FakeMember[],
    reloads: 0,
  };
  const sources: NodeAdminSources<FakeMember> = {
    identity: () => ({ name: state.name, id: "id-a" }),
    version: "1.2.3",
    startedAt: "2024-01-01T00:00:00.000Z",
    members: () => state.members,
    memberInfo: (m) => ({
      name: m.name,
      id: m.id,
      address: m.address,
      state: m.state,
      incarnation: 0,
      services: [],
      admin: "",
    }),
    snapshot: () => state.snapshot,
    proxyNetwork: () => "deno",
    store,
    reload: () => Promise.resolve({ snapshotVersion: ++state.reloads }),
    metrics: () => "weft_up 1\n",
  };
  return { app: createAdminApp(nodeAdminDeps(sources)), state, store };
}

type App = ReturnType<typeof createAdminApp>;

async function getJson(app: App, path: string, init?: RequestInit) {
  const res = await app.request(path, init);
  return await res.json();
}

Deno.test("node and status read the live identity, snapshot and members", async () => {
  const { app, state, store } = await fixture();
  try {
    assertEquals(await getJson(app, "/v1/node"), {
      name: "a",
      id: "id-a",
      version: "1.2.3",
      startedAt: "2024-01-01T00:00:00.000Z",
    });
    state.name = "renamed";
    state.snapshot = snapshotVersion(7);
    const status = await getJson(app, "/v1/status");
    assertEquals(status.node, { name: "renamed", id: "id-a", version: "1.2.3" });
    assertEquals(status.snapshotVersion, 7);
    assertEquals(status.proxyNetwork, "deno");
    assertEquals(status.members.total, 2);
    assertEquals(status.store.lagging, ["b"]);
  } finally {
    await store.close();
  }
});

Deno.test("members go through the membership's own mapping", async () => {
  const { app, store } = await fixture();
  try {
    const { members } = await getJson(app, "/v1/members");
    assertEquals(members.map((m: { address: string }) => m.address), [
      "10.0.0.1:7946",
      "10.0.0.2:7946",
    ]);
  } finally {
    await store.close();
  }
});

Deno.test("reload, metrics and the mounted store routes are wired", async () => {
  const { app, state, store } = await fixture();
  try {
    assertEquals(await getJson(app, "/v1/reload", { method: "POST" }), { snapshotVersion: 1 });
    assertEquals(state.reloads, 1);
    assertEquals(await (await app.request("/metrics")).text(), "weft_up 1\n");
    const storeView = await getJson(app, "/v1/store");
    assertEquals(storeView.node, "a");
    assertEquals(storeView.lagging, ["b"]);
    assertEquals((await app.request("/v1/resources")).status, 200);
  } finally {
    await store.close();
  }
});
