/**
 * @module
 * The admin API's views: services and routes of a compiled snapshot, member counts, store
 * convergence and the digests other members advertise.
 */
import { assertEquals } from "../../tests/support/assert.ts";
import { parseNodeConfig } from "../config.ts";
import { compileSnapshot } from "../compile/mod.ts";
import {
  memberCounts,
  memberDigests,
  type MemberInput,
  routesView,
  servicesView,
  statusView,
  storeConvergence,
} from "./views.ts";

const snapshot = compileSnapshot({
  nodeName: "a",
  localServices: [{ name: "web", port: 9080, host: "127.0.0.1", protocol: "http", labels: {} }],
  catalog: [{
    service: "web",
    node: "b",
    nodeId: "id-b",
    hostname: "10.0.0.2",
    port: 15006,
    protocol: "http",
    labels: { version: "v2" },
    healthy: false,
  }],
  tuning: parseNodeConfig({}).proxy,
}, 7);

const member = (name: string, state: MemberInput["state"], storeDigest?: string) => ({
  id: `id-${name}`,
  name,
  state,
  metadata: { storeDigest },
});

const stats = { count: 2, digest: "d1", lastChange: null };

Deno.test("the services view lists each outbound service with every endpoint and its health", () => {
  assertEquals(servicesView(snapshot), [{
    name: "web",
    protocol: "http",
    endpoints: [
      { node: "b", address: "10.0.0.2:15006", healthy: false, labels: { version: "v2" } },
      { node: "a", address: "127.0.0.1:9080", healthy: true, labels: {} },
    ],
  }]);
});

Deno.test("the routes view gives the snapshot version, outbound hosts and inbound services", () => {
  const routes = routesView(snapshot);
  assertEquals(routes.version, 7);
  assertEquals(routes.warnings, []);
  assertEquals(routes.outbound.map((h) => h.host), ["web"]);
  assertEquals(routes.outbound[0].routes.length, 1);
  assertEquals(typeof routes.outbound[0].routes[0].match, "string");
  assertEquals(routes.inbound, [{ service: "web", endpoints: ["127.0.0.1:9080"] }]);
});

Deno.test("member counts count each state and the total", () => {
  const members = [member("a", "alive"), member("b", "alive"), member("c", "suspect")];
  assertEquals(memberCounts([...members, member("d", "left")]), {
    total: 4,
    alive: 2,
    suspect: 1,
    dead: 0,
    left: 1,
  });
});

Deno.test("store convergence puts this node first and ignores members that are not alive", () => {
  const members = [
    member("a", "alive", "d0"), // this node: its advertised digest may lag its own store
    member("b", "alive", "d1"),
    member("c", "alive", "d0"),
    member("d", "dead", "d0"),
    member("e", "alive"),
  ];
  assertEquals(storeConvergence(stats, { id: "id-a", name: "a" }, members), {
    count: 2,
    digest: "d1",
    lastChange: null,
    converged: ["a", "b"],
    lagging: ["c", "e"],
  });
});

Deno.test("member digests list the other members, alive or not", () => {
  const members = [member("a", "alive", "d1"), member("b", "dead", "d0"), member("c", "alive")];
  assertEquals(memberDigests("id-a", members), [
    { node: "b", digest: "d0", alive: false },
    { node: "c", digest: "", alive: true },
  ]);
});

Deno.test("the status view combines node, snapshot, member counts and store convergence", () => {
  const status = statusView({
    node: { name: "a", id: "id-a", version: "0.1.0" },
    snapshotVersion: 7,
    proxyNetwork: "deno",
    members: [member("a", "alive", "d1"), member("b", "alive", "d1")],
    store: stats,
  });
  assertEquals(status.members.alive, 2);
  assertEquals(status.store.converged, ["a", "b"]);
  assertEquals(status.node, { name: "a", id: "id-a", version: "0.1.0" });
});
