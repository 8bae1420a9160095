/**
 * @module
 * Member list -> catalog endpoints.
 */
import { assertEquals } from "../tests/support/assert.ts";
import { catalogFromMembers, servicesByName } from "./catalog.ts";
import type { MemberState, MemberView } from "./membership.ts";

function member(name: string, state: MemberState, healthy = true): MemberView {
  return {
    name,
    id: `id-${name}`,
    address: `10.0.0.1:7946`,
    state,
    incarnation: 0,
    metadata: {
      nodeId: `id-${name}`,
      name,
      gossipAddr: "10.0.0.1:7946",
      inboundAddr: `${name}.local:15001`,
      adminAddr: "x:1",
      services: [{ name: "reviews", port: 9080, protocol: "http", labels: { v: name }, healthy }],
    },
  };
}

Deno.test("alive members are healthy, suspect unhealthy, dead and left removed", () => {
  const cat = catalogFromMembers([
    member("d", "dead"),
    member("a", "alive"),
    member("s", "suspect"),
    member("l", "left"),
    member("u", "alive", false),
  ]);
  assertEquals(cat.map((e) => [e.node, e.hostname, e.port, e.healthy]), [
    ["a", "a.local", 15001, true],
    ["s", "s.local", 15001, false],
    ["u", "u.local", 15001, false],
  ]);
  assertEquals(servicesByName(cat).get("reviews")?.length, 3);
});
